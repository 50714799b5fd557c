"""What `mlc-auto-schedule`'s rules ask of a compute op (the rules and their thresholds are in
`mlc.passes.auto_schedule`): its readers through inlined ops, whether an output dimension
vectorizes and which reads to stage for it, where a staged copy fits, the bytes a block reads,
register-tile sizes and the operations per iteration point. Not a pass: analyses only."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from xdsl.dialects import arith
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.loops.affine import Interval, coefficient, iteration_ranges, linear_form, read_in_bounds, simplify_within, substitute
from mlc.dialects import ix
from mlc.loops.nest.reads import effective_reads
from mlc.loops.nest.vectors import lane_axis, narrowest_lanes
from mlc.loops.schedule import SCHEDULE, STAGE_BYTES, Schedule, schedule_of, set_schedule
from mlc.loops.target import CpuTarget


def readers_of(value: SSAValue) -> list[tuple[Operation, AffineMap]]:
    """Each read of `value` by an op with a nest of its own (or a non-compute op), through inlined
    readers: (the reader, the map from its iteration space into `value`)."""
    found: list[tuple[Operation, AffineMap]] = []
    for use in value.uses:
        reader = use.operation
        if not isinstance(reader, ix.IndexNotationOp):
            found.append((reader, AffineMap(0, 0, ())))
            continue
        maps = [r.map for r in reader.reads if r.value is value]
        if isinstance(reader, ix.ComputeOp) and schedule_of(reader).inline:
            found += [(outer, amap.compose(via)) for outer, via in readers_of(reader.result) for amap in maps]
        else:
            found += [(reader, amap) for amap in maps]
    return list(dict.fromkeys(found))


def tile_footprint(op: ix.ComputeOp, splits: dict[str, int]) -> int:
    """Bytes the reduction of one register block reads (the block's output dimensions at their
    block sizes, the others at one point, the reduction whole): what the block streams through
    the caches."""
    axis = lane_axis(op.result_type.get_shape())
    spans = [splits.get(f"d{k}", n if k == axis else 1) - 1 for k, n in enumerate(op.result_type.get_shape())]
    spans += [n - 1 for n in op.reduction_extents]
    total = 0
    for read in op.reads:
        size = getattr(read.value.type.get_element_type(), "bitwidth", 32) // 8  # pyright: ignore[reportAttributeAccessIssue]
        for e in read.map.results:
            form = linear_form(e)
            size *= (1 + sum(abs(c) * spans[d] for d, c in form[0].items())) if form else 1
        total += size
    return total


def tile_factor(extent: int, most: int) -> int:
    """The block size up to `most` with the most points per block on average, remainder block
    included (ties: one without a remainder, whose nest has one variant less; then the larger)."""
    most = max(1, min(most, extent))
    return max(range(1, most + 1), key=lambda f: (extent / -(-extent // f), extent % f == 0, f))


def body_ops(op: ix.ComputeOp) -> int:
    """Operations one iteration point computes (its body and the bodies it inlines), at least one."""
    count = sum(1 for o in op.body.block.ops if not isinstance(o, ix.YieldOp | ix.IndexOp | arith.ConstantOp))
    for read in op.reads:
        producer = read.value.owner
        if isinstance(producer, ix.ComputeOp) and schedule_of(producer).inline:
            count += body_ops(producer)
    return max(1, count)


def in_vector(amap: AffineMap, k: int, lanes: int, ranges: Sequence[Interval]) -> tuple[AffineMap, list[Interval]]:
    """`amap` inside one vector along output dimension `k`: k = lanes * K + lane, with K a new
    last dimension, k the lane (vectors start at multiples of `lanes`, as the nest runs them),
    and the divisions the lane stays inside resolved (a grouped conv's group of a vector)."""
    n = amap.num_dims
    lo, hi = ranges[k]
    inner = [*ranges[:k], (0, min(lanes, hi - lo + 1) - 1), *ranges[k + 1:], (lo // lanes, hi // lanes)]
    values = [AffineExpr.dimension(n) * lanes + AffineExpr.dimension(j) if j == k else AffineExpr.dimension(j)
              for j in range(n)]
    return AffineMap(n + 1, 0, tuple(simplify_within(substitute(e, values), inner) for e in amap.results)), inner


def vectorizable(op: ix.ComputeOp, k: int, lanes: int) -> bool:
    """Rule 3 for output dimension `k` in vectors of `lanes`: every read contiguous in it or
    independent of it (and inside its tensor along it), and the body does not use its index."""
    return _reads_vectorizable(op, k, lanes, set()) and not _uses_index(op, k)


def reads_to_stage(op: ix.ComputeOp, k: int, lanes: int) -> list[int] | None:
    """Rule 3 with staging: the reads of `op` to stage so that output dimension `k` vectorizes
    (those the lanes walk other than contiguously: direct reads of tensors with buffers, which a
    staged copy makes contiguous), or None when it cannot."""
    if vectorizable(op, k, lanes):
        return []
    if _uses_index(op, k):
        return None
    ranges = iteration_ranges(op.result_type.get_shape(), op.reduction_extents)
    found = []
    for j, read in enumerate(op.reads):
        producer = read.value.owner
        through = isinstance(producer, ix.ComputeOp) and not schedule_of(producer).is_root
        results = in_vector(read.map, k, lanes, ranges)[0].results
        if not any(k in e.used_dims() for e in results):
            continue
        axis = lane_axis(read.value.type.get_shape())  # pyright: ignore[reportAttributeAccessIssue]
        if all(k not in e.used_dims() for j, e in enumerate(results) if j != axis) \
                and coefficient(results[axis], k) == 1 and not through:
            continue
        moving = [e for e in results if k in e.used_dims()]
        if through or any(linear_form(e) is None for e in results) and (len(moving) != 1 or coefficient(moving[0], k) != 1):
            return None  # a quasi-affine read stages whole along its divided dimensions: one lane dimension
        found.append(j)
    return found if _reads_vectorizable(op, k, lanes, set(found)) else None


def _reads_vectorizable(op: ix.ComputeOp, k: int, lanes: int, staged: set[int]) -> bool:
    """Every read but the staged ones (taken as contiguous) contiguous along the lanes of
    output dimension `k` (along its tensor's lane axis, `lane_axis`) or independent of them, and
    inside its tensor along them."""
    ranges = iteration_ranges(op.result_type.get_shape(), op.reduction_extents)
    for j, read in enumerate(op.reads):
        if j in staged:
            continue
        producer = read.value.owner
        reads = [(read.value, read.map)]
        if isinstance(producer, ix.ComputeOp) and schedule_of(producer).inline:
            reads = [(v, m.compose(read.map)) for v, m in effective_reads(producer)]
        for value, amap in reads:
            results = in_vector(amap, k, lanes, ranges)[0].results
            shape = value.type.get_shape()  # pyright: ignore[reportAttributeAccessIssue]
            axis = lane_axis(shape)
            if any(k in e.used_dims() for j, e in enumerate(results) if j != axis):
                return False
            if results and k in results[axis].used_dims():
                if coefficient(results[axis], k) != 1 or not read_in_bounds(
                        AffineMap(amap.num_dims, 0, amap.results[axis:axis + 1]), ranges, shape[axis:axis + 1])[0]:
                    return False
    return True


def block_bytes(read: ix.Read, spans: Sequence[int]) -> int:
    """Bytes of the block of `read` that iteration variables moving over `spans` cover."""
    elt = read.value.type.get_element_type()  # pyright: ignore[reportAttributeAccessIssue]
    total = getattr(elt, "bitwidth", 32) // 8
    for e, n in zip(read.map.results, read.value.type.get_shape()):  # pyright: ignore[reportAttributeAccessIssue]
        form = linear_form(e)
        total *= n if form is None else 1 + sum(abs(c) * spans[d] for d, c in form[0].items())
    return total


def stage_loop(op: ix.ComputeOp, k: int, vec: int, width: int) -> str | None | bool:
    """Where to stage read `k`: before the nest (None) when the whole block it reads fits in
    `STAGE_BYTES`, else at the outer loop of the vector dimension's blocks of `width` (its block
    then spans one vector block), else nowhere (False)."""
    read = op.reads[k]
    extents = list(op.iteration_extents)
    if block_bytes(read, [n - 1 for n in extents]) <= STAGE_BYTES:
        return None
    extents[vec] = width
    if width < op.result_type.get_shape()[vec] and block_bytes(read, [n - 1 for n in extents]) <= STAGE_BYTES:
        return f"d{vec}o"
    return False


def _uses_index(op: ix.ComputeOp, k: int) -> bool:
    """Whether the body of `op`, or of an op it inlines, reads the index of output dimension `k`."""
    if any(isinstance(o, ix.IndexOp) and o.dim.value.data == k for o in op.body.block.ops):
        return True
    for read in op.reads:
        producer = read.value.owner
        if isinstance(producer, ix.ComputeOp) and schedule_of(producer).inline:
            dims = [j for j, e in enumerate(read.map.results) if k in e.used_dims()]
            if any(_uses_index(producer, j) for j in dims):
                return True
    return False


def reuse_dim(op: ix.ComputeOp, last: int, shape: Sequence[int], most: int) -> int | None:
    """An output dimension (other than `last`) that some read depending on `last` does not depend
    on: blocking it reuses that read's values from registers. The innermost of those that can
    fill a block of `most` (neighbouring points share cache lines), else the longest."""
    candidates: set[int] = set()
    for _, amap in effective_reads(op):
        used = set().union(set(), *(e.used_dims() for e in amap.results))
        if last in used:
            candidates |= {k for k in range(op.rank) if k != last and k not in used and shape[k] > 1}
    if not candidates:
        return None
    return max(candidates, key=lambda k: (min(shape[k], most), k))


def element_bytes(op: ix.ComputeOp) -> int:
    elt = op.result_type.get_element_type()
    return getattr(elt, "bitwidth", 32) // 8


@contextmanager
def scheduled_as(op: ix.ComputeOp, schedule: Schedule) -> Iterator[None]:
    """`op` with `schedule` for a while (the analyses of its readers read it), then as before."""
    before = op.attributes.get(SCHEDULE)
    set_schedule(op, schedule)
    try:
        yield
    finally:
        if before is None:
            del op.attributes[SCHEDULE]
        else:
            op.attributes[SCHEDULE] = before


def lane_plan(op: ix.ComputeOp, target: CpuTarget) -> tuple[int, int, list[int] | None]:
    """Rule 3 for `op` on `target`: its lane axis (`lane_axis`), the lanes (the target's, narrowed
    to the axis's extent) and the reads to stage for vectors along it, or None when it does not
    vectorize (no dims, fewer iterations than lanes, or `reads_to_stage` finds no way)."""
    shape = op.result_type.get_shape()
    axis = lane_axis(shape)
    lanes = target.lanes(element_bytes(op))
    if not op.rank:
        return axis, lanes, None
    lanes = narrowest_lanes(lanes, shape[axis])
    return axis, lanes, reads_to_stage(op, axis, lanes) if shape[axis] >= lanes and lanes > 1 else None


def vectorizes_on(op: Operation, target: CpuTarget) -> bool:
    """Whether rule 3 vectorizes `op` on `target` (reading the ops inlined into it as they are)."""
    return isinstance(op, ix.ComputeOp) and lane_plan(op, target)[2] is not None
