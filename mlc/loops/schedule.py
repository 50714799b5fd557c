"""Schedules as data: how an index-level op's loops run, kept apart from what the op computes.

A schedule is the attribute `mlc.schedule = #ix.schedule<...>` on an `ix.compute`. Passes write
it (mlc-tile, mlc-fuse, mlc-auto-schedule), mlc-lower-loops applies it, and nothing else reads
it: the algorithm (reads, maps, body) is never edited to change how it runs.

    #ix.schedule<split(d2, 6), split(d3, 64), order(d0, d1, d2o, d3o, r0, r1, r2, d2i, d3i),
                 parallel(d0), vectorize(d3i), unroll(d2i)>
    #ix.schedule<inline>
    #ix.schedule<at(d3o)>

Loops. An op iterates over its output indices `d0..` and its reduction variables `r0..` (the
names of its printed form). `split(v, f)` replaces loop `v` of `n` iterations by `vo`
(ceil(n / f) iterations) and `vi` (f), with v = f * vo + vi; when f does not divide n, the last
`vo` iteration is a separate copy of the nest below it in which `vi` runs the n mod f remaining
points (no point is computed twice, none is guarded). Either half may be split again (`d2io`,
`d2ii`). `order` lists every loop, outermost first; without it the loops run d0.., r0.., each
split loop in place of its variable, outer half first.

Directives on the loops:
- `parallel(L)`: L's iterations run on threads (an OpenMP `parallel for`). L is an output loop
  and no reduction loop encloses it, so every thread writes its own outputs.
- `vectorize(L)`, `vectorize(L, N)`: L is the innermost loop and an output loop; its iterations
  run as the lanes of vector registers (N lanes, a power of two; by default the target's; the
  iterations beyond the last full vector run as a partial vector).
- `unroll(L, ...)`: these loops are unrolled completely (each has at most `MAX_UNROLL`
  iterations).
- `stage(K, L)`: read K (its position in the op's reads) goes through a copy (Halide's `in()`):
  inside loop L (before every loop without L), the block of the tensor that the loops below read
  is copied into a local buffer, with the read's fill where the block leaves the tensor, and with
  the dimension the vector lanes walk moved last; the op then reads the copy, contiguously along
  the lanes and without bounds checks. The block has at most `STAGE_BYTES`.

Where the op is computed (default: its own loop nest, writing a buffer):
- `inline`: nowhere on its own: each reader computes the value where it reads it (Halide's
  compute_inline). The op has no reduction; a read outside its bounds gives the read's fill, as
  from a buffer.
- `at(L)`: inside the loop L of its only reader, for the block of points the reader's loops
  inside L read, into a block-sized local buffer (Halide's compute_at). The op's own split,
  order, vectorize and unroll directives apply to its loops over that block.

An output loop that runs inside a reduction loop accumulates into a *tile*: the outputs of the
loops inside the outermost reduction loop, kept in registers when those loops are innermost and
all unrolled or vectorized, else in a local array or the output buffer.

What a schedule cannot change: values. Every output point is computed by the same operations in
the same order under every schedule: reduction loops keep their relative order (a sum always
accumulates in the lexicographic order of its reduction points, whatever the splits and output
loops around it), so results are bitwise identical under every schedule and thread count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation
from xdsl.parser import Parser
from xdsl.utils.exceptions import ParseError

from mlc.dialects import ix
from mlc.dialects.ix_schedule import SCHEDULE, Schedule, ScheduleAttr, ScheduleError, parse_schedule  # noqa: F401

MAX_UNROLL = 64
"""Most iterations of an unrolled loop."""

STAGE_BYTES = 1 << 20
"""Most bytes of a staged block (a local array: on the stack of the thread that runs its loop)."""


def schedule_from_text(text: str) -> Schedule:
    """A schedule from its directive text (`"split(d2, 8), vectorize(d2i)"`), as pass options give it."""
    ctx = Context()
    ctx.load_dialect(ix.IX)
    try:
        attr = Parser(ctx, f"#ix.schedule<{text}>").parse_attribute()
    except ParseError as e:
        raise ScheduleError(f"cannot parse the schedule '{text}': {e.msg}") from None
    assert isinstance(attr, ScheduleAttr)
    return attr.data


def schedule_of(op: Operation) -> Schedule:
    """The op's schedule (the default, a plain nest in the natural order, when it has none)."""
    attr = op.attributes.get(SCHEDULE)
    return attr.data if isinstance(attr, ScheduleAttr) else Schedule()


def computed_by_readers(op: Operation | Block) -> bool:
    """Scheduled inline or at a loop of its reader: its readers compute it, so it has no nest
    and no buffer of its own (only compute ops carry such schedules; a block argument's owner,
    a block, is no op)."""
    return isinstance(op, Operation) and not schedule_of(op).is_root


def set_schedule(op: Operation, schedule: Schedule) -> None:
    op.attributes[SCHEDULE] = ScheduleAttr(schedule)


# ---------------------------------------------------------------------------------------------
# The loops of a schedule


_NAME = re.compile(r"([dr])(\d+)([oi]*)")


@dataclass(frozen=True)
class Loops:
    """The loop tree a schedule gives an iteration space (`rank` output dims, then reductions).

    Nodes are named as in the module docstring; leaves are the loops that run. `stride(name)` is
    the coefficient of a node's iteration in its variable: var = sum(stride(l) * l) over the
    variable's leaves.
    """

    rank: int
    extents: tuple[int, ...]
    splits: dict[str, int]
    order: tuple[str, ...]
    leaves: frozenset[str] = field(default=frozenset())

    @staticmethod
    def of(schedule: Schedule, rank: int, extents: Sequence[int]) -> Loops:
        """The loops of `schedule`; raises ScheduleError when the splits or the order do not fit."""
        names = [_var_name(k, rank) for k in range(len(extents))]
        splits: dict[str, int] = {}
        leaves = list(names)
        for name, factor in schedule.splits:
            if name not in leaves:
                known = "already split" if name in splits else f"not a loop of this op (loops: {', '.join(leaves)})"
                raise ScheduleError(f"split({name}, {factor}): {name} is {known}")
            if factor < 1:
                raise ScheduleError(f"split({name}, {factor}): the factor must be at least 1")
            splits[name] = factor
            at = leaves.index(name)
            leaves[at:at + 1] = [name + "o", name + "i"]
        loops = Loops(rank, tuple(extents), splits, tuple(schedule.order or leaves), frozenset(leaves))
        loops._check_order(leaves)
        return loops

    def _check_order(self, natural: list[str]) -> None:
        order = self.order
        if sorted(order) != sorted(natural):
            missing = [n for n in natural if n not in order]
            extra = [n for n in order if n not in natural]
            detail = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                             extra and f"unknown or repeated {', '.join(extra)}"]))
            raise ScheduleError(f"order({', '.join(order)}) must list every loop once ({', '.join(natural)}): {detail}")
        position = {name: k for k, name in enumerate(order)}
        for name in order:
            for ancestor in self.ancestors(name):
                outer = ancestor + "o"
                outer_leaves = [n for n in order if n.startswith(outer)]
                if name.startswith(ancestor + "i") and any(position[o] > position[name] for o in outer_leaves):
                    raise ScheduleError(f"order: {name} runs outside {outer_leaves[0]}, the outer half of its split of "
                                        f"{ancestor}; the outer half must come first")
        reductions = [n for n in order if self.is_reduction(n)]
        natural_reductions = [n for n in natural if self.is_reduction(n)]
        if reductions != natural_reductions:
            raise ScheduleError(f"order: the reduction loops must keep their order ({', '.join(natural_reductions)}): "
                                "reordering them would change the order of the sum, and so its value")

    # -- nodes ---------------------------------------------------------------------------------
    def var(self, name: str) -> int:
        m = _NAME.fullmatch(name)
        assert m, name
        return int(m.group(2)) + (self.rank if m.group(1) == "r" else 0)

    def is_reduction(self, name: str) -> bool:
        return name.startswith("r")

    def ancestors(self, name: str) -> list[str]:
        """The split nodes above `name`, innermost first (`d2io` -> `d2i`, `d2`)."""
        m = _NAME.fullmatch(name)
        assert m, name
        base, suffix = m.group(1) + m.group(2), m.group(3)
        return [base + suffix[:k] for k in range(len(suffix) - 1, -1, -1)]

    def stride(self, name: str) -> int:
        """The coefficient of `name` in its variable (outer halves count the factors below them)."""
        stride = 1
        for ancestor in self.ancestors(name):
            if name.startswith(ancestor + "o"):
                stride *= self.splits[ancestor]
        return stride

    def full_extent(self, name: str) -> int:
        """Iterations of a node when no tail cuts it short (the extent of a local buffer dim)."""
        m = _NAME.fullmatch(name)
        assert m, name
        extent = self.extents[self.var(name)]
        node = m.group(1) + m.group(2)
        for letter in m.group(3):
            factor = self.splits[node]
            extent = -(-extent // factor) if letter == "o" else min(factor, extent)
            node += letter
        return extent

    def check_unrolled(self, names: Sequence[str], what: str) -> None:
        for name in names:
            if name not in self.leaves:
                raise ScheduleError(f"{what}({name}): {name} is not a loop of this op (loops: {', '.join(self.order)})")
            if what == "unroll" and self.full_extent(name) > MAX_UNROLL:
                raise ScheduleError(f"unroll({name}): {self.full_extent(name)} iterations, more than {MAX_UNROLL}")


def _var_name(k: int, rank: int) -> str:
    return f"d{k}" if k < rank else f"r{k - rank}"


def check_schedule(schedule: Schedule, rank: int, extents: Sequence[int], has_reduction: bool,
                   sized: bool = True) -> Loops:
    """The loops of `schedule` on an op of this shape, after checking every directive that
    depends only on the shape (vectorisation also depends on the reads; see mlc-lower-loops).
    `sized=False` skips the limit on unrolled iterations (an op computed at a loop of its reader
    runs over a block whose extents only its reader's nest fixes)."""
    loops = Loops.of(schedule, rank, extents)
    if schedule.inline and schedule.at is not None:
        raise ScheduleError("inline and at(...) exclude each other")
    if schedule.inline and has_reduction:
        raise ScheduleError("inline: the op has a reduction; compute it at(...) a loop of its reader instead")
    loops.check_unrolled(schedule.unroll, "unroll" if sized else "loop")
    if (p := schedule.parallel) is not None:
        loops.check_unrolled([p], "parallel")
        if loops.is_reduction(p):
            raise ScheduleError(f"parallel({p}): a reduction loop cannot run on threads (they would race on the sum)")
        outside = loops.order[:loops.order.index(p)]
        if any(loops.is_reduction(n) for n in outside):
            raise ScheduleError(f"parallel({p}): runs inside the reduction loop "
                                f"{next(n for n in outside if loops.is_reduction(n))}")
        if p in schedule.unroll or p == schedule.vectorize:
            raise ScheduleError(f"parallel({p}): the loop is also unrolled or vectorized")
    if (v := schedule.vectorize) is not None:
        loops.check_unrolled([v], "vectorize")
        if loops.is_reduction(v):
            raise ScheduleError(f"vectorize({v}): a reduction loop cannot be vectorized without reordering its sum")
        if loops.order[-1] != v:
            raise ScheduleError(f"vectorize({v}): must be the innermost loop (it is {loops.order[-1]})")
        if v in schedule.unroll:
            raise ScheduleError(f"vectorize({v}): the loop is also unrolled")
    for read, loop in schedule.stage:
        if loop is not None:
            loops.check_unrolled([loop], "stage")
        if loop is not None and loop == schedule.vectorize:
            raise ScheduleError(f"stage({read}, {loop}): the loop is vectorized; stage at a loop outside it")
    return loops


# ---------------------------------------------------------------------------------------------
# What the scheduling passes share


def selected_ops(module: ModuleOp, ops: Sequence[int], function: str) -> list[ix.ComputeOp]:
    """The compute ops a scheduling pass applies to: position `k` counts the `ix.compute` ops of
    each function from 0 in order (all of them when `ops` is empty), in every function or only
    in `@function`."""
    chosen: list[ix.ComputeOp] = []
    functions = [f for f in module.ops if isinstance(f, func.FuncOp) and (not function or f.sym_name.data == function)]
    if function and not functions:
        raise ScheduleError(f"there is no function @{function}")
    for f in functions:
        computes = [o for o in f.body.block.ops if isinstance(o, ix.ComputeOp)]
        for k in ops:
            if not 0 <= k < len(computes):
                raise ScheduleError(f"@{f.sym_name.data} has {len(computes)} ix.compute ops; there is no op {k}")
        chosen += [computes[k] for k in ops] if ops else computes
    return chosen


def check_op_schedule(op: ix.ComputeOp, schedule: Schedule) -> None:
    """What can be checked of `schedule` on `op` alone; an op computed at a loop of its reader is
    checked on its block, and its reader found, when the nest is built."""
    check_schedule(schedule, op.rank, op.iteration_extents, op.reduction.data != "none", sized=schedule.at is None)
    for read, loop in schedule.stage:
        if read >= len(op.inputs):
            raise ScheduleError(f"stage({read}{'' if loop is None else ', ' + loop}): the op has {len(op.inputs)} reads")
