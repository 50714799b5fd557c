"""A training function as `mlc-checkpoint` sees it, and the exact arena of any order of running it.

`Step`s are the function's compute ops in order (forward, then backward, then update), each with
the bytes of its result, its cost (iteration points: one multiply-add, or one body evaluation,
each) and the earlier steps it reads (arguments are the caller's and not steps). A *plan* is the
order in which steps run: every step runs at least once, a repeat is a recomputation, and each
run reads the latest run of every step it reads. The first run of a step is the original op (a
returned value writes into the caller's output buffer there); later runs are clones in the arena.

`evaluate` predicts what `mlc-plan-memory` will allocate for a plan, exactly: after loop lowering
every run is one top-level loop nest with one buffer (none for the first run of a returned value)
live from its run to its last reader, inclusive, and the planner places buffers with `place`.

`split_chain` recognises a chain of stages for the dynamic programme: cut points in the forward
where exactly one value crosses (read later by the forward or by the backward of a later stage),
backward steps grouped by the forward step they differentiate (`adjoint_of`), and the sizes,
tapes and costs of `Chain` measured from the steps. `chain_plan` turns a chain schedule into a
plan: `F`/`Fck`/`Fall i` run stage i's forward steps, `B i` its backward steps, and the steps
that belong to no stage (sums over several uses of an argument, optimizer updates) run last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlc.loops.arena import place

from .chain.model import Chain
from .chain.simulator import Op, OpKind
from .graph import Graph, Node, Stage


@dataclass(frozen=True)
class Step:
    name: str
    size: int
    cost: int
    reads: tuple[int, ...]
    phase: str  # forward, backward or update
    returned: bool = False
    adjoint_of: int | None = None


@dataclass(frozen=True)
class Evaluation:
    arena: int  # bytes mlc-plan-memory will allocate
    live_peak: int  # the most bytes live at one point (<= arena)
    recompute_cost: int  # cost of the repeated runs
    recomputed_runs: int


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class Liveness:
    """A plan's buffers as `(size, first run, last reader)` and what follows without placing them."""

    intervals: tuple[tuple[int, int, int], ...]
    live_peak: int
    recompute_cost: int
    recomputed_runs: int


def liveness(steps: Sequence[Step], plan: Sequence[int]) -> Liveness:
    """The buffers of running `steps` in the order `plan` (see the module docstring)."""
    latest: dict[int, int] = {}  # step -> its latest run
    first_run: set[int] = set()
    starts: list[int] = []
    ends: list[int] = []
    sizes: list[int] = []
    recompute = repeats = 0
    for run, k in enumerate(plan):
        for j in steps[k].reads:
            if j not in latest:
                raise PlanError(f"run {run}: {steps[k].name} reads {steps[j].name} before it has run")
            ends[latest[j]] = run
        if k in first_run:
            recompute += steps[k].cost
            repeats += 1
            sizes.append(steps[k].size)
        else:
            first_run.add(k)
            sizes.append(0 if steps[k].returned else steps[k].size)
        latest[k] = run
        starts.append(run)
        ends.append(run)
    if len(first_run) != len(steps):
        missing = next(s.name for k, s in enumerate(steps) if k not in first_run)
        raise PlanError(f"{missing} never runs")
    intervals = tuple((s, a, b) for s, a, b in zip(sizes, starts, ends) if s > 0)
    delta = [0] * (len(plan) + 1)
    for s, a, b in intervals:
        delta[a] += s
        delta[b + 1] -= s
    live = peak = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    return Liveness(intervals, peak, recompute, repeats)


def evaluate(steps: Sequence[Step], plan: Sequence[int]) -> Evaluation:
    """The arena and recomputation of running `steps` in the order `plan`."""
    return placed(liveness(steps, plan))


def placed(live: Liveness) -> Evaluation:
    """The evaluation of a plan whose liveness is known: the planner's placement gives the arena."""
    _, arena = place(live.intervals)
    return Evaluation(arena, live.live_peak, live.recompute_cost, live.recomputed_runs)


def original_plan(steps: Sequence[Step]) -> tuple[int, ...]:
    """Run every step once, in the function's order (what keeps every forward value)."""
    return tuple(range(len(steps)))


# ---------------------------------------------------------------------------------------------
# Chains


@dataclass(frozen=True)
class ChainSplit:
    """The steps grouped into the stages of `chain` (stage i is entry i-1)."""

    chain: Chain
    forward: tuple[tuple[int, ...], ...]
    backward: tuple[tuple[int, ...], ...]
    tail: tuple[int, ...]
    outputs: tuple[int, ...]  # the step computing a_i, i = 1..L


def split_chain(steps: Sequence[Step]) -> ChainSplit | None:
    """The chain of stages of a training function, or None when it has fewer than two."""
    forward = [k for k, s in enumerate(steps) if s.phase == "forward"]
    n = len(forward)
    if n < 2 or forward != list(range(n)):
        return None
    # For each forward value: the last forward reader, and the last stage position (forward index
    # of the op differentiated) of its backward readers; untagged readers run last.
    last_reader = [-1] * n
    for k, s in enumerate(steps):
        at = k if k < n else (s.adjoint_of if s.adjoint_of is not None else n)
        for j in s.reads:
            if j < n:
                last_reader[j] = max(last_reader[j], at)
    # No backward step may read a forward value later than the op it differentiates.
    for s in steps[n:]:
        if s.adjoint_of is not None and any(s.adjoint_of < j < n for j in s.reads):
            return None
    bounds: list[tuple[int, int]] = []  # (last forward index of a stage, the step computing a_i)
    crossing: set[int] = set()
    for k in range(n - 1):
        crossing = {j for j in crossing if last_reader[j] > k} | ({k} if last_reader[k] > k else set())
        start = bounds[-1][0] + 1 if bounds else 0
        if len(crossing) == 1 and (a := next(iter(crossing))) >= start:  # a_i is the stage's own
            bounds.append((k, a))
    bounds.append((n - 1, n - 1))
    L = len(bounds)
    if L < 2:
        return None
    stage_of = [0] * n
    first = 0
    groups: list[tuple[int, ...]] = []
    for i, (last, _) in enumerate(bounds):
        groups.append(tuple(range(first, last + 1)))
        for j in range(first, last + 1):
            stage_of[j] = i
        first = last + 1
    back: list[list[int]] = [[] for _ in range(L)]
    tail: list[int] = []
    where: dict[int, int] = {}  # backward step -> stage (L for the tail)
    for k in range(n, len(steps)):
        s = steps[k]
        stage = L if s.adjoint_of is None or s.phase != "backward" else stage_of[s.adjoint_of]
        for j in s.reads:  # a backward value must come from this stage or a later one (run earlier)
            if j >= n and where[j] != L and where[j] < stage and stage != L:
                return None
            if j >= n and where[j] == L and stage != L:
                return None
        where[k] = stage
        (tail if stage == L else back[stage]).append(k)
    return ChainSplit(_measure(steps, groups, back, [a for _, a in bounds]), tuple(groups),
                      tuple(tuple(b) for b in back), tuple(tail), tuple(a for _, a in bounds))


def _measure(steps: Sequence[Step], groups: list[tuple[int, ...]], back: list[list[int]], outputs: list[int]) -> Chain:
    """The Chain of the grouped steps: costs, the sizes of a_i, tapes and workspaces."""
    L = len(groups)
    x = [0] + [steps[a].size for a in outputs]
    f, b, xbar, ftmp, btmp, names = [], [], [], [], [], []
    for i in range(L):
        group, bwd, out = groups[i], back[i], outputs[i]
        f.append(sum(steps[k].cost for k in group))
        b.append(sum(steps[k].cost for k in bwd))
        taped = {j for k in bwd for j in steps[k].reads if j in group and j != out}
        xbar.append(x[i + 1] + sum(steps[j].size for j in taped))
        ftmp.append(max(0, _transient_peak(steps, group, keep={out}) - x[i + 1]))
        btmp.append(max(0, _transient_peak(steps, tuple(bwd), keep=set()) - x[i]))
        names.append(f"ops #{group[0]}..#{group[-1]}" if len(group) > 1 else f"op #{group[0]}")
    return Chain(f=f, b=b, x=x, xbar=xbar, ftmp=ftmp, btmp=btmp, names=names)


def _transient_peak(steps: Sequence[Step], group: tuple[int, ...], keep: set[int]) -> int:
    """Most bytes of the group's own values live at once when it runs alone (values read after the
    group, or in `keep`, stay live to its end)."""
    members = set(group)
    last = {k: k for k in group}
    outside = set(keep)
    for k, s in enumerate(steps):
        for j in s.reads:
            if j in members:
                if k in members:
                    last[j] = max(last[j], k)
                else:
                    outside.add(j)
    peak = 0
    for k in group:
        live = sum(steps[j].size for j in group if j <= k and (last[j] >= k or j in outside))
        peak = max(peak, live)
    return peak


def chain_plan(split: ChainSplit, schedule: Sequence[Op]) -> tuple[int, ...]:
    """The plan of a chain schedule (see the module docstring)."""
    plan: list[int] = []
    for op in schedule:
        plan += split.backward[op.stage - 1] if op.kind is OpKind.B else split.forward[op.stage - 1]
    return tuple(plan + list(split.tail))


# ---------------------------------------------------------------------------------------------
# General graphs


def as_graph(steps: Sequence[Step]) -> Graph:
    """Checkmate's graph of the steps: forward values may be recomputed, nothing else."""
    return Graph(tuple(Node(s.name, s.cost, s.size, tuple(sorted(set(s.reads))), s.phase == "forward") for s in steps))


def graph_plan(schedule: Sequence[Stage]) -> tuple[int, ...]:
    """The plan of a graph schedule: each stage's computations in order."""
    return tuple(k for stage in schedule for k in stage.compute)
