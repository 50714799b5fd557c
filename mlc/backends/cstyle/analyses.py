"""Function-level analyses used by the framing: which memref arguments are only read, the
arena's size, and which views of a buffer may be `restrict`."""

from __future__ import annotations

from typing import NamedTuple

from xdsl.dialects import arith, func, memref, vector
from xdsl.dialects.builtin import IntegerAttr
from xdsl.ir import SSAValue

from mlc.backends.cstyle.types import byte_size, checked_memref, is_arena_type, num_elements


def is_read_only(value: SSAValue) -> bool:
    """A memref only ever loaded from (or copied from): printed `const`, may alias other inputs."""
    for use in value.uses:
        op = use.operation
        if isinstance(op, memref.LoadOp | vector.LoadOp | vector.MaskedLoadOp):
            continue
        if isinstance(op, memref.CopyOp) and use.index == 0:
            continue
        return False
    return True


def arena_bytes(op: func.FuncOp) -> int:
    """`mlc.arena_bytes` if present, else the size of a trailing i8 arena argument, else 0."""
    attr = op.attributes.get("mlc.arena_bytes")
    if isinstance(attr, IntegerAttr):
        return attr.value.data
    args = op.function_type.inputs.data
    if args and is_arena_type(args[-1]):
        return num_elements(checked_memref(args[-1]))
    return 0


class _ViewSpan(NamedTuple):
    view: SSAValue
    source: SSAValue
    start: int | None  # None: the byte offset is not a constant
    size: int

    def overlaps(self, other: _ViewSpan) -> bool:
        if self.source != other.source:
            return False
        if self.start is None or other.start is None:
            return True
        return self.start < other.start + other.size and other.start < self.start + self.size


def disjoint_views(op: func.FuncOp) -> set[SSAValue]:
    """Views whose byte range overlaps no other view of the same buffer.

    The memory planner reuses arena bytes for tensors with disjoint lifetimes. Two `restrict`
    pointers to the same bytes declared in one scope are undefined behaviour even if their
    uses never interleave (C99 6.7.3.1), so only views at a constant offset that overlap
    nothing else are marked `restrict`.
    """
    spans: list[_ViewSpan] = []
    for view in op.walk():
        if isinstance(view, memref.ViewOp):
            owner = view.byte_shift.owner
            start = None
            if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
                start = owner.value.value.data
            size = byte_size(checked_memref(view.result.type))
            spans.append(_ViewSpan(view.result, view.source, start, size))
    return {
        span.view
        for span in spans
        if span.start is not None and not any(span.overlaps(o) for o in spans if o is not span)
    }
