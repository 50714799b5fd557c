"""`mlc-auto-schedule`: a schedule for every compute op that has none, by simple heuristics.

Fusion, readers before producers (so a producer knows where its readers' values go):

1. Inline an op without a reduction into its readers when none needs it as a buffer (it is not
   returned, no scatter reads it), every read of it stays inside its bounds, and recomputing it
   at each read costs little: it is a copy through an affine map that keeps the order of the
   dims (any number of reads: the reader just reads the source), or the reads per element,
   summed over its readers, are at most `INLINE_READS[cost class]` (a transpose, which would
   turn its readers' walks along rows into walks across them, and a reshape, whose index has
   divisions: 16; a few arithmetic ops: 4; a body that calls a function such as `exp`: 1). So a
   conv's filter given as OIHW is transposed to HWIO once per call, not read across its rows
   at every tap (3x slower for LeNet-5's forward at batch 8). A body that calls a function is
   not inlined into a reader that would run it in scalars where its own nest runs vectors (a
   loss summed to one value: BCE's two logs per pixel, 8x slower so), and a producer is not
   inlined into a reader that calls one if the reader vectorizes only when the producer has a
   buffer.
2. Compute a reduction at the loops of its only reader when that reader is elementwise and reads
   it at its own index (bias, activation and the like run on the reduction's registers before
   they are stored): the reader takes the reduction's output loops (rule 4), the reduction
   computes each register block inside them. Not when the reduction runs in scalars and the
   reader calls a function and vectorizes in a nest of its own (GELU's gradient after a dense
   input gradient at batch 8).

Loops, for every op with a nest of its own:

3. Vectorize the last output dimension (contiguous in the output; the last longer than 1, the
   one-element dims after it moving before it, so that a one-channel image vectorizes along its
   width) when every read either does not depend on it or is contiguous in it and stays inside
   its tensor along it, the body does not use its index, and it has at least one vector of
   iterations. Reads are judged inside one
   vector (lanes starting at a multiple of the lane count): a read that divides the index,
   `(f floordiv Fg) * Cg + c` in a grouped conv, does not move with the lanes when `Fg` is a
   multiple of the lanes; for a smaller `Fg` the vectors narrow (down to `MIN_LANES`) until it
   is, and the schedule names their lanes (`vectorize(d3, 4)`). A read of a tensor with a
   buffer that the lanes walk some other way (the weights of an input gradient, w[.., c, f]
   along c) is staged: copied with the lanes' dimension last, once before the nest when its
   block fits in `STAGE_BYTES` (and the op reads each element `STAGE_REUSE_VECTORS` times or
   more; else the copy, which walks the source across its rows, costs what the vectors save,
   and the op keeps scalar cells: a dense input gradient at batch 8), else once per
   block of the vector dimension, whose loop then
   runs outermost (and such an op is not computed at its reader's loops, which would copy it
   per block of the reader). A read the lanes walk contiguously but the innermost reduction
   variable with a stride of `STAGE_STRIDE` elements or more (the weights of a conv with many
   filters, whose long rows a power of two apart compete for the same cache sets) is staged per
   vector block too.
4. A reduction over at least `TILE_MIN_REDUCTION` points gets a register tile: the last output
   dimension split into blocks of up to `TILE_VECTORS` vectors when vectorized (else of up to
   `TILE_SCALARS` points) and, when some output dimension is not read by a read that depends on
   the last one (the weights of a conv or matmul, reused across it), that dimension split into
   blocks of up to `TILE_REUSE` points that bring the tile to at most `REGISTER_CELLS`
   registers (the factor leaving the smallest remainder; the innermost such dimension); the blocks run innermost, unrolled, inside the reduction loops, so each
   weight loaded meets every point of the block in registers, and the independent sums hide the
   latency of each other's additions.
5. Parallelize the outermost loop that runs at least one iteration per core, when the op does at
   least `PARALLEL_MIN_POINTS` iteration points times the operations of its body (below that a
   fork and join costs more).
6. A register block whose reduction reads more than `TILE_FOOTPRINT_BYTES` (a conv's weight
   gradient, which sums over every pixel for each block of filters) would stream its inputs from
   far caches once per block. Then the reduction loops run outside the blocks, but for the
   innermost one: the partial sums live in the output (in cache), loaded into registers before
   the innermost reduction loop and stored after it, so each input element is read once per
   (parallel) block of the output and reused across all its blocks; the blocks of the reused
   dimension (input channels) run outermost, so that each keeps its part of the output in the
   nearest cache. The parallel loop is a block loop whose blocks share out evenly over the
   cores (a multiple of them, or `PARALLEL_BALANCE` per core); without one (a depthwise or
   grouped conv's few channels per group: 3 blocks on 2 cores leave one idle a third of the
   time) the vectors split into one block per core when they divide evenly, else the first
   block loop, else the outermost output loop, with enough iterations runs in parallel.
7. A register block's read that may fall outside its tensor (the input of a padded conv, the
   output gradient a conv's input gradient reads around its border) is staged with its fill
   once per iteration of the outermost loop when that block fits in `PAD_STAGE_BYTES` (one
   image of a small conv): the reduction's loads then need no guard, and each element copied
   is read many times. Not when rule 2 computes the op at its reader's loops: that copy would
   be made per block, and the fused epilogue saves more than the guards cost.

An op that already has a schedule keeps it (a user's choice wins), and so do its readers' and
producers' choices around it. None of these changes a value (see `mlc.loops.schedule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from math import prod

from xdsl.context import Context
from xdsl.dialects import arith, func, math
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineMap
from xdsl.passes import ModulePass

from mlc.loops.affine import coefficient, iteration_ranges, linear_form, read_in_bounds
from mlc.dialects import ix
from mlc.loops.nest.reads import effective_reads
from mlc.loops.nest.vectors import MIN_LANES, vector_cells
from mlc.loops.schedule import SCHEDULE, Schedule, schedule_of, set_schedule
from mlc.loops.target import CpuTarget, host
from mlc.passes.auto_schedule_analysis import (
    block_bytes,
    body_ops,
    element_bytes,
    lane_plan,
    reads_to_stage,
    reuse_dim,
    scheduled_as,
    stage_loop,
    tile_factor,
    tile_footprint,
    readers_of,
    vectorizable,
    vectorizes_on,
)

INLINE_READS = {"copy": float("inf"), "transpose": 16, "reshape": 16, "arithmetic": 4, "call": 1}
"""Most reads per element (over all readers) that inlining an op of each cost class may cost."""
TILE_MIN_REDUCTION = 8
TILE_VECTORS = 4
TILE_SCALARS = 8
TILE_REUSE = 12
REGISTER_CELLS = 28
"""Cells of a register tile: 32 vector registers less room for the loaded operands."""
TILE_FOOTPRINT_BYTES = 256 * 1024
PARALLEL_MIN_POINTS = 1 << 18
PARALLEL_BALANCE = 4
STAGE_STRIDE = 256
STAGE_REUSE = 64
STAGE_REUSE_VECTORS = 16
PAD_STAGE_BYTES = 64 * 1024
# Each constant is named in the rule (module docstring) it belongs to; the values were chosen by
# benchmarks/kernels.py and benchmarks/training_step.py on a 2-core AVX-512 machine.


@dataclass(frozen=True)
class AutoSchedulePass(ModulePass):
    """Give every compute op without a schedule one chosen by mlc's heuristics."""

    name = "mlc-auto-schedule"

    vector_bytes: int = 0
    """Bytes of a vector register (0: the host's), as for mlc-lower-loops."""
    threads: int = 0
    """Threads to plan parallel loops for (0: the host's cores; 1: no parallel loops)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = host()
        target = CpuTarget(vector_bytes=self.vector_bytes or target.vector_bytes, cores=self.threads or target.cores)
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            schedule_function(f, target)


def schedule_function(f: func.FuncOp, target: CpuTarget) -> None:
    computes = [o for o in f.body.block.ops if isinstance(o, ix.ComputeOp)]
    fixed = {o for o in computes if SCHEDULE in o.attributes}
    ret = f.body.block.last_op
    returned = set(ret.operands) if ret is not None else set()
    for op in reversed(computes):
        if op not in fixed and op.result not in returned and _inlinable(op) and _keeps_vectors(op, target):
            set_schedule(op, Schedule(inline=True))
    for op in computes:
        if op in fixed or not schedule_of(op).is_root:
            continue
        plan = loop_plan(op, target)
        reader = _epilogue_reader(op, fixed, returned)
        if reader is not None and plan.vectorize is not None and not vectorizable(
                reader, _var(plan.vectorize), plan.lanes or target.lanes(element_bytes(reader))):
            reader = None
        if reader is not None and plan.vectorize is None and _calls(reader) \
                and vectorizes_on(reader, target):  # its functions run in vectors in a nest of its own
            reader = None
        if plan.stage or plan.whole:  # per block of its reader, it would copy its staged reads (or sweep
            reader = None              # its whole reduction) for every block
        if reader is None:
            set_schedule(op, plan.schedule(op))
            continue
        set_schedule(reader, plan.reader_schedule())
        set_schedule(op, plan.block_schedule(op))
        fixed.add(reader)


# ---------------------------------------------------------------------------------------------
# Fusion


def _inlinable(op: ix.ComputeOp) -> bool:
    if op.reduction.data != "none":
        return False
    reads = readers_of(op.result)
    if not reads or any(not isinstance(r, ix.ComputeOp) for r, _ in reads):
        return False
    size = prod(op.result_type.get_shape())
    per_element = 0.0
    for reader, amap in reads:
        assert isinstance(reader, ix.ComputeOp)
        ranges = iteration_ranges(reader.result_type.get_shape(), reader.reduction_extents)
        if not all(read_in_bounds(amap, ranges, op.result_type.get_shape())):
            return False
        per_element += prod(reader.iteration_extents) / size
    return per_element <= INLINE_READS[_cost_class(op)]


def _keeps_vectors(op: ix.ComputeOp, target: CpuTarget) -> bool:
    """Whether inlining `op` keeps the functions called in vectors. It does not when a reader does
    not vectorize with `op` inlined, and `op` calls a function and vectorizes in a nest of its
    own (a loss summed to one value), or that reader calls one and vectorizes when `op` has a
    buffer (a transposed conv's interleaved phases before a sigmoid)."""
    readers = [r for r, _ in readers_of(op.result)]
    with scheduled_as(op, Schedule(inline=True)):
        stuck = [r for r in readers if not vectorizes_on(r, target)]
    if not stuck:
        return True
    if _calls(op) and vectorizes_on(op, target):
        return False
    return not any(_calls(r) and vectorizes_on(r, target) for r in stuck)


def _calls(op: Operation) -> bool:
    """Whether `op` is a compute op whose body calls a function (`exp`, `log`, ...)."""
    return isinstance(op, ix.ComputeOp) and _cost_class(op) == "call"


def _cost_class(op: ix.ComputeOp) -> str:
    body = [o for o in op.body.block.ops if not isinstance(o, ix.YieldOp | ix.IndexOp | arith.ConstantOp)]
    if not body:
        if any(linear_form(e) is None for r in op.reads for e in r.map.results):
            return "reshape"
        return "transpose" if any(_permutes(r.map) for r in op.reads) else "copy"
    if any(o.dialect_name() == "math" and not isinstance(o, math.AbsFOp | math.FmaOp) for o in body):
        return "call"
    return "arithmetic"


def _permutes(amap: AffineMap) -> bool:
    """Does a read walk its source's dims in another order than its own (a transpose), so that
    a reader inlining it would read across the source's rows where it read along them?"""
    order = [max(form[0], key=lambda d: form[0][d]) for e in amap.results if (form := linear_form(e)) and form[0]]
    return order != sorted(order)


def _epilogue_reader(op: ix.ComputeOp, fixed: set[ix.ComputeOp], returned: set[SSAValue]) -> ix.ComputeOp | None:
    """The elementwise reader `op` can be computed inside (rule 2), if there is one."""
    if op.reduction.data == "none" or op.result in returned:
        return None
    reads = readers_of(op.result)
    readers = {r for r, _ in reads}
    if len(readers) != 1:
        return None
    (reader,) = readers
    if not isinstance(reader, ix.ComputeOp) or reader in fixed or reader.reduction.data != "none":
        return None
    if reader.result_type.get_shape() != op.result_type.get_shape():
        return None
    identity = AffineMap.identity(op.rank)
    return reader if all(amap == identity for _, amap in reads) else None


# ---------------------------------------------------------------------------------------------
# Loops


@dataclass(frozen=True)
class LoopPlan:
    """The output loops of an op: splits, the order of the loops outside the reduction, and the
    register block inside it."""

    splits: tuple[tuple[str, int], ...]
    outer: tuple[str, ...]
    block: tuple[str, ...]
    vectorize: str | None
    unroll: tuple[str, ...]
    parallel: str | None
    stage: tuple[tuple[int, str | None], ...] = ()
    whole: bool = False
    """`outer` is the whole order but the register block (rule 6), reduction loops included."""
    padded: tuple[tuple[int, str], ...] = ()
    """Stages of reads that leave their tensor (rule 7), dropped when the op runs at its reader's
    loops (its epilogue fused in saves more than the guards cost)."""
    lanes: int = 0
    """The vectors' lanes when narrower than the target's (rule 3's groups), else 0."""

    def schedule(self, op: ix.ComputeOp) -> Schedule:
        reductions = () if self.whole else tuple(f"r{k}" for k in range(len(op.reduction_extents)))
        return Schedule(splits=self.splits, order=self.outer + reductions + self.block, parallel=self.parallel,
                        vectorize=self.vectorize, lanes=self.lanes, unroll=self.unroll, stage=self.stage + self.padded)

    def reader_schedule(self) -> Schedule:
        """The elementwise reader runs the reduction's output loops (the register block's loops
        plainly: only the reduction needs them unrolled)."""
        return Schedule(splits=self.splits, order=self.outer + self.block, parallel=self.parallel,
                        vectorize=self.vectorize, lanes=self.lanes)

    def block_schedule(self, op: ix.ComputeOp) -> Schedule:
        """The reduction over one block at the reader's innermost outer loop: its output loops,
        cut to the block, stay outside or run as the register block."""
        at = self.outer[-1] if self.outer else None
        inner_vars = {_var(n) for n in self.block}
        reductions = tuple(f"r{k}" for k in range(len(op.reduction_extents)))
        outside = tuple(f"d{k}" for k in range(op.rank) if k not in inner_vars)
        block = tuple(f"d{k}" for k in range(op.rank) if k in inner_vars)
        vectorize = f"d{_var(self.vectorize)}" if self.vectorize else None
        unroll = tuple(f"d{_var(n)}" for n in self.unroll)
        if at is None:  # the reader has no loop outside the block: the whole op is one block
            return Schedule(order=outside + reductions + block, vectorize=vectorize, lanes=self.lanes, unroll=unroll)
        return Schedule(at=at, order=outside + reductions + block, vectorize=vectorize, lanes=self.lanes, unroll=unroll)


def _var(name: str) -> int:
    return int(name[1:].rstrip("oi"))


def loop_plan(op: ix.ComputeOp, target: CpuTarget) -> LoopPlan:
    narrow = _group_lanes(op, target)
    if not narrow:
        return _loop_plan(op, target)
    plan = _loop_plan(op, replace(target, vector_bytes=narrow * element_bytes(op)))
    return replace(plan, lanes=narrow) if plan.vectorize is not None else plan


def _group_lanes(op: ix.ComputeOp, target: CpuTarget) -> int:
    """Rule 3's narrower vectors: when the last output dimension does not vectorize in the
    target's lanes because a read divides its index (a grouped conv's input, read per group of
    filters), the widest vectors of at least `MIN_LANES` that each stay inside one group; else 0."""
    rank, shape = op.rank, op.result_type.get_shape()
    axis, lanes, staged = lane_plan(op, target)
    if not rank or not any(axis in e.used_dims() and linear_form(e) is None
                           for _, amap in effective_reads(op) for e in amap.results):
        return 0
    if staged is not None or lanes < 2 or shape[axis] < lanes:
        return 0
    while lanes > MIN_LANES:
        lanes //= 2
        if reads_to_stage(op, axis, lanes) is not None:
            return lanes
    return 0


def _loop_plan(op: ix.ComputeOp, target: CpuTarget, widest: int = 0) -> LoopPlan:
    rank, shape = op.rank, op.result_type.get_shape()
    axis, lanes, staged = lane_plan(op, target)  # the one-element dims after the lane axis go before it
    natural = tuple(f"d{k}" for k in (*range(axis), *range(axis + 1, rank), axis)) if rank else ()
    vec = axis if staged is not None else None
    points = prod(op.iteration_extents) * body_ops(op)
    reduction = prod(op.reduction_extents) if op.reduction.data != "none" else 0
    if not rank or (vec is None and reduction < TILE_MIN_REDUCTION):
        return LoopPlan((), natural, (), None, (), _parallel(natural, shape, {}, points, target))
    if reduction < TILE_MIN_REDUCTION:
        last = natural[-1]
        whole_stages = [(k, None) for k in staged or ()]
        if any(stage_loop(op, k, axis, shape[axis]) is not None for k in staged or ()):
            return _loop_plan(op, CpuTarget(vector_bytes=1, cores=target.cores))  # a staged copy would not fit
        if shape[axis] <= 2 * lanes or (reduction and shape[axis] <= TILE_VECTORS * lanes):
            # the vectors of a row are the cells of a small reduction
            return LoopPlan((), natural[:-1], (last,), last, (), _parallel(natural[:-1], shape, {}, points, target),
                            tuple(whole_stages))
        if reduction:
            # A wide row under a small reduction: blocks of `TILE_VECTORS` vectors, so the tile
            # does not unroll into one vector per lane group of the whole row (a dense layer
            # with 10**5 outputs and 3 inputs emitted 25,000 vector ops and took minutes).
            width = TILE_VECTORS * lanes
            outer = (*natural[:-1], f"{last}o")
            extents = {f"{last}o": -(-shape[axis] // width)}
            return LoopPlan(((last, width),), outer, (f"{last}i",), f"{last}i", (),
                            _parallel(outer, shape, extents, points, target), tuple(whole_stages))
        # elementwise along a long row: a loop over vectors (not all of them written out)
        outer = (*natural[:-1], f"{last}o")
        extents = {f"{last}o": -(-shape[axis] // lanes)}
        return LoopPlan(((last, lanes),), outer, (f"{last}i",), f"{last}i", (),
                        _parallel(outer, shape, extents, points, target), tuple(whole_stages))
    last = axis
    if vec is not None:
        width = min(TILE_VECTORS * lanes, shape[last], widest or shape[last])
        cells = vector_cells(target.lanes(element_bytes(op)), width)
    else:
        width = cells = min(TILE_SCALARS, shape[last])
    splits = [(f"d{last}", width)] if width < shape[last] else []
    block = [f"d{last}i" if splits else f"d{last}"]
    unroll = [] if vec is not None else block[:]
    most = min(TILE_REUSE, REGISTER_CELLS // cells)
    reuse = reuse_dim(op, last, shape, most) if most > 1 else None
    if reuse is not None:
        factor = tile_factor(shape[reuse], most)
        splits.insert(0, (f"d{reuse}", factor))
        block.insert(0, f"d{reuse}i")
        unroll.insert(0, f"d{reuse}i")
    split_vars = {name: factor for name, factor in splits}
    outer = tuple(f"{n}o" if n in split_vars else n for n in natural if f"{n}" not in block)
    extents = {f"{n}o": -(-shape[int(n[1:])] // f) for n, f in split_vars.items()}
    reductions = tuple(f"r{k}" for k in range(len(op.reduction_extents)))
    whole = len(reductions) > 1 and tile_footprint(op, dict(splits)) > TILE_FOOTPRINT_BYTES
    stages: list[tuple[int, str | None]] = []
    if splits and vec is not None and not whole:  # a vector block of a wide tensor walked with a long stride
        staged = [*(staged or ()), *(k for k in _long_strided_reads(op, last, points) if k not in (staged or ()))]
    if staged and any(prod(op.iteration_extents) < STAGE_REUSE_VECTORS * prod(op.reads[k].value.type.get_shape())  # pyright: ignore[reportAttributeAccessIssue]
                      for k in staged):  # copying costs as much as the vectors save: scalar cells
        return _loop_plan(op, CpuTarget(vector_bytes=1, cores=target.cores))
    for k in staged or ():
        loop = stage_loop(op, k, last, width if splits else shape[last])
        if loop is False:  # no block of that read fits: no vectors
            return _loop_plan(op, CpuTarget(vector_bytes=1, cores=target.cores))
        assert loop is None or isinstance(loop, str)
        stages.append((k, loop))
        if loop is not None:  # the block is copied once per vector block: that loop goes outermost
            outer = (loop, *(n for n in outer if n != loop))
    if whole:
        # Rule 6: the reduction runs outermost, the output blocks inside it (accumulated in the
        # output, in registers along the innermost reduction loop).
        blocks = [n for n in outer if n.endswith("o") and n != f"d{last}o"] + [n for n in outer if n == f"d{last}o"]
        parallel = _parallel(blocks, shape, extents, points, target, balanced=True)
        if parallel is None and not widest and vec is not None and points >= PARALLEL_MIN_POINTS \
                and width == shape[last] and shape[last] % (target.cores * lanes) == 0 and target.cores > 1:
            return _loop_plan(op, target, shape[last] // target.cores)  # one block of vectors per core
        parallel = parallel or _parallel(blocks, shape, extents, points, target) \
            or _parallel(outer, shape, extents, points, target)
        first = (parallel,) if parallel is not None else ()
        rest = tuple(n for n in outer if n != parallel)
        return LoopPlan(tuple(splits), first + reductions[:-1] + rest + reductions[-1:], tuple(block),
                        block[-1] if vec is not None else None, tuple(unroll), parallel, tuple(stages), whole=True)
    padded = _padded_reads(op, outer[0] if outer else None, {k for k, _ in stages})
    return LoopPlan(tuple(splits), outer, tuple(block), block[-1] if vec is not None else None, tuple(unroll),
                    _parallel(outer, shape, extents, points, target), tuple(stages), padded=tuple(padded))


def _parallel(order: Sequence[str], shape: Sequence[int], extents: dict[str, int], points: int,
              target: CpuTarget, balanced: bool = False) -> str | None:
    """The outermost loop of `order` with an iteration per core (with `balanced`, one whose
    iterations also share out evenly: a multiple of the cores, or `PARALLEL_BALANCE` per core)."""
    if target.cores < 2 or points < PARALLEL_MIN_POINTS:
        return None
    for name in order:
        n = extents.get(name, shape[_var(name)] if name.startswith("d") else 0)
        if n >= target.cores and (not balanced or n % target.cores == 0 or n >= PARALLEL_BALANCE * target.cores):
            return name
    return None


def _long_strided_reads(op: ix.ComputeOp, vec: int, points: int) -> list[int]:
    """Reads contiguous along the lanes that the innermost reduction variable walks with a stride
    of at least `STAGE_STRIDE` elements (a conv's weights with many filters: each reduction step
    touches a new part of a long row, and rows a power of two apart compete for the same cache
    sets), each element of which the op reads `STAGE_REUSE` times or more (so that the copy is
    cheap beside the work). Staged per vector block, the block's rows are contiguous. A read of
    an op computed inside this one has no buffer to copy from and is never staged."""
    if not op.reduction_extents:
        return []
    innermost = op.rank + len(op.reduction_extents) - 1
    found = []
    for k, read in enumerate(op.reads):
        producer = read.value.owner
        if isinstance(producer, ix.ComputeOp) and not schedule_of(producer).is_root:
            continue
        shape = read.value.type.get_shape()  # pyright: ignore[reportAttributeAccessIssue]
        results = read.map.results
        if not results or coefficient(results[-1], vec) != 1 or any(vec in e.used_dims() for e in results[:-1]):
            continue
        stride, row = 0, 1
        for e, n in zip(reversed(results), reversed(shape)):
            c = coefficient(e, innermost)
            if c is None:
                break
            stride += c * row
            row *= n
        else:
            if abs(stride) >= STAGE_STRIDE and points >= STAGE_REUSE * prod(shape):
                found.append(k)
    return found


def _padded_reads(op: ix.ComputeOp, first: str | None, staged: set[int]) -> list[tuple[int, str]]:
    """Rule 7: the reads to stage at loop `first` (an output dimension, unsplit) because they
    may leave their tensor, with the block one iteration of `first` reads small enough."""
    if first is None or not first.startswith("d") or not first[1:].isdigit():
        return []
    spans = [n - 1 for n in op.iteration_extents]
    spans[int(first[1:])] = 0
    ranges = iteration_ranges(op.result_type.get_shape(), op.reduction_extents)
    found = []
    for k, read in enumerate(op.reads):
        producer = read.value.owner
        if k in staged or isinstance(producer, ix.ComputeOp) and not schedule_of(producer).is_root:
            continue
        if all(read_in_bounds(read.map, ranges, read.value.type.get_shape())):  # pyright: ignore[reportAttributeAccessIssue]
            continue
        if block_bytes(read, spans) > PAD_STAGE_BYTES:  # (a dimension indexed through a division is staged whole)
            continue
        found.append((k, first))
    return found
