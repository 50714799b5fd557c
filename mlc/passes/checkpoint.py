"""`mlc-checkpoint`: which forward values the backward keeps and which it recomputes, under a budget.

Runs on the index-level training functions (`@m_grad`, `@m_step`: those with backward ops), after
mlc-autodiff and mlc-scatter-to-gather and before mlc-lower-loops. Options:

    budget = BYTES | "N KB|MB|GB" (10^3 steps) | "N KiB|MiB|GiB" (2^10 steps) | "P%"
    policy = keep-all | recompute-all | sqrt | optimal   (default: optimal with a budget, else keep-all)
    remarks = true                                       (one line per decision on stderr)

What the budget bounds. The arena: the bytes the runtime allocates for one call for every value
the function computes (saved activations, temporaries, gradients of intermediates, recomputed
values); `mlc.arena_bytes` after mlc-plan-memory. Parameters, optimizer state, inputs and outputs
are the caller's arrays, the same under every policy, and not counted. "P%" is P percent of the
keep-all arena (the function as mlc-autodiff wrote it).

How. The function's compute ops become `Step`s (`mlc.checkpointing.program`); a *plan* is the
order in which they run, a repeated step being a recomputation. For every plan the arena is
predicted exactly (the planner's own placement on the nests' live ranges), so a policy is a set
of candidate plans and the choice is:

    the candidate of least recomputed cost (ties: least arena) whose arena <= budget.

Because the candidate set does not depend on the budget, a smaller budget can only exclude
candidates: the chosen arena never grows as the budget falls (monotone), and the budget is a
hard bound. With no fitting candidate the pass fails, naming the smallest budget that fits.

Candidates per policy: keep-all (the function as written); recompute-all and sqrt (Chen et al.:
√L segments) on the chain of stages; optimal = keep-all, every point of the dynamic programme's
budget/cost curve on the chain of stages (`mlc.checkpointing.chain`, Rotor's model, exact for
chains in that model), and the graph solvers' plans (`mlc.checkpointing.graph`): Checkmate's
MILP (HiGHS, exact) at 21 budgets for functions of at most 24 ops; beyond, the greedy's drop
sequence (each prefix of "drop the cheapest value per byte") plus the greedy with re-keeping at 6
budgets, up to `GRAPH_OPS` ops. The graph plans matter even on chains: a stage's tape is kept or
recomputed whole by the dynamic programme, while the graph solvers recompute a cheap
elementwise value and keep the matmul beside it (on the 16-block benchmark chain at 25% of
keep-all they recompute 5.9 Mmac where the chain's best plan recomputes 12.2 Mmac). A chain is
cut where exactly one forward value crosses (`split_chain`).

The rewrite. Ops run in plan order; a step's first run is the original op, a repeat is a clone
marked `mlc.recompute` and `mlc.phase = "recompute"` (so the planner counts it as a temporary),
and every op reads the latest run of its operands. Values are computed by the same ops from the
same inputs, so gradients are bitwise identical under every policy. The function records
`mlc.checkpoint` (policy, budget, keep-all and planned arena, recomputed multiply-adds and runs)
and `mlc.memory_budget`, which mlc-plan-memory checks its arena against.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod

from xdsl.context import Context
from xdsl.dialects import func
from xdsl.dialects.builtin import DictionaryAttr, IntegerAttr, ModuleOp, StringAttr, TensorType, UnitAttr, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.checkpointing import chain as chains
from mlc.checkpointing import graph as graphs
from mlc.checkpointing.chain.explanations import format_bytes, format_macs
from mlc.checkpointing.program import (
    ChainSplit, Evaluation, Step, as_graph, chain_plan, evaluate, graph_plan, liveness, original_plan, placed, split_chain,
)
from mlc.dialects import ix
from mlc.graph.locations import fail, model_location
from mlc.passes.autodiff import ADJOINT_OF, PHASE
from mlc.loops.schedule import computed_by_readers, schedule_of
from mlc.units import parse_size

POLICIES = ("keep-all", "recompute-all", "sqrt", "optimal")
CHECKPOINT = "mlc.checkpoint"
"""Function attribute: the decision's figures (see the module docstring)."""
MEMORY_BUDGET = "mlc.memory_budget"
"""Function attribute: the arena bound mlc-plan-memory verifies."""
RECOMPUTE = "mlc.recompute"
"""Unit attribute on the clones that recompute a forward value."""

EXACT_GRAPH_OPS = 24
"""Graphs up to this many ops get Checkmate's MILP; larger ones the greedy heuristic."""
GRAPH_LEVELS = 20
"""Budgets (fractions of the keep-all peak) the MILP is run at."""
GRAPH_OPS = 300
"""Up to this many ops the graph solvers' plans join the chain's; beyond, a chain uses the dynamic
programme alone (the greedy's simulations grow quadratically: 1.4 s at 230 ops, 50 s at 900) and
a non-chain the greedy's drop sequence without re-keeping."""
HEURISTIC_LEVELS = 6
"""Budgets (k/7 of the keep-all peak) the greedy heuristic, with its re-keeping, is run at."""

@dataclass(frozen=True)
class Budget:
    """Either bytes or a fraction of the keep-all arena."""

    bytes: int | None = None
    fraction: float | None = None
    text: str = ""

    def resolve(self, keep_all_arena: int) -> int:
        if self.bytes is not None:
            return self.bytes
        assert self.fraction is not None
        return math.floor(self.fraction * keep_all_arena)

    def __str__(self) -> str:
        if self.fraction is not None:
            return f"{self.text} of keep-all"
        return f"{self.bytes} bytes" if self.text == str(self.bytes) else f"{self.text} = {self.bytes} bytes"


def parse_budget(value: str | int | float) -> Budget | None:
    """`40000`, `"64KB"`, `"1.5MiB"`, `"50%"` (None for the empty string: no budget)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise PassFailedException(_BUDGET_HELP.format(value))
    if isinstance(value, int):
        if value < 0:
            raise PassFailedException(_BUDGET_HELP.format(value))
        return Budget(bytes=value, text=str(value))
    text = value.strip()
    if not text:
        return None
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", text):
        return Budget(fraction=float(m.group(1)) / 100, text=text)
    if (size := parse_size(text)) is not None:
        return Budget(bytes=size, text=text)
    raise PassFailedException(_BUDGET_HELP.format(value))


_BUDGET_HELP = (
    "mlc-checkpoint: budget must be bytes (40000), a size in quotes (\"64KB\", \"1.5MiB\") or a share of "
    "the keep-all arena in quotes (\"50%\"), got '{}'"
)


@dataclass(frozen=True)
class CheckpointPass(ModulePass):
    """Keep or recompute each forward value so that the training function's arena fits a budget."""

    name = "mlc-checkpoint"

    budget: str | int | float = ""
    """Bytes, a size with a unit (KB, MB, GB, KiB, MiB, GiB) or a share of keep-all ("50%")."""
    policy: str = ""
    """keep-all, recompute-all, sqrt or optimal (the default when a budget is given)."""
    remarks: bool = False
    """Print one line per decision (and a summary per function) on stderr."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        budget = parse_budget(self.budget)
        policy = self.policy or ("optimal" if budget is not None else "keep-all")
        if policy not in POLICIES:
            raise PassFailedException(f"mlc-checkpoint: policy must be one of {', '.join(POLICIES)}, got '{policy}'")
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if CHECKPOINT not in f.attributes and _has_backward(f):
                lines = checkpoint_function(f, policy, budget)
                if self.remarks:
                    print("\n".join(lines), file=sys.stderr)


def _has_backward(f: func.FuncOp) -> bool:
    return any(isinstance(o, ix.IndexNotationOp) and _phase(o) == "backward" for o in f.body.block.ops)


def _phase(op: Operation) -> str:
    attr = op.attributes.get(PHASE)
    return attr.data if isinstance(attr, StringAttr) else ""


# ---------------------------------------------------------------------------------------------
# The function as steps


def _inputs_cost_and_inside(op: ix.IndexNotationOp) -> tuple[list[SSAValue], int, list[ix.ComputeOp]]:
    """The values a step reads (through the ops it computes inside), its cost (its own
    iteration points, one body evaluation per point for each inlined read, and the points of the
    ops computed at its loops), and the ops it computes inside."""
    inputs: list[SSAValue] = []
    inside: list[ix.ComputeOp] = []
    cost = prod(op.iteration_extents)

    def visit(reader: ix.IndexNotationOp, points: int) -> None:
        nonlocal cost
        for v in reader.inputs:
            producer = v.owner
            if not computed_by_readers(producer):
                inputs.append(v)
                continue
            assert isinstance(producer, ix.ComputeOp)
            inside.append(producer)
            inner = points if schedule_of(producer).inline else prod(producer.iteration_extents)
            cost += inner
            visit(producer, inner)

    visit(op, cost)
    return inputs, cost, inside


def function_steps(f: func.FuncOp) -> tuple[list[ix.IndexNotationOp], list[Step]]:
    """The ops of `f` with nests of their own, in order, and their `Step`s."""
    ops = [o for o in f.body.block.ops if isinstance(o, ix.IndexNotationOp) and not computed_by_readers(o)]
    index = {o.result: k for k, o in enumerate(ops)}
    ret = f.body.block.last_op
    returned = set(ret.operands) if isinstance(ret, func.ReturnOp) else set()
    step_of_forward = _forward_steps(f, index)
    steps = []
    for k, o in enumerate(ops):
        t = o.result_type
        inputs, cost, inside = _inputs_cost_and_inside(o)
        reads = tuple(dict.fromkeys(index[v] for v in inputs if v in index))
        # A step differentiates every forward op its own op and the backward ops it computes inside do.
        tags = [a.value.data for x in (o, *inside) if isinstance(a := x.attributes.get(ADJOINT_OF), IntegerAttr)]
        steps.append(Step(
            name=f"#{k} {_describe(t)}", size=_bytes(t), cost=cost, reads=reads,
            phase=_phase(o) or "forward", returned=o.result in returned,
            adjoint_of=max(step_of_forward[tag] for tag in tags) if tags else None,
        ))
    return ops, steps


def _forward_steps(f: func.FuncOp, index: dict[SSAValue, int]) -> list[int]:
    """The step of each forward compute op by its position (what `mlc.adjoint_of` counts): its
    own, or for an op its readers compute, the first forward step that computes it (else the
    step before it)."""
    found: list[int] = []
    for op in (o for o in f.body.block.ops if isinstance(o, ix.ComputeOp) and _phase(o) in ("forward", "")):
        if op.result in index:
            found.append(index[op.result])
            continue
        readers = [index[r.result] for r in _computing_steps(op) if r.result in index and _phase(r) in ("forward", "")]
        found.append(min(readers) if readers else max(found, default=0))
    return found


def _computing_steps(op: ix.ComputeOp) -> set[ix.IndexNotationOp]:
    """The ops with nests of their own that compute `op` (it is computed inside them)."""
    found: set[ix.IndexNotationOp] = set()
    for use in op.result.uses:
        reader = use.operation
        if computed_by_readers(reader):
            found |= _computing_steps(reader)  # pyright: ignore[reportArgumentType]
        elif isinstance(reader, ix.IndexNotationOp):
            found.add(reader)
    return found


def _bytes(t: TensorType) -> int:
    elt = t.get_element_type()
    return prod(t.get_shape()) * getattr(elt, "bitwidth", 32) // 8


def _describe(t: TensorType) -> str:
    return f"{t.get_element_type()}[{','.join(map(str, t.get_shape()))}]"


# ---------------------------------------------------------------------------------------------
# Candidates


class Candidate:
    """A plan with a label and its explanation; the arena is placed only when a choice needs it."""

    def __init__(self, label: str, plan: tuple[int, ...], steps: Sequence[Step], explain: Callable[[str], list[str]]):
        self.label, self.plan, self.explain = label, plan, explain
        self.liveness = liveness(steps, plan)
        self._evaluation: Evaluation | None = None

    @property
    def evaluation(self) -> Evaluation:
        if self._evaluation is None:
            self._evaluation = placed(self.liveness)
        return self._evaluation


def candidates(steps: Sequence[Step], policy: str) -> tuple[list[Candidate], ChainSplit | None]:
    """The candidate plans of a policy, each evaluated (see the module docstring)."""
    split = split_chain(steps)
    keep_all = original_plan(steps)
    found = [Candidate("keep-all", keep_all, steps,
                       lambda _: ["every forward value kept: nothing recomputed"])]
    if policy == "keep-all":
        return found, split
    if policy != "optimal":
        found = []
    if split is not None:
        chain = split.chain
        if policy == "optimal":
            table = chains.solve_table(chain, chains.keep_all_peak(chain))
            assert table is not None
            schedules = [table.schedule(m) for m, _ in reversed(table.pareto())]
        else:
            schedules = [chains.recompute_all(chain) if policy == "recompute-all" else chains.sqrt_schedule(chain)]
        for sched in schedules:
            assert sched is not None
            plan = chain_plan(split, sched)
            found.append(Candidate(f"{policy} (chain of {chain.length} stages)", plan, steps,
                                   lambda why, s=sched: chains.explain(chain, s, reason=why)))
    if policy == "sqrt" and split is None:
        raise PassFailedException("mlc-checkpoint: policy=sqrt needs a chain of stages; this training function has none "
                                  "(use policy=optimal)")
    if policy == "recompute-all" and split is None or policy == "optimal" and (split is None or len(steps) <= GRAPH_OPS):
        found += _graph_candidates(steps, policy)
    return found, split


def _graph_candidates(steps: Sequence[Step], policy: str) -> list[Candidate]:
    """recompute-all, or the graph solvers at `GRAPH_LEVELS` budgets (module docstring)."""
    graph = as_graph(steps)
    scheds = []
    if policy == "recompute-all":
        forward = set(range(graph.first_backward))
        scheds.append(graphs.drop_schedule(graph, forward, frozenset(forward)))
    elif len(graph) <= EXACT_GRAPH_OPS:
        full = graphs.simulate_graph(graph, graphs.keep_all_graph(graph)).peak
        for k in range(GRAPH_LEVELS + 1):
            if (sched := graphs.solve_graph(graph, full * (GRAPH_LEVELS - k) / GRAPH_LEVELS)) is not None:
                scheds.append(sched)
    else:
        full = graphs.simulate_graph(graph, graphs.keep_all_graph(graph)).peak
        scheds += graphs.drop_family(graph)
        for k in range(1, HEURISTIC_LEVELS + 1 if len(graph) <= GRAPH_OPS else 1):
            if (sched := graphs.solve_graph_heuristic(graph, full * k / (HEURISTIC_LEVELS + 1))) is not None:
                scheds.append(sched)
    label = f"{policy} (graph of {len(graph)} ops, {'MILP' if len(graph) <= EXACT_GRAPH_OPS else 'heuristic'})"
    found = []
    for sched in scheds:
        plan = graph_plan(sched)
        found.append(Candidate(label, plan, steps,
                               lambda why, s=sched: graphs.explain_graph(graph, s, reason=why)))
    return found


def choose(found: Sequence[Candidate], budget: int | None) -> Candidate | None:
    """The least recompute (then least arena) candidate whose arena fits `budget`.

    Arenas are placed lazily, cheapest candidates first; the live peak is a lower bound on the
    arena (buffers live at once occupy disjoint bytes), so candidates above the budget are skipped."""
    by_cost: dict[int, list[Candidate]] = {}
    for c in found:
        by_cost.setdefault(c.liveness.recompute_cost, []).append(c)
    for cost in sorted(by_cost):
        fitting = [c for c in by_cost[cost] if budget is None or c.liveness.live_peak <= budget]
        fitting = [c for c in fitting if budget is None or c.evaluation.arena <= budget]
        if fitting:
            return min(fitting, key=lambda c: c.evaluation.arena)
    return None


# ---------------------------------------------------------------------------------------------
# The rewrite


def checkpoint_function(f: func.FuncOp, policy: str, budget: Budget | None) -> list[str]:
    """Choose and apply a plan for `f`; returns the remark lines."""
    ops, steps = function_steps(f)
    found, split = candidates(steps, policy)
    keep_all_arena = evaluate(steps, original_plan(steps)).arena
    limit = None if budget is None else budget.resolve(keep_all_arena)
    chosen = choose(found, limit)
    if chosen is None:
        assert limit is not None and budget is not None
        smallest = min(c.evaluation.arena for c in (candidates(steps, "optimal")[0] if policy != "optimal" else found))
        _fail(f, f"mlc-checkpoint: budget {budget}{_in_bytes(budget, limit)} is below the smallest arena policy={policy} can reach for "
                 f"@{f.sym_name.data}; the smallest feasible budget is {smallest} bytes ({format_bytes(smallest)})"
                 + (" with policy=optimal" if policy != "optimal" else "")
                 + f"; keep-all needs {keep_all_arena} bytes")
    assert chosen is not None
    rewrite(f, ops, chosen.plan)
    ev = chosen.evaluation
    total = sum(s.cost for s in steps)
    figures = {"keep_all_arena": keep_all_arena, "planned_arena": ev.arena, "recompute_macs": ev.recompute_cost,
               "recomputed_ops": ev.recomputed_runs, "total_macs": total}
    if limit is not None:
        figures["budget"] = limit
        f.attributes[MEMORY_BUDGET] = IntegerAttr(limit, i64)
    f.attributes[CHECKPOINT] = DictionaryAttr(
        {"policy": StringAttr(policy), **{k: IntegerAttr(v, i64) for k, v in figures.items()}})
    name = f"mlc-checkpoint: @{f.sym_name.data}"
    share = "" if budget is None else _in_bytes(budget, limit)
    lines = [
        f"{name}: policy {policy}, budget {'none' if budget is None else str(budget)}{share}: arena {ev.arena} bytes "
        f"({format_bytes(ev.arena)}; keep-all {keep_all_arena}), recomputes {format_macs(ev.recompute_cost)} "
        f"in {ev.recomputed_runs} ops (+{100 * ev.recompute_cost / max(total, 1):.1f}% of {format_macs(total)})",
    ]
    lines.append(f"{name}: chosen {chosen.label} among {len(found)} candidates")
    why = (f"to fit the budget of {limit} bytes (keep-all arena {keep_all_arena})" if limit is not None
           else f"by policy {policy}")
    lines += [f"{name}: {line}" for line in chosen.explain(why)]
    return lines


def _in_bytes(budget: Budget, limit: int | None) -> str:
    return f" ({limit} bytes)" if budget.fraction is not None else ""


def rewrite(f: func.FuncOp, ops: Sequence[ix.IndexNotationOp], plan: Sequence[int]) -> None:
    """Run `ops` in plan order: first runs move, repeats are clones; reads follow the latest runs.
    Each run gets its own copies of the ops it computes inside, reading those latest runs too."""
    block = f.body.block
    ret = block.last_op
    assert ret is not None
    step_of: dict[SSAValue, int] = {o.result: k for k, o in enumerate(ops)}
    inside = [o for o in block.ops if computed_by_readers(o)]
    for o in ops:
        o.detach()
    latest: dict[int, SSAValue] = {}

    def current(value: SSAValue, copies: dict[SSAValue, SSAValue], recompute: bool) -> SSAValue:
        """The value a run reads: the latest run of a step, or a fresh copy of an op computed inside."""
        if value in step_of:
            return latest[step_of[value]]
        producer = value.owner
        if not computed_by_readers(producer):
            return value
        if value not in copies:
            assert isinstance(producer, ix.ComputeOp)
            copy = producer.clone()
            copy.operands = [current(v, copies, recompute) for v in producer.operands]
            if recompute:
                copy.attributes[PHASE] = StringAttr("recompute")
            block.insert_op_before(copy, ret)
            copies[value] = copy.result
        return copies[value]

    for k in plan:
        op = ops[k]
        recompute = k in latest
        if recompute:
            op = op.clone()
            op.attributes[RECOMPUTE] = UnitAttr()
            op.attributes[PHASE] = StringAttr("recompute")
            step_of[op.result] = k
        copies: dict[SSAValue, SSAValue] = {}
        op.operands = [current(v, copies, recompute) for v in op.operands]
        block.insert_op_before(op, ret)
        latest[k] = op.result
    for o in reversed(inside):
        o.detach()
        o.erase()
    for o in block.ops:
        o.attributes.pop(ADJOINT_OF, None)


def _fail(f: func.FuncOp, message: str) -> None:
    """A located error at the model's declaration when the frontend recorded it (`mlc.loc`)."""
    fail(model_location(f), message)
