"""The nest builder `Nest`: its entry, and the blocks computed at a loop once it is entered --
the producers computed there (each a nest of its own, into a local buffer) and the staged
copies of reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from math import prod

from xdsl.dialects import memref
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.loops.affine import iteration_ranges, linear_form, moves_with, read_in_bounds, simplify, substitute
from mlc.loops.builders import buffer_shape, for_loop, index_const, loop_nest, shape_type
from mlc.loops.nest.reads import effective_reads
from mlc.loops.nest.space import Local, Space, State
from mlc.loops.nest.tiles import NestTiles
from mlc.loops.nest.vectors import element_bytes, vector_runs
from mlc.loops.schedule import STAGE_BYTES, ScheduleError

PARALLEL_COPY_BYTES = 256 * 1024
"""A staged copy before its nest at least this large runs its outermost loop on every core."""


class Nest(NestTiles):
    """Builds the nest of `op` writing `out`, following its schedule.

    `buffers` maps each materialised tensor to its memref. For an op computed at a loop of its
    reader, `origin` is where its block starts and `block` its output extents; its results go
    to `out` (the block's local buffer) at the offsets from the origin.
    """

    # -- entry ---------------------------------------------------------------------------------
    def build(self, state: State | None = None) -> None:
        """Emit the nest at the implicit insertion point (inside `state`'s loops, if given)."""
        names = [self._var_name(k) for k in range(len(self.extents))]
        base = state or State(Space(), {}, {})
        state = self.attach(None, replace(base, terms={}, extents=dict(zip(names, self.extents))))
        order = self.loops.order
        first = next((k for k, n in enumerate(order) if self.loops.is_reduction(n)), len(order))
        self.walk(order[:first], state, lambda s, _: self.reduce(order[first:], s), ())

    def _var_name(self, k: int) -> str:
        return f"d{k}" if k < self.op.rank else f"r{k - self.op.rank}"

    # -- blocks computed at a loop -------------------------------------------------------------
    def attach(self, name: str | None, state: State) -> State:
        """Compute the blocks of the producers and the staged reads scheduled at loop `name` (None:
        before the nest's loops), once it is entered."""
        for producer in self.attached.get(name, []) if name is not None else []:
            reads = [amap for value, amap in effective_reads(self.op) if value is producer.result]
            ranges = iteration_ranges(self.op.result_type.get_shape(), self.op.reduction_extents)
            if not all(all(read_in_bounds(m, ranges, producer.result_type.get_shape())) for m in reads):
                raise ScheduleError(f"at({name}): the reader reads it outside its bounds (where a read gives its "
                                    "fill); compute it in its own nest")
            origin, block, _ = self.block_of(reads, state, f"at({name})")
            buffer = memref.AllocaOp.get(producer.result_type.get_element_type(), 64, block).memref
            Nest(producer, self.buffers, buffer, self.target, origin, block).build(state)
            state = replace(state, locals={**state.locals, producer.result: Local(buffer, tuple(origin))})
        for k in [k for k, loop in self.schedule.stage if loop == name]:
            state = self.stage(k, state)
        return state

    def stage(self, k: int, state: State) -> State:
        """Copy the block of read `k` the loops below read into a local buffer (see `stage` in
        mlc.loops.schedule): the block's dimension the lanes walk goes last, the read's fill fills
        what lies outside the tensor. A copy before the nest of `PARALLEL_COPY_BYTES` or more
        runs its outermost loop in parallel."""
        read = self.op.reads[k]
        where = f"stage({k}{'' if (loop := dict(self.schedule.stage)[k]) is None else ', ' + loop})"
        source = self.buffers[read.value]
        origin, block, moving = self.block_of([read.map], state, where, whole=buffer_shape(source))
        order = tuple([d for d in range(len(block)) if d != moving] + ([moving] if moving is not None else []))
        elt = shape_type(source).get_element_type()
        if prod(block) * element_bytes(elt) > STAGE_BYTES:
            raise ScheduleError(f"{where}: the block ({'x'.join(map(str, block))}) is larger than {STAGE_BYTES} bytes")
        buffer = memref.AllocaOp.get(elt, 64, [block[d] for d in order]).memref
        local = Local(buffer, tuple(origin), order)

        def copy(ivs: list[SSAValue], _: Sequence[SSAValue]) -> Sequence[SSAValue]:
            """Copy one row of the block (the buffer's last dimension), in vectors where it can."""
            space = state.space
            at: list[AffineExpr] = [AffineExpr.constant(0)] * len(block)
            for d, iv in zip(order, ivs):
                space, at[d] = space.add(iv, 0, block[d] - 1)
            if not order:  # a scalar
                self.store(buffer, [], self.load(source, [], read.fill, space), space)
                return ()
            last, first = order[-1], 0
            for width, active in vector_runs(self.lanes, block[last]) if _row_contiguous(read.map, last) else []:
                lane_space, at[last] = space.add(index_const(first), first, first + active - 1, lanes=width)
                value = self.load(source, [simplify(o + a) for o, a in zip(origin, at)], read.fill, lane_space)
                self.store(buffer, [at[d] for d in order], value, lane_space)
                first += active

            def scalar(iv: SSAValue, _: Sequence[SSAValue]) -> Sequence[SSAValue]:
                scalar_space, at[last] = space.add(iv, first, block[last] - 1)
                value = self.load(source, [simplify(o + a) for o, a in zip(origin, at)], read.fill, scalar_space)
                self.store(buffer, [at[d] for d in order], value, scalar_space)
                return ()

            if first < block[last]:
                for_loop(first, block[last], scalar)
            return ()

        rows = [block[d] for d in order[:-1]]
        if rows and not state.space.values and prod(block) * element_bytes(elt) >= PARALLEL_COPY_BYTES:
            # before the nest, outside any loop: the threads share the copy (it is memory-bound)
            for_loop(0, rows[0], lambda iv, _: loop_nest(rows[1:], lambda ivs, c: copy([iv, *ivs], c)), parallel=True)
        else:
            loop_nest(rows, copy)
        return replace(state, locals={**state.locals, (self.op.result, k): local})

    def block_of(self, maps: Sequence[AffineMap], state: State, where: str, whole: Sequence[int] | None = None
                 ) -> tuple[list[AffineExpr], list[int], int | None]:
        """Origin and extents of the block that reads through `maps` cover below the current loops,
        and the block dimension the vectorized loop moves (if any).

        Each iteration variable ranges over `base + [0, n)` below: `base` from the entered leaves,
        `n - 1` the most the others add. A read `m(v)` then covers `[m(base) + lo, m(base) + hi]`
        per dimension, for affine `m`; all the maps must cover the same block. Given the tensor's
        shape `whole`, a dimension indexed through a division is covered whole."""
        free = len(state.space.values)
        bases = self.var_exprs(state)
        offsets: list[AffineExpr] = []
        spans: list[int] = []
        for k, base in enumerate(bases):
            leaves = [n for n in self.loops.order if self.loops.var(n) == k and n not in state.terms]
            span = sum(self.loops.stride(n) * (state.extents.get(n, self.loops.full_extent(n)) - 1) for n in leaves)
            spans.append(span)
            offsets.append(base + AffineExpr.dimension(free + k))
        lane_var = self.loops.var(self.schedule.vectorize) if self.schedule.vectorize is not None else None
        blocks = set()
        for amap in maps:
            origin, extents, moving = [], [], None
            for j, e in enumerate(amap.results):
                form = linear_form(substitute(e, offsets))
                if form is None and whole is not None:
                    origin.append(AffineExpr.constant(0))
                    extents.append(whole[j])
                    if lane_var is not None and moves_with(substitute(e, offsets), free + lane_var):
                        moving = j
                    continue
                if form is None:
                    raise ScheduleError(f"{where}: the reader's index {e} into it is not affine")
                coeffs, const = form
                low = {d: c for d, c in coeffs.items() if d < free}
                shift = sum(c * spans[d - free] for d, c in coeffs.items() if d >= free and c < 0)
                extents.append(1 + sum(abs(c) * spans[d - free] for d, c in coeffs.items() if d >= free))
                origin.append(simplify(_linear_expr(low, const + shift)))
                if lane_var is not None and coeffs.get(free + lane_var):
                    moving = j
            blocks.add((tuple(origin), tuple(extents), moving))
        if len(blocks) != 1:
            raise ScheduleError(f"{where}: the reader reads it through several different index maps; compute it in "
                                "its own nest")
        (origin, extents, moving), = blocks
        return list(origin), list(extents), moving


def _row_contiguous(amap: AffineMap, dim: int) -> bool:
    """Whether a staged block's dimension `dim` is the tensor's last (its rows copy as vectors)."""
    return dim == len(amap.results) - 1


def _linear_expr(coeffs: Mapping[int, int], const: int) -> AffineExpr:
    expr: AffineExpr = AffineExpr.constant(const)
    for d, c in sorted(coeffs.items()):
        expr = expr + AffineExpr.dimension(d) * c
    return expr
