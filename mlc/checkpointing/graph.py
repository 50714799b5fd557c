"""Keep-or-recompute on a general DAG: Checkmate's MILP (exact, small graphs) and a heuristic.

The graph
---------
Nodes `0..T-1` in a fixed topological order, forward values first, then the backward (gradient)
nodes; node `k` has a compute cost `c_k`, an output of `size_k` bytes, and `deps(k)`: the values it
reads. An edge `u -> v` of a backward node `v` is "the backward needs u". `training_graph`
builds the backward half from the forward one and, per forward value, the values its backward
reads.

Execution model (Checkmate: Jain et al., MLSys 2020)
----------------------------------------------------
The schedule has T stages; stage t computes node t (its first computation) and may recompute
earlier nodes first. Stage t is `R_t` (the nodes it computes, run in index order) and `S_{t+1}`
(the values it hands to stage t+1; S_0 = ∅, S_T = ∅). Rules: every dependency of a computed node
is held (in S_t or computed earlier in the stage and not yet freed); S_{t+1} ⊆ S_t ∪ R_t; a value
held in S_t is not computed again in stage t. Memory, within stage t:

    U_{t,k} = Σ_{i ∈ S_t} size_i + Σ_{j ∈ R_t, j <= k} size_j - Σ_{j ∈ R_t, j < k} Σ_{i ∈ FREE_t(j)} size_i

is the memory while node k is computed (its output live next to its inputs); after computing j,
`FREE_t(j)` = the values `i ∈ deps(j) ∪ {j}` that no later node of R_t reads and that are not in
S_{t+1}. A value held in S_t that stage t neither reads nor hands on stays counted until the end
of the stage. The peak is max_{t,k} U_{t,k}; the cost Σ_t Σ_{k ∈ R_t} c_k.

The MILP
--------
Binaries R[t,i] (i <= t), S[t,i] (i < t), FREE[t,i,k] (k <= t, i ∈ deps(k) ∪ {k}):

    R[t,t] = 1;  R[t,k] <= R[t,i] + S[t,i]  (i ∈ deps(k));  S[t+1,i] <= S[t,i] + R[t,i];
    R[t,i] + S[t,i] <= 1;
    FREE[t,i,k] = 1  <=>  h = (1 - R[t,k]) + S[t+1,i] + Σ_{j ∈ users(i), k < j <= t} R[t,j] = 0,
        as  FREE + h >= 1  and  h + κ FREE <= κ  (κ = 2 + #those users);
    U_{t,k} <= budget for every t, k <= t  (U written out as above, linear in R, S, FREE);
    minimise Σ c_i R[t,i].

O(T^2 + T|E|) binaries. With HiGHS on random residual training graphs: proven optimal in
~1 s at 16-40 nodes for a budget of 90% of the keep-all peak, but at 70% it takes 1 s (16 nodes),
4 s (24) and more than 20 s (32, 40: the time limit returns the best schedule found).

The heuristic (larger graphs)
-----------------------------
Choose a set D of forward values to *drop*: a dropped value is held only until its last use
by the forward pass; in the backward it is recomputed at the first stage that needs it (with any
dropped values it depends on, recursively) and then held until its last direct backward use --
unless it is also *volatile*, then it is recomputed in every backward stage that needs it and
never held between stages. Everything else is held from its computation to its last read.
Greedy: sort the forward values by cost per byte (cheapest first) and drop them one by one
until the simulated peak fits the budget; if dropping all of them does not fit, make them
volatile one by one in the same order; then undo each decision (volatile, then dropped), most
expensive per byte first, whenever the peak still fits and the cost does not grow. Every
candidate is checked by `simulate_graph`, so an answer always fits the budget; None when even
everything dropped and volatile does not fit. O(T) simulations of O(T·deps) each.

Measured (benchmarks/checkpoint_solve_times.py, random residual training graphs): equal to the
MILP optimum at 90% of the keep-all peak, 13-20% above it at 70%, and sometimes no answer where
the MILP has one, because it never recomputes during the forward (a value a skip connection
reads far ahead is held across the gap) and never recomputes gradients. 0.1-0.6 s at 400 nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from .chain.explanations import format_bytes, format_macs
from .chain.milp import MilpBuilder
from .chain.model import INF
from .chain.simulator import SimResult


@dataclass(frozen=True)
class Node:
    name: str
    cost: float
    size: float
    deps: tuple[int, ...] = ()
    forward: bool = True


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order (deps < index), forward nodes before backward nodes."""

    nodes: tuple[Node, ...]
    users: tuple[tuple[int, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        nodes = tuple(self.nodes)
        object.__setattr__(self, "nodes", nodes)
        seen_backward = False
        users: list[list[int]] = [[] for _ in nodes]
        for k, node in enumerate(nodes):
            if len(set(node.deps)) != len(node.deps) or any(not 0 <= d < k for d in node.deps):
                raise ValueError(f"node {k} ({node.name}): deps must be distinct earlier nodes, got {node.deps}")
            if not (node.cost >= 0 and node.size >= 0):
                raise ValueError(f"node {k} ({node.name}): cost and size must be >= 0")
            if node.forward and seen_backward:
                raise ValueError(f"node {k} ({node.name}): forward nodes come before backward nodes")
            seen_backward |= not node.forward
            for d in node.deps:
                users[d].append(k)
        object.__setattr__(self, "users", tuple(tuple(u) for u in users))

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def first_backward(self) -> int:
        return next((k for k, n in enumerate(self.nodes) if not n.forward), len(self.nodes))


def training_graph(forward: Sequence[Node], needs: Sequence[Sequence[int]],
                   backward_cost: Sequence[float] | None = None) -> Graph:
    """Forward nodes 0..n-1 (the last is the loss) plus one backward node per forward node.

    `needs[v]`: the forward values the backward of v reads (typically some of v's inputs and v).
    The backward node of v, `d<name>`, runs in reverse order, reads the backward nodes of v's users
    (they produce ∂loss/∂v) and `needs[v]`, and outputs the gradients w.r.t. v's inputs
    (size Σ size(deps(v))); its cost defaults to 2·c_v."""
    n = len(forward)
    if len(needs) != n:
        raise ValueError("needs: one entry per forward node")
    fwd = [Node(v.name, v.cost, v.size, tuple(v.deps), True) for v in forward]
    users: list[list[int]] = [[] for _ in range(n)]
    for k, v in enumerate(fwd):
        for d in v.deps:
            users[d].append(k)
    bwd_index = {v: n + (n - 1 - v) for v in range(n)}
    back = []
    for v in range(n - 1, -1, -1):
        deps = tuple(sorted({bwd_index[w] for w in users[v]} | set(needs[v])))
        cost = 2 * fwd[v].cost if backward_cost is None else backward_cost[v]
        back.append(Node("d" + fwd[v].name, cost, sum(fwd[d].size for d in fwd[v].deps), deps, False))
    return Graph(tuple(fwd + back))


@dataclass(frozen=True)
class Stage:
    compute: tuple[int, ...]  # R_t, ascending; the last one is t
    keep: frozenset[int]  # S_{t+1}

    def __str__(self) -> str:
        return f"compute {list(self.compute)} keep {sorted(self.keep)}"


class GraphSchedule(list):
    """A list of `Stage`s, one per node. `optimal` is False for a MILP incumbent cut off by the
    time limit (valid, but not proven optimal) and for heuristic schedules."""

    optimal: bool = True


class GraphScheduleError(ValueError):
    pass


def simulate_graph(graph: Graph, schedule: Sequence[Stage]) -> SimResult:
    """Run the schedule under the model above; (peak bytes, cost, recomputed cost) or raise."""
    T = len(graph)
    if len(schedule) != T:
        raise GraphScheduleError(f"{len(schedule)} stages for {T} nodes")
    nodes = graph.nodes
    live: set[int] = set()
    peak = cost = 0.0
    for t, stage in enumerate(schedule):
        comp = list(stage.compute)
        if not comp or comp[-1] != t or any(a >= b for a, b in pairwise(comp)):
            raise GraphScheduleError(f"stage {t}: compute must be ascending and end with {t}, got {comp}")
        if live & set(comp):
            raise GraphScheduleError(f"stage {t}: recomputes {sorted(live & set(comp))}, which it holds")
        mem = sum(nodes[i].size for i in live)
        last_read: dict[int, int] = {}
        for p, k in enumerate(comp):
            for d in nodes[k].deps:
                last_read[d] = p
        for p, k in enumerate(comp):
            missing = [d for d in nodes[k].deps if d not in live]
            if missing:
                raise GraphScheduleError(f"stage {t}: node {k} ({nodes[k].name}) reads {missing}, not in memory")
            live.add(k)
            mem += nodes[k].size
            peak = max(peak, mem)
            cost += nodes[k].cost
            for i in nodes[k].deps + (k,):
                if i in live and i not in stage.keep and last_read.get(i, -1) <= p:
                    live.discard(i)
                    mem -= nodes[i].size
        if not stage.keep <= live:
            raise GraphScheduleError(f"stage {t}: keeps {sorted(stage.keep - live)}, which it does not hold")
        if t == T - 1 and stage.keep:
            raise GraphScheduleError("the last stage keeps values")
        live = set(stage.keep)
    base = sum(n.cost for n in nodes)
    return SimResult(peak, cost, cost - base)


def _stages(R: list[list[int]], S: list[set[int]]) -> GraphSchedule:
    keeps = [frozenset(S[t + 1]) if t + 1 < len(S) else frozenset() for t in range(len(R))]
    return GraphSchedule(Stage(tuple(sorted(r)), keep) for r, keep in zip(R, keeps, strict=True))


def prune_keeps(graph: Graph, schedule: Sequence[Stage]) -> GraphSchedule:
    """Drop from each S_{t+1} the values stage t+1 neither reads nor hands on (backwards).

    The MILP's objective does not charge memory, so an optimal solution may hold values nobody
    reads; removing them keeps the schedule valid, its cost equal and its peak no higher."""
    need: set[int] = set()  # what must enter the stage after the current one
    out: list[Stage] = []
    for stage in reversed(schedule):
        keep = frozenset(stage.keep & need)
        computed: set[int] = set()
        reads: set[int] = set()
        for k in stage.compute:
            reads |= {d for d in graph.nodes[k].deps if d not in computed}
            computed.add(k)
        need = reads | (keep - computed)
        out.append(Stage(stage.compute, keep))
    return GraphSchedule(reversed(out))


# ---------------------------------------------------------------------------------------------
# Exact: the MILP


def solve_graph_milp(graph: Graph, budget: float, *, time_limit: float = 60.0) -> GraphSchedule | None:
    """Checkmate's MILP (module docstring) with HiGHS; None if no schedule fits the budget.

    At the time limit: the best schedule found, with `optimal = False`; TimeoutError if none."""
    T, nodes, users = len(graph), graph.nodes, graph.users
    m = MilpBuilder()
    R = {(t, i): m.var(("R", t, i), 1 if i == t else 0, 1) for t in range(T) for i in range(t + 1)}
    S = {(t, i): m.var(("S", t, i)) for t in range(1, T) for i in range(t)}
    FREE = {(t, i, k): m.var(("FREE", t, i, k)) for t in range(T) for k in range(t + 1)
            for i in nodes[k].deps + (k,)}
    for t in range(T):
        for k in range(t + 1):
            for i in nodes[k].deps:
                coef = {R[t, k]: 1, R[t, i]: -1}
                if (t, i) in S:
                    coef[S[t, i]] = -1
                m.row(coef, -INF, 0)
        for i in range(t):
            m.row({R[t, i]: 1, S[t, i]: 1}, -INF, 1)
        if t + 1 < T:
            for i in range(t + 1):
                coef = {S[t + 1, i]: 1, R[t, i]: -1}
                if (t, i) in S:
                    coef[S[t, i]] = -1
                m.row(coef, -INF, 0)
        for k in range(t + 1):
            for i in nodes[k].deps + (k,):
                later = [j for j in users[i] if k < j <= t]
                kappa = 2 + len(later)
                h = {R[t, k]: -1.0}
                if t + 1 < T:
                    h[S[t + 1, i]] = 1.0
                for j in later:
                    h[R[t, j]] = h.get(R[t, j], 0) + 1.0
                fv = FREE[t, i, k]
                m.row({**h, fv: 1.0}, 0, INF)  # FREE + h >= 1  (h includes its constant 1)
                m.row({**h, fv: float(kappa)}, -INF, kappa - 1)  # h + κ FREE <= κ
        held = {S[t, i]: nodes[i].size for i in range(t)} if t > 0 else {}
        for k in range(t + 1):
            coef = dict(held)
            for j in range(k + 1):
                coef[R[t, j]] = coef.get(R[t, j], 0) + nodes[j].size
            for j in range(k):
                for i in nodes[j].deps + (j,):
                    coef[FREE[t, i, j]] = -nodes[i].size
            m.row(coef, -INF, budget)
    found = m.solve({R[key]: nodes[key[1]].cost for key in R}, time_limit)
    if found is None:
        return None
    sol, optimal = found
    Rs = [[i for i in range(t + 1) if sol[R[t, i]]] for t in range(T)]
    Ss = [set()] + [{i for i in range(t) if sol[S[t, i]]} for t in range(1, T)]
    sched = prune_keeps(graph, _stages(Rs, Ss))
    sched.optimal = optimal
    return sched


# ---------------------------------------------------------------------------------------------
# Heuristic


def drop_schedule(graph: Graph, dropped: set[int], volatile: frozenset[int] = frozenset()) -> GraphSchedule:
    """The heuristic's schedule for dropped forward values; `volatile` ones (a subset) are never
    held between backward stages (module docstring)."""
    T, nodes = len(graph), graph.nodes
    b0 = graph.first_backward
    direct = [[] for _ in range(T)]  # stages whose own node reads i
    for t, node in enumerate(nodes):
        for d in node.deps:
            direct[d].append(t)
    last_fwd = [max([i] + [t for t in direct[i] if t < b0]) for i in range(T)]
    last_direct = [max([i] + direct[i]) for i in range(T)]
    R: list[list[int]] = []
    held_after: list[set[int]] = []  # dropped values recomputed in the backward, held after stage t
    held: set[int] = set()
    for t in range(T):
        comp = {t}
        if t >= b0:
            stack = list(nodes[t].deps)
            while stack:
                v = stack.pop()
                if v in dropped and v not in held and v not in comp:
                    comp.add(v)
                    stack.extend(nodes[v].deps)
        R.append(sorted(comp))
        if t >= b0:
            held = {v for v in held | (comp & dropped) if last_direct[v] > t and v not in volatile}
        held_after.append(set(held))
    last_read = list(range(T))
    for t, comp in enumerate(R):
        for k in comp:
            for d in nodes[k].deps:
                last_read[d] = max(last_read[d], t)
    S: list[set[int]] = [set() for _ in range(T + 1)]
    for i in range(T):
        if i in dropped:
            for t in range(i, min(last_fwd[i], b0)):
                S[t + 1].add(i)
        else:
            for t in range(i, last_read[i]):
                S[t + 1].add(i)
    for t in range(b0, T):
        S[t + 1] |= held_after[t]
    S[T] = set()
    return _stages(R, S[:T])


def _drop_order(graph: Graph) -> list[int]:
    """Forward values by recompute cost per byte, cheapest first (the heuristic's order)."""
    nodes = graph.nodes
    return sorted((i for i in range(graph.first_backward) if nodes[i].size > 0), key=lambda i: (nodes[i].cost / nodes[i].size, i))


def drop_family(graph: Graph) -> list[GraphSchedule]:
    """The greedy's path without a budget: drop 0, 1, ..., n values in its order, then make 1..n
    of them volatile. Every budget's greedy answer before re-keeping is one of these, so a caller
    can choose among them for any budget with n simulations in all."""
    order = _drop_order(graph)
    family = [drop_schedule(graph, set(order[:k])) for k in range(len(order) + 1)]
    family += [drop_schedule(graph, set(order), frozenset(order[:k])) for k in range(1, len(order) + 1)]
    for sched in family:
        sched.optimal = False
    return family


def solve_graph_heuristic(graph: Graph, budget: float) -> GraphSchedule | None:
    """Greedy drop-cheapest-per-byte, then re-keep (module docstring); every step simulated."""
    candidates = _drop_order(graph)

    volatile: set[int] = set()

    def attempt(dropped: set[int]) -> tuple[GraphSchedule, SimResult]:
        sched = drop_schedule(graph, dropped, frozenset(volatile))
        return sched, simulate_graph(graph, sched)

    dropped: set[int] = set()
    sched, res = attempt(dropped)
    for i in candidates:
        if res.peak <= budget:
            break
        dropped.add(i)
        sched, res = attempt(dropped)
    for i in candidates:  # still too big: stop holding recomputed values between stages
        if res.peak <= budget:
            break
        volatile.add(i)
        sched, res = attempt(dropped)
    if res.peak > budget:
        return None
    for i in reversed(candidates):  # re-keep what still fits, most expensive per byte first
        for undo in (volatile, dropped):
            if i in undo:
                undo.discard(i)
                s2, r2 = attempt(dropped)
                if r2.peak <= budget and r2.cost <= res.cost:
                    sched, res = s2, r2
                else:
                    undo.add(i)
                    break
    sched.optimal = False
    return sched


def keep_all_graph(graph: Graph) -> GraphSchedule:
    """Every value computed once and held until its last read."""
    return drop_schedule(graph, set())


def solve_graph(graph: Graph, budget: float, *, exact_up_to: int = 40,
                time_limit: float = 10.0) -> GraphSchedule | None:
    """The MILP for graphs of at most `exact_up_to` nodes, the heuristic beyond.

    When the MILP stops at `time_limit` without proving optimality, the cheaper of its incumbent
    and the heuristic's schedule is returned (`optimal = False`); without an incumbent, the
    heuristic's. Measured with HiGHS on random residual chains: ~1 s at 16 nodes and 4 s at
    24 nodes for a budget of 70% of keep-all, over 2 minutes at 32 nodes."""
    if len(graph) <= exact_up_to:
        try:
            exact = solve_graph_milp(graph, budget, time_limit=time_limit)
        except TimeoutError:
            return solve_graph_heuristic(graph, budget)
        if exact is None or exact.optimal:
            return exact
        heur = solve_graph_heuristic(graph, budget)
        if heur is not None and simulate_graph(graph, heur).cost < simulate_graph(graph, exact).cost:
            return heur
        return exact
    return solve_graph_heuristic(graph, budget)


def explain_graph(graph: Graph, schedule: Sequence[Stage], budget: float | None = None, *,
                  reason: str | None = None) -> list[str]:
    """One line per forward value: until which node it is held, or for which nodes it is recomputed."""
    nodes = graph.nodes
    simulate_graph(graph, schedule)
    held_in = {i: [t for t, st in enumerate(schedule) if i in st.keep] for i in range(len(nodes))}
    runs = {i: [t for t, st in enumerate(schedule) if i in st.compute] for i in range(len(nodes))}
    why = f" {reason}" if reason is not None else "" if budget is None else f" to fit the budget {format_bytes(budget)}"
    lines = []
    for i, node in enumerate(nodes):
        if not node.forward:
            continue
        extra = len(runs[i]) - 1
        held = held_in[i]
        span = f"held until {nodes[held[-1] + 1].name}" if held else "freed after its stage"
        if extra == 0:
            lines.append(f"{node.name}: kept ({format_bytes(node.size)}, {span})")
        else:
            lines.append(f"{node.name}: recomputed {extra}x for {', '.join(nodes[t].name for t in runs[i][1:])} "
                         f"(cost {format_macs(extra * node.cost)}){why}; {span}")
    return lines
