"""`mlc-split-params`: an inference function as the work its parameters alone decide, done once,
and the work each call does.

A deployed model's parameters do not change between calls, yet the forward recomputes from them
on every call whatever depends on nothing else: the signs of binary weights and their packed
words (`mlc-bitpack`), the per-filter scales α, transposed or reshaped weights. This pass
replaces `@m` by

    @m_prepare(parameters and states it reads) -> (prepared.0, prepared.1, ...)
    @m_apply(inputs, parameters read as they are, prepared.*) -> (outputs)

`@m_apply` takes every input, one the model does not read included, so it is called as the
model is. `@m_prepare` is every op that depends on no input and that the rest reads; each value of it the
rest reads is one `prepared.<k>`. A parameter the rest reads directly stays an argument of
`@m_apply` under its own name, so a caller passes `@m_apply` those parameters and the prepared
values (`mlc.freeze` does; `FrozenProgram.export_c` bakes them into a C library). An op
whose result is a model output stays in `@m_apply`, which returns it.

Run it on an inference function (it is not a gradient's or a training step's job: their
parameters change every call), after `mlc-bitpack` and before scheduling.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.graph.locations import OUTPUT_LOCS
from mlc.graph.signature import IN_PLACE, ModelSignature, is_model
from mlc.passes.function_split import ancestors, function_of, replace_by, returned, spec_of

PREPARED = "prepared."


@dataclass(frozen=True)
class SplitParamsPass(ModulePass):
    name = "mlc-split-params"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        models = [f for f in op.ops if isinstance(f, func.FuncOp) and is_model(f) and "mlc.grad_of" not in f.attributes]
        if not models:
            raise PassFailedException("mlc-split-params: no model function to split")
        for f in models:
            replace_by(op, f, split(f))


def split(f: func.FuncOp) -> tuple[func.FuncOp, func.FuncOp]:
    """`@<f>_prepare` and `@<f>_apply` (see the module docstring)."""
    sig = ModelSignature.of(f)
    block = f.body.block
    ret = returned(f, SplitParamsPass.name)
    if f.attributes.get(IN_PLACE) is not None or any(o.name.startswith("new.") for o in sig.outputs):
        raise PassFailedException(f"mlc-split-params: @{sig.name} updates its states (a training-mode function)")
    inputs = {v for a, v in zip(sig.args, block.args, strict=True) if a.kind == "input"}
    per_call: set[Operation] = set()  # ops that depend on an input, or give an output
    outputs = set(ret.arguments)
    for op in block.ops:
        if op is not ret and (any(v in inputs or v.owner in per_call for v in op.operands)
                              or any(r in outputs for r in op.results)):
            per_call.add(op)
    read = [v for op in [*per_call, ret] for v in op.operands]
    once = ancestors([v for v in read if v.owner not in per_call and v not in inputs]) - per_call
    prepared: list[SSAValue] = []
    for op in [o for o in block.ops if o in once]:
        prepared.extend(r for r in op.results if r in read and r not in prepared)
    for v in ret.arguments:
        if not isinstance(v.owner, Operation) and v not in inputs:
            raise PassFailedException(f"mlc-split-params: @{sig.name} returns a parameter as it is")

    specs = {v: a for a, v in zip(sig.args, block.args, strict=True)}
    prepare_args = [v for v in block.args if v not in inputs and any(v in op.operands for op in once)]
    prepare = function_of(f, f"{sig.name}_prepare", prepare_args, [o for o in block.ops if o in once], prepared,
                          ModelSignature(f"{sig.name}_prepare", tuple(specs[v] for v in prepare_args),
                                         tuple(spec_of(f"{PREPARED}{k}", v, "output") for k, v in enumerate(prepared))))
    prepare.attributes.pop(OUTPUT_LOCS, None)
    direct = [v for v in block.args if v in inputs or v in read]  # every input, as the model declares them
    apply_args = [*direct, *prepared]
    apply_specs = (*(specs[v] for v in direct), *(spec_of(f"{PREPARED}{k}", v, "param") for k, v in enumerate(prepared)))
    apply = function_of(f, f"{sig.name}_apply", apply_args, [o for o in block.ops if o in per_call], list(ret.arguments),
                        ModelSignature(f"{sig.name}_apply", apply_specs, sig.outputs))
    return prepare, apply

