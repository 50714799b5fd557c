"""The loop nest of one scheduled compute op: what mlc-lower-loops emits for each op with a nest
of its own, together with the ops computed inside it (inline, or at one of its loops).

Index space. While the nest is built, every index is an affine expression over the dimensions
in scope (`Space`): one per loop entered so far, each an SSA induction variable with its range,
and at most one *lane* dimension, whose iterations are the lanes of a vector. A leaf loop of the
schedule (`mlc.schedule.Loops`) stands for a *term*: its dimension, or a constant when it is
unrolled or cut to one iteration. An iteration variable is `origin + sum(stride * term)` over its
leaves, and a read `x[m(v)]` reads at `m` of those expressions, so reads, guards and vector
accesses are all decided on the expressions (interval bounds for guards, the lane coefficient for
contiguity) before any index code is emitted.

Variants. A split `v = f * vo + vi` of `n` iterations runs `vo` over `n // f` blocks of `f`, then,
when `n mod f` is not 0, once more with `vi` cut to the remainder: the nest below `vo` is built
once per variant, with constant extents in each.

Reductions. With output loops inside the outermost reduction loop, the partial results of those
loops (the *tile*) are kept in registers (SSA values carried through the reduction loops) when
the tile loops are innermost and all unrolled or vectorised, else in a local array of the tile's
size (at most `LOCAL_TILE_BYTES`), else in the output buffer itself. Sums of products accumulate
with fused multiply-adds, in every schedule, so the value of a sum never depends on its schedule.

Vectors. A vectorised loop of `n` iterations runs `n // lanes` vectors, then the remaining
iterations (two or more) as one *partial* vector: the narrowest that holds them, of which only
the first lanes are *active*; a single remaining iteration is a scalar. Only the active lanes are
read from memory and stored (masked loads and stores); the others compute on zeros and are
never stored, so a 6-channel loop is one 8-lane vector, not a vector of 4 and two scalars.
Reads that do not depend on the lanes are scalar loads (broadcast where they meet a vector);
reads contiguous in the lanes (the last index moves one element per lane, the others not at
all, inside the tensor) are vector loads; any other read is gathered lane by lane. A read may
leave its tensor only along dimensions the lanes do not move.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from math import prod

from xdsl.dialects import arith, math, memref, vector
from xdsl.dialects.builtin import Float32Type, IntegerType, MemRefType, VectorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.loops.affine import Interval, coefficient, iteration_ranges, linear_form, read_in_bounds, simplify, substitute
from mlc.dialects import ix, vx
from mlc.loops.builders import emit_index_expr, float_const, for_loop, guarded_load, in_bounds, index_const, loop_nest
from mlc.loops.schedule import STAGE_BYTES, Loops, Schedule, ScheduleError, check_schedule, schedule_of
from mlc.loops.target import CpuTarget

LOCAL_TILE_BYTES = 32 * 1024
"""Largest tile accumulated in a local array (beyond, the output buffer holds the partial sums)."""

PARALLEL_COPY_BYTES = 256 * 1024
"""A staged copy before its nest at least this large runs its outermost loop on every core."""

REGISTER_CELLS = 32
"""Most values (vectors or scalars) a register tile may hold: the vector registers of AVX-512."""


class NotVectorizable(ScheduleError):
    """A vectorised loop whose body cannot run on vectors (names the read or op and why)."""


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


class Nest:
    """Builds the nest of `op` writing `out`, following its schedule.

    `buffers` maps each materialised tensor to its memref. For an op computed at a loop of its
    reader, `origin` is where its block starts and `block` its output extents; its results go
    to `out` (the block's local buffer) at the offsets from the origin.
    """

    def __init__(self, op: ix.ComputeOp, buffers: Mapping[SSAValue, SSAValue], out: SSAValue, target: CpuTarget,
                 origin: Sequence[AffineExpr] | None = None, block: Sequence[int] | None = None) -> None:
        self.op, self.buffers, self.out, self.target = op, buffers, out, target
        self.schedule: Schedule = schedule_of(op)
        self.origin = tuple(origin) if origin is not None else None
        shape = tuple(block) if block is not None else op.result_type.get_shape()
        self.extents = (*shape, *op.reduction_extents)
        self.loops: Loops = check_schedule(self.schedule.with_(inline=False, at=None), op.rank, self.extents,
                                           op.reduction.data != "none")
        if origin is not None and self.schedule.parallel is not None:
            raise ScheduleError(f"parallel({self.schedule.parallel}): an op computed at a loop of its reader runs on "
                                "that loop's thread")
        self.attached = _attached_producers(op)
        for read, loop in self.schedule.stage:
            if read >= len(op.reads) or isinstance(op.reads[read].value.owner, ix.ComputeOp) \
                    and not schedule_of(op.reads[read].value.owner).is_root:  # pyright: ignore[reportArgumentType]
                raise ScheduleError(f"stage({read}): not a read of a tensor with a buffer (the op has {len(op.reads)} "
                                    "reads; one of an op computed inside this one cannot be staged)")
        if self.schedule.vectorize in self.attached:
            raise ScheduleError(f"at({self.schedule.vectorize}): the reader's loop {self.schedule.vectorize} is vectorized; "
                                "compute the producer at a loop outside it")
        self.lanes = target.lanes(_element_bytes(op.result_type.get_element_type()))
        self.loaded: dict[tuple[object, ...], SSAValue] | None = None
        """Loads already emitted in the current block, while it has no store (a register tile's
        cells read the same operands)."""

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

    # -- loops ---------------------------------------------------------------------------------
    def walk(self, leaves: Sequence[str], state: State, point: Point, carried: Sequence[SSAValue],
             unrolled: bool = False) -> Sequence[SSAValue]:
        """The loops `leaves` (outermost first) around `point`, threading `carried` through them;
        `unrolled` unrolls every loop (register tiles)."""
        if not leaves:
            return point(state, carried)
        name, rest = leaves[0], leaves[1:]
        for start, stop, extents in self.variants(name, state):
            carried = self.loop(name, start, stop, extents, rest, state, point, carried, unrolled)
        return carried

    def variants(self, name: str, state: State) -> list[tuple[int, int, dict[str, int]]]:
        """`(first, end, extents below)` per variant of a leaf: the blocks of a split's outer half
        and its remainder, or the leaf's whole range."""
        for ancestor in self.loops.ancestors(name)[:1]:
            if name == ancestor + "o":
                factor, n = self.loops.splits[ancestor], state.extents[ancestor]
                full, rest = divmod(n, factor)
                found = [(0, full, {ancestor + "i": factor})] if full else []
                return found + ([(full, full + 1, {ancestor + "i": rest})] if rest else [])
        return [(0, state.extents[name], {})]

    def loop(self, name: str, start: int, stop: int, extents: dict[str, int], rest: Sequence[str], state: State,
             point: Point, carried: Sequence[SSAValue], unrolled: bool) -> Sequence[SSAValue]:
        def enter(term: AffineExpr, space: Space | None = None) -> State:
            return self.attach(name, state.entered(name, term, space, **extents))

        if stop - start == 1:
            return self.walk(rest, enter(AffineExpr.constant(start)), point, carried, unrolled)
        if name == self.schedule.vectorize and self.lanes > 1:
            return self.vector_loop(name, start, stop, enter, rest, state, point, carried, unrolled)
        if unrolled or name in self.schedule.unroll:
            for k in range(start, stop):
                carried = self.walk(rest, enter(AffineExpr.constant(k)), point, carried, unrolled)
            return carried

        def body(iv: SSAValue, values: Sequence[SSAValue]) -> Sequence[SSAValue]:
            space, dim = state.space.add(iv, start, stop - 1)
            return self.walk(rest, enter(dim, space), point, values, unrolled)

        return for_loop(start, stop, body, carried, parallel=name == self.schedule.parallel)

    def vector_loop(self, name: str, start: int, stop: int, enter: Callable[..., State], rest: Sequence[str],
                    state: State, point: Point, carried: Sequence[SSAValue], unrolled: bool) -> Sequence[SSAValue]:
        """Vectors of the target's lanes, then a partial vector (see the module docstring), then
        a last iteration as a scalar."""
        first = start
        for width, active in vector_runs(self.lanes, stop - start):
            space, dim = state.space.add(index_const(first), first, first + active - 1, lanes=width)
            carried = self.walk(rest, enter(dim, space), point, carried, unrolled)
            first += active
        if first == stop:
            return carried
        if unrolled or stop - first == 1:
            for k in range(first, stop):
                carried = self.walk(rest, enter(AffineExpr.constant(k)), point, carried, unrolled)
            return carried
        end = first

        def body(iv: SSAValue, values: Sequence[SSAValue]) -> Sequence[SSAValue]:
            space, dim = state.space.add(iv, end, stop - 1)
            return self.walk(rest, enter(dim, space), point, values, unrolled)

        return for_loop(end, stop, body, carried)

    # -- the point and the reductions ----------------------------------------------------------
    def var_exprs(self, state: State) -> list[AffineExpr]:
        """Every iteration variable as an expression over the space (entered leaves only)."""
        exprs: list[AffineExpr] = [AffineExpr.constant(0)] * len(self.extents)
        for name, term in state.terms.items():
            k = self.loops.var(name)
            exprs[k] = exprs[k] + term * self.loops.stride(name)
        if self.origin is not None:
            exprs = [e + o for e, o in zip(exprs, self.origin)] + exprs[len(self.origin):]
        return [simplify(e) for e in exprs]

    def out_index(self, state: State) -> list[AffineExpr]:
        exprs = self.var_exprs(state)[:self.op.rank]
        if self.origin is not None:
            exprs = [simplify(e - o) for e, o in zip(exprs, self.origin)]
        return exprs

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
        local = prod(sizes) * _element_bytes(elt) <= LOCAL_TILE_BYTES
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
        value = float_const(0.0 if self.op.reduction.data == "sum" else float("-inf"), elt)
        return value if width == 1 else vector.BroadcastOp(value, VectorType(elt, [width])).vector

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
        mlc/schedule.py): the block's dimension the lanes walk goes last, the read's fill fills
        what lies outside the tensor. A copy before the nest of `PARALLEL_COPY_BYTES` or more
        runs its outermost loop in parallel."""
        read = self.op.reads[k]
        where = f"stage({k}{'' if (loop := dict(self.schedule.stage)[k]) is None else ', ' + loop})"
        origin, block, moving = self.block_of([read.map], state, where)
        order = tuple([d for d in range(len(block)) if d != moving] + ([moving] if moving is not None else []))
        source = self.buffers[read.value]
        elt = _shape_type(source).get_element_type()
        if prod(block) * _element_bytes(elt) > STAGE_BYTES:
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
        if rows and not state.space.values and prod(block) * _element_bytes(elt) >= PARALLEL_COPY_BYTES:
            # before the nest, outside any loop: the threads share the copy (it is memory-bound)
            for_loop(0, rows[0], lambda iv, _: loop_nest(rows[1:], lambda ivs, c: copy([iv, *ivs], c)), parallel=True)
        else:
            loop_nest(rows, copy)
        return replace(state, locals={**state.locals, (self.op.result, k): local})

    def block_of(self, maps: Sequence[AffineMap], state: State, where: str) -> tuple[list[AffineExpr], list[int], int | None]:
        """Origin and extents of the block that reads through `maps` cover below the current loops,
        and the block dimension the vectorized loop moves (if any).

        Each iteration variable ranges over `base + [0, n)` below: `base` from the entered leaves,
        `n - 1` the most the others add. A read `m(v)` then covers `[m(base) + lo, m(base) + hi]`
        per dimension, for affine `m`; all the maps must cover the same block."""
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

    # -- values --------------------------------------------------------------------------------
    def value(self, op: ix.ComputeOp, exprs: Sequence[AffineExpr], state: State, acc: SSAValue | None = None) -> SSAValue:
        """The body of `op` at the iteration point `exprs`, combined into `acc` for a reduction."""
        args = []
        for k, r in enumerate(op.reads):
            staged = state.locals.get((op.result, k))
            if staged is None:
                args.append(self.read(r, exprs, state))
            else:
                args.append(self.load(staged.buffer, staged.index([substitute(e, exprs) for e in r.map.results]), 0.0,
                                      state.space))
        return self.body(op, args, exprs, state.space, acc)

    def read(self, read: ix.Read, exprs: Sequence[AffineExpr], state: State) -> SSAValue:
        index = [substitute(e, exprs) for e in read.map.results]
        producer = read.value.owner
        if isinstance(producer, ix.ComputeOp) and not schedule_of(producer).is_root:
            if schedule_of(producer).inline:
                return self.inline(producer, index, read.fill, state)
            local = state.locals.get(read.value)
            if local is None:
                raise ScheduleError(f"at({schedule_of(producer).at}): not a loop of its reader that encloses the read")
            return self.load(local.buffer, local.index(index), 0.0, state.space)
        return self.load(self.buffers[read.value], index, read.fill, state.space)

    def inline(self, producer: ix.ComputeOp, index: Sequence[AffineExpr], fill: float, state: State) -> SSAValue:
        """An inlined producer's value at `index`: its body, where the index stays in its bounds;
        where it may not, the body at the index clamped into them, and the read's fill outside."""
        amap = AffineMap(len(state.space.values), 0, tuple(index))
        safe = read_in_bounds(amap, state.space.ranges, producer.result_type.get_shape())
        if all(safe):
            return self.value(producer, index, state)
        if any(not ok and state.space.uses_lanes(e) for e, ok in zip(index, safe)):  # lane by lane
            return _from_lanes([self.inline(producer, at, fill, replace(state, space=scalar_space))
                                for at, scalar_space in _lanes(index, state.space)], state.space.width)
        space, clamped, indices = state.space, list(index), []
        for k, (e, ok, n) in enumerate(zip(index, safe, producer.result_type.get_shape())):
            if ok:
                continue
            indices.append((space.emit(e), n))
            space, clamped[k] = space.add(_clamp(indices[-1][0], n), 0, n - 1)
        cond = in_bounds([i for i, _ in indices], [n for _, n in indices], [True] * len(indices))
        assert cond is not None
        value = self.value(producer, clamped, replace(state, space=space))
        filler = float_const(fill, producer.result_type.get_element_type())
        if isinstance(value.type, VectorType):
            filler = vector.BroadcastOp(filler, value.type).vector
        return arith.SelectOp(cond, value, filler).result

    def body(self, op: ix.ComputeOp, args: Sequence[SSAValue], exprs: Sequence[AffineExpr], space: Space,
             acc: SSAValue | None) -> SSAValue:
        """Clone the body (on vectors where an operand is one); fold it into `acc` if given."""
        mapping: dict[SSAValue, SSAValue] = dict(zip(op.body.block.args, args, strict=True))
        yielded = op.yield_op.value
        product = acc is not None and op.reduction.data == "sum" and isinstance(yielded.owner, arith.MulfOp) \
            and yielded.has_one_use()
        for body_op in op.body.block.ops:
            if isinstance(body_op, ix.YieldOp) or (product and body_op is yielded.owner):
                continue
            if isinstance(body_op, ix.IndexOp):
                expr = exprs[body_op.dim.value.data]
                if space.uses_lanes(expr):
                    raise NotVectorizable(f"vectorize({self.schedule.vectorize}): the body of {op.name} uses the index "
                                          "the lanes run along")
                mapping[body_op.result] = space.emit(expr)
                continue
            operands = [mapping.get(v, v) for v in body_op.operands]
            clone = _vector_op(body_op, operands) if any(isinstance(v.type, VectorType) for v in operands) \
                else body_op.clone(value_mapper=mapping)
            if clone.parent is None:
                _insert(clone)
            mapping.update(zip(body_op.results, clone.results))
        if acc is None:
            return mapping.get(yielded, yielded)
        width = acc.type.get_shape()[0] if isinstance(acc.type, VectorType) else 1  # pyright: ignore[reportAttributeAccessIssue]
        if product:
            mul = yielded.owner
            assert isinstance(mul, arith.MulfOp)
            a, b = (_widened(mapping.get(v, v), width) for v in (mul.lhs, mul.rhs))
            return math.FmaOp(a, b, acc).result
        value = _widened(mapping.get(yielded, yielded), width)
        if op.reduction.data == "sum":
            return arith.AddfOp(acc, value).result
        if width > 1:
            return vx.SelectOp(vx.CmpfOp("ogt", value, acc).result, value, acc).result
        return arith.SelectOp(arith.CmpfOp(value, acc, "ogt").result, value, acc).result

    # -- memory --------------------------------------------------------------------------------
    def load(self, buffer: SSAValue, index: Sequence[AffineExpr], fill: float, space: Space) -> SSAValue:
        """`buffer[index]` (the fill outside it) as a scalar or a vector (see the module docstring)."""
        if self.loaded is None:
            return self._load(buffer, index, fill, space)
        used = sorted(set().union(*(e.used_dims() for e in index)))
        lanes = (space.ranges[space.lane], space.width) if space.lane in used else None
        dims = tuple((d, _value_key(space.values[d]), space.ranges[d]) for d in used)
        key = (buffer, tuple(str(e) for e in index), fill, lanes, dims)
        if key not in self.loaded:
            self.loaded[key] = self._load(buffer, index, fill, space)
        return self.loaded[key]

    def _load(self, buffer: SSAValue, index: Sequence[AffineExpr], fill: float, space: Space) -> SSAValue:
        shape = _shape(buffer)
        amap = AffineMap(len(space.values), 0, tuple(index))
        unsafe = [not ok for ok in read_in_bounds(amap, space.ranges, shape)]
        moving = [space.uses_lanes(e) for e in index]
        if not any(moving):
            return guarded_load(buffer, [space.emit(e) for e in index], unsafe, fill)
        if _contiguous(index, space) and not unsafe[-1]:
            indices = [space.emit(e) for e in index]
            cond = in_bounds(indices, shape, unsafe)
            typ = VectorType(_shape_type(buffer).get_element_type(), [space.width])
            if cond is None:
                return _vector_load(buffer, indices, typ, space.active)
            clamped = [_clamp(i, n) if bad else i for i, n, bad in zip(indices, shape, unsafe)]
            loaded = _vector_load(buffer, clamped, typ, space.active)
            filler = vector.BroadcastOp(float_const(fill, typ.element_type), typ).vector
            return arith.SelectOp(cond, loaded, filler).result
        return self.gather(buffer, index, fill, space)

    def gather(self, buffer: SSAValue, index: Sequence[AffineExpr], fill: float, space: Space) -> SSAValue:
        """A vector read lane by lane."""
        return _from_lanes([self.load(buffer, at, fill, scalar_space) for at, scalar_space in _lanes(index, space)],
                           space.width)

    def store(self, buffer: SSAValue, index: Sequence[AffineExpr], value: SSAValue, space: Space) -> None:
        if space.lane is None:
            memref.StoreOp.get(value, buffer, [space.emit(e) for e in index])
            return
        value = _widened(value, space.width)
        if _contiguous(index, space):
            indices = [space.emit(e) for e in index]
            if space.active < space.width:
                vector.MaskedStoreOp(buffer, indices, _prefix_mask(space.active, space.width), value)
            else:
                vector.StoreOp(value, buffer, indices)
            return
        for lane, (at, scalar_space) in enumerate(_lanes(index, space)):
            scalar = vector.ExtractOp(value, [lane], value.type.element_type).result  # pyright: ignore[reportAttributeAccessIssue]
            memref.StoreOp.get(scalar, buffer, [scalar_space.emit(e) for e in at])


# ---------------------------------------------------------------------------------------------
# Helpers


MIN_LANES = 4
"""The narrowest vectors a short vectorized loop uses (SSE's and NEON's width in f32)."""


def narrowest_lanes(lanes: int, extent: int) -> int:
    """The target's lanes, halved while more than `extent` (down to `MIN_LANES`)."""
    while lanes > MIN_LANES and lanes > extent:
        lanes //= 2
    return lanes


def vector_runs(lanes: int, extent: int) -> list[tuple[int, int]]:
    """The vectors a vectorised loop of `extent` iterations runs, as (width, active lanes): full
    ones of `lanes`, then for two or more remaining iterations one partial vector, the narrowest
    power of two (at least `MIN_LANES`) that holds them; a last single iteration is a scalar."""
    runs = [(lanes, lanes)] * (extent // lanes)
    rest = extent % lanes
    if rest >= 2:
        width = MIN_LANES
        while width < rest:
            width *= 2
        runs.append((min(width, lanes), rest))
    return runs


def vector_cells(lanes: int, extent: int) -> int:
    """Values (vectors and scalars) a vectorised loop of `extent` iterations computes."""
    runs = vector_runs(lanes, extent)
    return len(runs) + extent - sum(active for _, active in runs)


def effective_reads(op: ix.ComputeOp) -> list[tuple[SSAValue, AffineMap]]:
    """What computing `op` reads from tensors with nests or buffers of their own, through the
    producers it inlines: (value, map from `op`'s iteration space into it)."""
    found: list[tuple[SSAValue, AffineMap]] = []
    for read in op.reads:
        producer = read.value.owner
        if isinstance(producer, ix.ComputeOp) and schedule_of(producer).inline:
            found += [(value, amap.compose(read.map)) for value, amap in effective_reads(producer)]
        else:
            found.append((read.value, read.map))
    return found


def root_readers(value: SSAValue, *, through_at: bool = False) -> set[Operation]:
    """The ops that compute with `value` in nests of their own, through inlined readers (and,
    with `through_at`, through readers computed at a loop of theirs: the nests that run them)."""
    found: set[Operation] = set()
    for use in value.uses:
        reader = use.operation
        schedule = schedule_of(reader)
        if isinstance(reader, ix.ComputeOp) and (schedule.inline or through_at and not schedule.is_root):
            found |= root_readers(reader.result, through_at=through_at)
        else:
            found.add(reader)
    return found


def _attached_producers(op: ix.ComputeOp) -> dict[str, list[ix.ComputeOp]]:
    """The producers `op` reads (through inlined ops) that are computed at one of its loops,
    by loop name."""
    found: dict[str, list[ix.ComputeOp]] = {}
    for value in dict.fromkeys(v for v, _ in effective_reads(op)):
        producer = value.owner
        if isinstance(producer, ix.ComputeOp) and (at := schedule_of(producer).at) is not None:
            found.setdefault(at, []).append(producer)
            if (readers := root_readers(producer.result)) != {op}:
                raise ScheduleError(f"at({at}): computed at a loop of its reader, but {len(readers)} ops read it")
    return found


def _row_contiguous(amap: AffineMap, dim: int) -> bool:
    """Whether a staged block's dimension `dim` is the tensor's last (its rows copy as vectors)."""
    return dim == len(amap.results) - 1


def _value_key(value: SSAValue) -> object:
    """A value as a cache key: constants by their value (each unrolled cell emits its own)."""
    owner = value.owner
    if isinstance(owner, arith.ConstantOp):
        return ("constant", str(owner.value))
    return value


def _lanes(index: Sequence[AffineExpr], space: Space) -> list[tuple[list[AffineExpr], Space]]:
    """For each lane of a vector space: `index` at that lane, and the scalar space to read it in."""
    assert space.lane is not None
    lo = space.ranges[space.lane][0]
    scalar = replace(space, lane=None, width=1)
    found = []
    for lane in range(space.active):
        at = [AffineExpr.constant(lo + lane) if k == space.lane else AffineExpr.dimension(k) for k in range(len(space.values))]
        found.append(([substitute(e, at) for e in index], scalar))
    return found


def _from_lanes(values: Sequence[SSAValue], width: int) -> SSAValue:
    """A vector of `width` lanes, lane k being `values[k]` (the lanes beyond, `values[0]`)."""
    result = vector.BroadcastOp(values[0], VectorType(values[0].type, [width])).vector
    for lane, value in enumerate(values[1:], 1):
        result = vector.InsertOp(value, result, [lane]).result
    return result


def _prefix_mask(active: int, width: int) -> SSAValue:
    """The mask of a partial vector: its first `active` of `width` lanes."""
    return vector.CreateMaskOp([index_const(active)], VectorType(IntegerType(1), [width])).results[0]


def _vector_load(buffer: SSAValue, indices: Sequence[SSAValue], typ: VectorType, active: int) -> SSAValue:
    """A contiguous load of a vector's active lanes (the others 0)."""
    width = typ.get_shape()[0]
    if active == width:
        return vector.LoadOp(buffer, indices, typ).result
    zeros = vector.BroadcastOp(float_const(0.0, typ.get_element_type()), typ).vector
    return vector.MaskedLoadOp(buffer, indices, _prefix_mask(active, width), zeros, typ).result


def _contiguous(index: Sequence[AffineExpr], space: Space) -> bool:
    """The last index moves one element per lane and the others not at all."""
    if any(space.uses_lanes(e) for e in index[:-1]) or not index:
        return False
    assert space.lane is not None
    return coefficient(index[-1], space.lane) == 1


def _linear_expr(coeffs: Mapping[int, int], const: int) -> AffineExpr:
    expr: AffineExpr = AffineExpr.constant(const)
    for d, c in sorted(coeffs.items()):
        expr = expr + AffineExpr.dimension(d) * c
    return expr


def _shift(expr: AffineExpr, old: int, new: int) -> AffineExpr:
    """Renumber the dimensions `>= old` of `expr` to start at `new` (a tile cell's lane dimension
    moves behind the reduction loops' dimensions)."""
    if old == new:
        return expr
    top = max(expr.used_dims(), default=-1) + 1
    mapping = [AffineExpr.dimension(k if k < old else k - old + new) for k in range(max(top, old))]
    return substitute(expr, mapping)


def _vector_op(op: Operation, operands: Sequence[SSAValue]) -> Operation:
    """`op` on vectors: scalar operands broadcast, results vectors of the operands' width."""
    width = next(v.type.get_shape()[0] for v in operands if isinstance(v.type, VectorType))  # pyright: ignore[reportAttributeAccessIssue]
    if isinstance(op, arith.CmpfOp):
        a, b = (_widened(v, width) for v in operands)
        return vx.CmpfOp(arith.CMPF_COMPARISON_OPERATIONS[op.predicate.value.data], a, b)
    if isinstance(op, arith.SelectOp) and isinstance(operands[0].type, VectorType):
        return vx.SelectOp(*(_widened(v, width) for v in operands))
    if isinstance(op, arith.SelectOp):
        operands = [operands[0], *(_widened(v, width) for v in operands[1:])]
    else:
        operands = [_widened(v, width) for v in operands]
    results = [VectorType(r.type, [width]) for r in op.results]
    return type(op).create(operands=operands, result_types=results, properties=dict(op.properties),
                           attributes=dict(op.attributes))


def _widened(value: SSAValue, width: int) -> SSAValue:
    if width == 1 or isinstance(value.type, VectorType):
        return value
    return vector.BroadcastOp(value, VectorType(value.type, [width])).vector


def _insert(op: Operation) -> None:
    from xdsl.builder import _current_builder  # pyright: ignore[reportPrivateUsage]

    builder = _current_builder.builder
    assert builder is not None, "the nest is built inside an ImplicitBuilder"
    builder.insert(op)


def _clamp(index: SSAValue, size: int) -> SSAValue:
    return arith.MaxSIOp(arith.MinSIOp(index, index_const(size - 1)).result, index_const(0)).result


def _shape_type(buffer: SSAValue) -> MemRefType:
    t = buffer.type
    assert isinstance(t, MemRefType)
    return t


def _shape(buffer: SSAValue) -> tuple[int, ...]:
    return _shape_type(buffer).get_shape()


def _element_bytes(elt: Attribute) -> int:
    return 4 if isinstance(elt, Float32Type) else getattr(elt, "bitwidth", 64) // 8

