"""Building the functions a pass splits a model function into (`mlc-split-vjp`,
`mlc-split-params`): the function's one block and its return, the ops a set of values depends
on, a new function of chosen arguments that computes chosen ops and returns chosen values, the
spec of a value passed between the halves, and the halves put in the function's place."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp, StringAttr
from xdsl.ir import Block, OpResult, Operation, Region, SSAValue
from xdsl.utils.exceptions import PassFailedException

from mlc.graph.signature import ModelSignature, TensorSpec, shape_and_dtype
from mlc.passes.autodiff import PHASE


def returned(f: func.FuncOp, pass_name: str) -> func.ReturnOp:
    """The `func.return` of `f`, which a split needs to be one block ending in it."""
    block = f.body.block
    ret = block.last_op
    if not isinstance(ret, func.ReturnOp) or any(op.successors for op in block.ops):
        raise PassFailedException(f"{pass_name}: @{f.sym_name.data} is not one block ending in func.return")
    return ret


def replace_by(module: ModuleOp, f: func.FuncOp, halves: Iterable[func.FuncOp]) -> None:
    """Put `halves` where `f` was in `module`, and erase `f`."""
    module.body.block.insert_ops_after(list(halves), f)
    module.body.block.detach_op(f)
    f.erase()


def spec_of(name: str, v: SSAValue, kind: str) -> TensorSpec:
    """The signature entry of `v` passed between the halves under `name`."""
    return TensorSpec(name, *shape_and_dtype(v.type), kind=kind)


def ancestors(values: Iterable[SSAValue]) -> set[Operation]:
    """The ops whose results `values` depend on."""
    ops: set[Operation] = set()
    stack = [v for v in values if isinstance(v, OpResult)]
    while stack:
        op = stack.pop().op
        if op not in ops:
            ops.add(op)
            stack.extend(v for v in op.operands if isinstance(v, OpResult))
    return ops


def function_of(f: func.FuncOp, name: str, args: list[SSAValue], ops: list[Operation], results: list[SSAValue],
              sig: ModelSignature, recomputed: Collection[Operation] = ()) -> func.FuncOp:
    """A function of `args` that computes `ops` (cloned, in order; those in `recomputed` marked
    so) and returns `results`, with `f`'s attributes and the signature `sig` (whose argument
    names name the block's arguments)."""
    block = Block(arg_types=[v.type for v in args])
    mapping: dict[SSAValue, SSAValue] = {}
    for old, new, spec in zip(args, block.args, sig.args, strict=True):
        mapping[old] = new
        new.name_hint = spec.name.replace(".", "_")
    for op in ops:
        clone = op.clone(mapping)
        if op in recomputed:
            clone.attributes[PHASE] = StringAttr("recompute")
        block.add_op(clone)
    block.add_op(func.ReturnOp(*(mapping[v] for v in results)))
    g = func.FuncOp(name, ([v.type for v in args], [v.type for v in results]), Region(block))
    g.attributes.update(f.attributes)
    sig.attach(g)
    return g
