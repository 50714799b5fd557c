"""A seeded generator of random legal schedules, for tests that schedules never change values.

    set_random_schedules(module, seed)      # every ix.compute of every function gets one

Legal by construction, from the rules in `mlc/schedule.py` (the lowering would reject anything
else, and the tests treat that as a failure): splits by any factor, any loop order that keeps the
reduction loops in order and outer halves before inner halves, a parallel output loop outside
every reduction loop, a vectorized innermost loop where every read allows it, unrolled short
loops, inlining ops without reductions (outside its bounds, a read of an inlined value gives the
fill), and computing an op at an outer (non-vectorized) loop of its only reader when that reader
reads it through one affine map, inside its bounds, and staging reads of tensors with buffers
through affine maps, before the nest or at an outer loop, when even the whole range they read fits
the staging limit.
"""

from __future__ import annotations

import random
from math import prod

from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir.affine import AffineMap

from mlc.affine import expr_bounds, iteration_ranges, linear_form, read_in_bounds
from mlc.dialects import ix
from mlc.nest import STAGE_BYTES
from mlc.loops.target import host
from mlc.passes.auto_schedule import readers_of, vectorizable
from mlc.schedule import MAX_UNROLL, Loops, Schedule, check_op_schedule, schedule_of, set_schedule


def set_random_schedules(module: ModuleOp, seed: int) -> None:
    rng = random.Random(seed)
    for f in [o for o in module.ops if isinstance(o, func.FuncOp)]:
        ret = f.body.block.last_op
        returned = set(ret.operands) if ret is not None else set()
        computes = [o for o in f.body.block.ops if isinstance(o, ix.ComputeOp)]
        for op in reversed(computes):  # first where values are computed (readers decide first) ...
            if op.result not in returned and rng.random() < 0.4 and can_inline(op):
                set_schedule(op, Schedule(inline=True))
        for op in reversed(computes):  # ... then loops (vectorizing depends on what is inlined)
            if schedule_of(op).inline:
                continue
            if op.result not in returned and rng.random() < 0.3 and (at := random_at(op, rng)) is not None:
                set_schedule(op, random_loops(op, rng, parallel=False).with_(at=at))
            else:
                set_schedule(op, random_loops(op, rng))


def can_inline(op: ix.ComputeOp) -> bool:
    """No reduction, and only compute ops read it (not a scatter or the return)."""
    reads = readers_of(op.result)
    return op.reduction.data == "none" and bool(reads) and all(isinstance(r, ix.ComputeOp) for r, _ in reads)


def random_at(op: ix.ComputeOp, rng: random.Random) -> str | None:
    """An outer output loop of the only reader, if it reads `op` through one affine map."""
    reads = readers_of(op.result)
    readers = {r for r, _ in reads}
    if len(readers) != 1 or len({m for _, m in reads}) != 1:
        return None
    (reader,) = readers
    if not isinstance(reader, ix.ComputeOp) or not schedule_of(reader).is_root:
        return None
    if any(reader.reads[j].value is op.result for j, _ in schedule_of(reader).stage):
        return None  # the reader copies it from a buffer
    amap = reads[0][1]
    ranges = iteration_ranges(reader.result_type.get_shape(), reader.reduction_extents)
    if any(linear_form(e) is None for e in amap.results) or not all(read_in_bounds(amap, ranges, op.result_type.get_shape())):
        return None
    schedule = schedule_of(reader)
    loops = Loops.of(schedule, reader.rank, reader.iteration_extents)
    outer = []
    for name in loops.order:
        if loops.is_reduction(name):
            break
        outer.append(name)
    outer = [n for n in outer if n != schedule.vectorize]
    return rng.choice(outer) if outer else None


def random_loops(op: ix.ComputeOp, rng: random.Random, parallel: bool = True) -> Schedule:
    extents = op.iteration_extents
    names = [f"d{k}" for k in range(op.rank)] + [f"r{k}" for k in range(len(op.reduction_extents))]
    splits = [(n, rng.randint(1, e)) for n, e in zip(names, extents) if e > 1 and rng.random() < 0.4]
    loops = Loops.of(Schedule(splits=tuple(splits)), op.rank, extents)
    order = _random_order(loops, rng)
    loops = Loops.of(Schedule(splits=tuple(splits), order=order), op.rank, extents)
    schedule = Schedule(splits=tuple(splits), order=order)
    if not order:  # a scalar computed without loops
        return schedule
    last = order[-1]
    if (not loops.is_reduction(last) and loops.var(last) == op.rank - 1 and loops.stride(last) == 1
            and rng.random() < 0.6 and vectorizable(op, op.rank - 1, host().lanes(4))):
        schedule = schedule.with_(vectorize=last)
    outer = []
    for name in order:
        if loops.is_reduction(name):
            break
        outer.append(name)
    candidates = [n for n in outer if n != schedule.vectorize]
    if parallel and candidates and rng.random() < 0.3:
        schedule = schedule.with_(parallel=rng.choice(candidates))
    unroll = tuple(n for n in order if n not in (schedule.vectorize, schedule.parallel)
                   and loops.full_extent(n) <= min(8, MAX_UNROLL) and rng.random() < 0.3)
    schedule = schedule.with_(unroll=unroll)
    stages = []
    for j, read in enumerate(op.reads):
        producer = read.value.owner
        buffered = not isinstance(producer, ix.ComputeOp) or schedule_of(producer).is_root
        if buffered and stageable(op, read.map) and rng.random() < 0.25:
            stages.append((j, rng.choice([None, *(n for n in outer if n != schedule.vectorize)])))
    schedule = schedule.with_(stage=tuple(stages))
    check_op_schedule(op, schedule)
    return schedule


def stageable(op: ix.ComputeOp, amap: AffineMap) -> bool:
    """Whether a read through `amap` is affine and the whole range it reads fits a stage."""
    if any(linear_form(e) is None for e in amap.results):
        return False
    ranges = iteration_ranges(op.result_type.get_shape(), op.reduction_extents)
    extents = [hi - lo + 1 for lo, hi in (expr_bounds(e, ranges) for e in amap.results)]
    return prod(extents) * 8 <= STAGE_BYTES  # 8: the widest element


def _random_order(loops: Loops, rng: random.Random) -> tuple[str, ...]:
    """The reduction loops in their natural order, the output loops shuffled (each variable's
    halves keep their natural, outer-first order), interleaved at random."""
    natural = list(loops.order)
    reductions = [n for n in natural if loops.is_reduction(n)]
    outputs = [n for n in natural if not loops.is_reduction(n)]
    shuffled = outputs[:]
    rng.shuffle(shuffled)
    for var in {loops.var(n) for n in outputs}:
        slots = [k for k, n in enumerate(shuffled) if loops.var(n) == var]
        for k, name in zip(slots, [n for n in outputs if loops.var(n) == var]):
            shuffled[k] = name
    order: list[str] = []
    while shuffled or reductions:
        if reductions and (not shuffled or rng.random() < 0.4):
            order.append(reductions.pop(0))
        else:
            order.append(shuffled.pop(0))
    return tuple(order)
