"""Reductions: the loops inside the output loops that enclose the reduction, with the tile's
partial results in registers, in a local array, or in the output (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from math import prod

from xdsl.dialects import memref
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineExpr

from mlc.loops.affine import substitute
from mlc.loops.builders import element_const
from mlc.loops.nest.loops import NestLoops
from mlc.loops.nest.space import Space, State
from mlc.loops.nest.vectors import element_bytes, vector_cells, widened

LOCAL_TILE_BYTES = 32 * 1024
"""Largest tile accumulated in a local array (beyond, the output buffer holds the partial sums)."""

REGISTER_CELLS = 32
"""Most values (vectors or scalars) a register tile may hold: the vector registers of AVX-512."""


class NestTiles(NestLoops):
    """The reductions of the nest and their tiles."""

    # -- the point and the reductions ----------------------------------------------------------
    def reduce(self, inner: Sequence[str], state: State) -> Sequence[SSAValue]:
        """Everything inside the output loops that enclose the reduction (see the module docstring)."""
        op = self.op
        if op.reduction.data == "none":
            def store(s: State, _: Sequence[SSAValue]) -> Sequence[SSAValue]:
                self.store(self.out, self.out_index(s), self.value(op, self.var_exprs(s), s), s.space)
                return ()

            return self.walk(inner, state, store, ())
        tile = [n for n in inner if not self.loops.is_reduction(n)]
        if not tile:
            (acc,) = self.walk(inner, state, lambda s, c: [self.value(op, self.var_exprs(s), s, c[0])], [self.init(1)])
            self.store(self.out, self.out_index(state), acc, state.space)
        elif self.register_tile(inner, tile, state):
            self.reduce_in_registers(inner[:len(inner) - len(tile)], tile, state)
        else:
            self.reduce_in_memory(inner, tile, state)
        return ()

    def register_tile(self, inner: Sequence[str], tile: Sequence[str], state: State) -> bool:
        """Tile loops innermost and all unrolled or vectorised, with few enough cells in this
        variant."""
        if list(inner[len(inner) - len(tile):]) != list(tile):
            return False
        if any(n not in self.schedule.unroll and n != self.schedule.vectorize for n in tile):
            return False
        return self.cells(tile, dict(state.extents)) <= REGISTER_CELLS

    def cells(self, leaves: Sequence[str], extents: dict[str, int]) -> int:
        """Values a register tile over `leaves` holds (a vector or a scalar each) in a variant."""
        if not leaves:
            return 1
        name, rest = leaves[0], leaves[1:]
        total = 0
        for start, stop, below in self.variants(name, State(Space(), {}, extents)):
            inner = self.cells(rest, {**extents, **below})
            count = stop - start
            if name == self.schedule.vectorize and self.lanes > 1:
                count = vector_cells(self.lanes, count)
            total += count * inner
        return total

    def reduce_in_registers(self, reductions: Sequence[str], tile: Sequence[str], state: State,
                            start: Callable[[State], SSAValue] | None = None,
                            finish: Callable[[State, SSAValue], None] | None = None) -> None:
        """One SSA value per tile cell, carried through the reduction loops: from the reduction's
        initial value to the output (or, inside a tile kept in memory, from `start(cell)` to
        `finish(cell, value)`)."""
        cells: list[State] = []
        self.walk(tile, state, lambda s, _: cells.append(s) or (), (), unrolled=True)
        init = [start(c) if start else self.init(c.space.width if c.space.lane is not None else 1) for c in cells]

        def update(s: State, accs: Sequence[SSAValue]) -> Sequence[SSAValue]:
            self.loaded = {}
            values = [self.value(self.op, self.var_exprs(cell_at(s, c)), cell_at(s, c), a) for c, a in zip(cells, accs)]
            self.loaded = None
            return values

        def cell_at(s: State, cell: State) -> State:
            """The cell's tile terms inside the reduction loops of `s`."""
            terms = {**s.terms, **{n: _shift(cell.terms[n], len(state.space.values), len(s.space.values)) for n in tile}}
            space = s.space
            if cell.space.lane is not None:
                space = Space((*s.space.values, cell.space.values[-1]), (*s.space.ranges, cell.space.ranges[-1]),
                              len(s.space.values), cell.space.width)
            return replace(s, space=space, terms=terms)

        accs = self.walk(reductions, state, update, init)
        for cell, acc in zip(cells, accs):
            if finish is not None:
                finish(cell, acc)
            else:
                self.store(self.out, self.out_index(cell), acc, cell.space)

    def reduce_in_memory(self, inner: Sequence[str], tile: Sequence[str], state: State) -> None:
        """Partial results in a local array over the tile loops (or in the output itself).

        When the order ends with reduction loops around innermost tile loops that are unrolled
        or vectorized (a register block), those cells are loaded from memory before the inner
        reduction loops, carried through them in registers and stored after: the same operations
        on every element, with memory traffic once per run of the inner reductions."""
        elt = self.op.result_type.get_element_type()
        sizes = [self.loops.full_extent(n) for n in tile]
        local = prod(sizes) * element_bytes(elt) <= LOCAL_TILE_BYTES
        buffer = memref.AllocaOp.get(elt, 64, sizes).memref if local else self.out

        def index(s: State) -> list[AffineExpr]:
            return [s.terms[n] for n in tile] if local else self.out_index(s)

        def fill(s: State, _: Sequence[SSAValue]) -> Sequence[SSAValue]:
            self.store(buffer, index(s), self.init(s.space.width if s.space.lane is not None else 1), s.space)
            return ()

        def update(s: State, _: Sequence[SSAValue]) -> Sequence[SSAValue]:
            acc = self.load(buffer, index(s), 0.0, s.space)
            self.store(buffer, index(s), self.value(self.op, self.var_exprs(s), s, acc), s.space)
            return ()

        def copy(s: State, _: Sequence[SSAValue]) -> Sequence[SSAValue]:
            self.store(self.out, self.out_index(s), self.load(buffer, index(s), 0.0, s.space), s.space)
            return ()

        block = len(inner)
        while block and inner[block - 1] in tile and (inner[block - 1] in self.schedule.unroll
                                                       or inner[block - 1] == self.schedule.vectorize):
            block -= 1
        runs = block
        while runs and self.loops.is_reduction(inner[runs - 1]):
            runs -= 1
        registers, reductions = inner[block:], inner[runs:block]

        def hybrid(s: State, _: Sequence[SSAValue]) -> Sequence[SSAValue]:
            if self.cells(registers, dict(s.extents)) > REGISTER_CELLS:
                return self.walk([*reductions, *registers], s, update, ())
            self.reduce_in_registers(reductions, registers, s,
                                     start=lambda c: self.load(buffer, index(c), 0.0, c.space),
                                     finish=lambda c, v: self.store(buffer, index(c), v, c.space))
            return ()

        self.walk(tile, state, fill, ())
        if registers and reductions:
            self.walk(inner[:runs], state, hybrid, ())
        else:
            self.walk(inner, state, update, ())
        if local:
            self.walk(tile, state, copy, ())

    def init(self, width: int) -> SSAValue:
        elt = self.op.result_type.get_element_type()
        value = element_const(0.0 if self.op.reduction.data == "sum" else float("-inf"), elt)
        return widened(value, width)


def _shift(expr: AffineExpr, old: int, new: int) -> AffineExpr:
    """Renumber the dimensions `>= old` of `expr` to start at `new` (a tile cell's lane dimension
    moves behind the reduction loops' dimensions)."""
    if old == new:
        return expr
    top = max(expr.used_dims(), default=-1) + 1
    mapping = [AffineExpr.dimension(k if k < old else k - old + new) for k in range(max(top, old))]
    return substitute(expr, mapping)
