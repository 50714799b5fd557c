"""The index space of a nest being built (`Space`: the dimensions in scope and the lane
dimension) and where the builder is (`State`: the terms of the entered leaves, the extents of this
variant, the blocks in local buffers); see the package docstring."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineExpr

from mlc.loops.affine import Interval, simplify
from mlc.loops.builders import emit_index_expr


@dataclass(frozen=True)
class Space:
    """The index dimensions in scope: SSA values with their ranges, and the lane dimension."""

    values: tuple[SSAValue, ...] = ()
    ranges: tuple[Interval, ...] = ()
    lane: int | None = None
    width: int = 1

    def add(self, value: SSAValue, lo: int, hi: int, lanes: int = 0) -> tuple[Space, AffineExpr]:
        """The space with one more dimension (the lane dimension when `lanes`), and that dimension."""
        k = len(self.values)
        space = Space((*self.values, value), (*self.ranges, (lo, hi)),
                      k if lanes else self.lane, lanes if lanes else self.width)
        return space, AffineExpr.dimension(k)

    @property
    def active(self) -> int:
        """Lanes that hold iterations (the lane dimension's range): `width`, or fewer in a
        partial vector."""
        assert self.lane is not None
        lo, hi = self.ranges[self.lane]
        return hi - lo + 1

    def uses_lanes(self, expr: AffineExpr) -> bool:
        return self.lane is not None and self.lane in expr.used_dims()

    def emit(self, expr: AffineExpr) -> SSAValue:
        """Index code for `expr` (the lane dimension at the vector's first lane)."""
        return emit_index_expr(expr, self.values, self.ranges)


@dataclass(frozen=True)
class Local:
    """A block in a local buffer (of an op computed at a loop of its reader, or a staged read):
    the buffer, the block's origin, and the order of the block's dimensions in the buffer."""

    buffer: SSAValue
    origin: tuple[AffineExpr, ...]
    order: tuple[int, ...] | None = None  # None: the tensor's own order

    def index(self, index: Sequence[AffineExpr]) -> list[AffineExpr]:
        """Where the tensor's element `index` is in the buffer."""
        offsets = [simplify(i - o) for i, o in zip(index, self.origin)]
        return offsets if self.order is None else [offsets[d] for d in self.order]


@dataclass(frozen=True)
class State:
    """Where the nest builder is: the space, what each entered leaf stands for, the iterations
    of each loop-tree node in this variant, and the blocks computed so far."""

    space: Space
    terms: Mapping[str, AffineExpr]
    extents: Mapping[str, int]
    locals: Mapping[object, Local] = field(default_factory=dict)
    """The blocks in local buffers: by producer result, or by (op result, read) for staged reads."""

    def entered(self, name: str, term: AffineExpr, space: Space | None = None, **extents: int) -> State:
        return replace(self, space=space or self.space, terms={**self.terms, name: term},
                       extents={**self.extents, **extents})


Point = Callable[[State, Sequence[SSAValue]], Sequence[SSAValue]]
"""Builds the innermost body at a state from the carried values; returns the new carried values."""
