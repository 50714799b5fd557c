"""`mlc-lower-graph`: every `nn` op becomes one or more `ix.compute` ops (tensors in, tensors out).

Each lowering (one module per kind of op, as in `mlc.dialects.nn`) states what its compute ops compute in index notation, then builds them.
Notation: `y[i]` is the output element at iteration point `i`; `Σ_r` / `max_r` range over the
reduction variables; `x[...]` outside `x` reads 0 unless a fill is given.

The lowerings run inside an `ImplicitBuilder` placed just before the `nn` op, so every op they
create (the compute ops, and inside each body the scalar ops) lands there in program order.
The builders of `mlc.loops.compute_builders` (`compute`, `pointwise`, `reduce`, `window`,
`conv`) carry the boilerplate.
Bodies use only the scalar ops the backends support, through the builders of `mlc.loops.scalars`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.builder import Builder, ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import BlockArgument
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import PassFailedException

from mlc.dialects import nn
from mlc.passes.lower_graph import elementwise, layers, losses, reductions, shape_ops  # noqa: F401 - they register
from mlc.graph.signature import ModelSignature, TensorSpec, is_model, tie_results
from mlc.passes.lower_graph.registry import LOWERINGS, TRAINING_LOWERINGS, StateUpdate, lowers

__all__ = ["LOWERINGS", "LowerGraphPass", "lowers"]


@dataclass(frozen=True)
class LowerGraphPass(ModulePass):
    """Replace every `nn` op by the compute ops of its lowering; everything else is left alone."""

    name = "mlc-lower-graph"

    training: bool = False
    """Lower in training mode (PyTorch's `train()`): an op with running statistics normalises
    with the batch's and updates its states, which become results `new.<state>` of the function,
    tied to the states (`mlc.in_place`). Inference mode (the default) only reads the states."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for f in [o for o in op.walk() if isinstance(o, func.FuncOp)]:
            updates: list[StateUpdate] = []
            for graph_op in [o for o in f.walk() if isinstance(o, nn.GraphOp)]:
                lower = LOWERINGS.get(type(graph_op))
                if lower is None:
                    raise NotImplementedError(f"mlc-lower-graph: no lowering for {graph_op.name}")
                training_lower = TRAINING_LOWERINGS.get(type(graph_op)) if self.training else None
                with ImplicitBuilder(Builder(InsertPoint.before(graph_op))):
                    if training_lower is None:
                        value = lower(graph_op)
                    else:
                        value, new = training_lower(graph_op)
                        updates += new
                Rewriter.replace_op(graph_op, [], [value])
            if updates:
                return_updated_states(f, updates)


def return_updated_states(f: func.FuncOp, updates: list[StateUpdate]) -> None:
    """Add each updated state as a result `new.<state>` of `f`, tied to the state's argument."""
    if not is_model(f):
        raise PassFailedException(f"mlc-lower-graph: @{f.sym_name.data} updates states, so it needs a model signature")
    sig = ModelSignature.of(f)
    block = f.body.block
    ret = block.last_op
    assert isinstance(ret, func.ReturnOp)
    new_specs: list[TensorSpec] = []
    for state, _ in updates:
        spec = sig.args[state.index] if isinstance(state, BlockArgument) and state.block is block else None
        if spec is None or spec.kind != "state":
            raise PassFailedException(f"mlc-lower-graph: @{sig.name} updates a value that is not one of its states")
        if any(s.name == f"new.{spec.name}" for s in new_specs):
            raise PassFailedException(f"mlc-lower-graph: @{sig.name} updates its state '{spec.name}' twice")
        new_specs.append(TensorSpec(f"new.{spec.name}", spec.shape, spec.dtype, "output"))
    values = [*ret.arguments, *(v for _, v in updates)]
    Rewriter.replace_op(ret, func.ReturnOp(*values))
    f.function_type = func.FunctionType.from_lists(list(f.function_type.inputs), [v.type for v in values])
    ModelSignature(sig.name, sig.args, (*sig.outputs, *new_specs)).attach(f)
    tie_results(f, {s.name: s.name.removeprefix("new.") for s in new_specs})
