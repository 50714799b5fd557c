"""Building the functions a pass splits a model function into (`mlc-split-vjp`,
`mlc-split-params`): the ops a set of values depends on, and a new function of chosen arguments
that computes chosen ops and returns chosen values."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from xdsl.dialects import func
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Block, OpResult, Operation, Region, SSAValue

from mlc.graph.signature import ModelSignature
from mlc.passes.autodiff import PHASE


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
