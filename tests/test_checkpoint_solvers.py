"""The keep-or-recompute solvers against independent references (mlc/checkpointing).

References: Revolve's closed form (homogeneous chains), a phase-indexed MILP solved by HiGHS and an
exhaustive search over every operation sequence (heterogeneous chains), the simulator (validity,
peak, cost of every returned schedule), and for graphs Checkmate's MILP against the heuristic.
"""

from __future__ import annotations

import heapq
import math
import random

import pytest

from mlc.checkpointing.chain import (
    Chain,
    Op,
    OpKind,
    Schedule,
    ScheduleError,
    explain,
    homogeneous_chain,
    keep_all,
    keep_all_peak,
    min_feasible_budget,
    min_memory_schedule,
    pareto_front,
    recompute_all,
    revolve_extra_forwards,
    revolve_forward_count,
    simulate,
    solve_chain_milp,
    solve_optimal,
    sqrt_schedule,
)
from mlc.checkpointing.graph import (
    GraphScheduleError,
    Node,
    Stage,
    explain_graph,
    keep_all_graph,
    simulate_graph,
    solve_graph_heuristic,
    solve_graph_milp,
    training_graph,
)


def random_chain(rng: random.Random, length: int, *, extras: bool = True) -> Chain:
    """Small integer costs and sizes (exact discretisation); sometimes gradients and workspaces."""
    x = [rng.randint(1, 4) for _ in range(length + 1)]
    xbar = [x[i] + rng.randint(0, 4) for i in range(1, length + 1)]
    pick = lambda n, hi: [rng.randint(0, hi) for _ in range(n)] if extras and rng.random() < 0.5 else None
    return Chain(f=[rng.randint(0, 5) for _ in range(length)], b=[rng.randint(0, 5) for _ in range(length)],
                 x=x, xbar=xbar, g=pick(length + 1, 3), ftmp=pick(length, 2), btmp=pick(length, 2))


# ---------------------------------------------------------------------------------------------
# Homogeneous chains: Revolve


def test_revolve_closed_form_reference_values():
    # From the notes (Griewank-Walther numforw) and the trivial cases.
    assert revolve_forward_count(100, 5) == 316
    assert revolve_forward_count(1000, 10) == 3636
    assert revolve_forward_count(1000, 31) == 2439
    assert revolve_forward_count(1, 1) == 0
    assert revolve_forward_count(5, 1) == 10  # l(l-1)/2: everything from the input
    assert revolve_forward_count(7, 100) == 6  # l-1: every state kept


def test_dp_equals_revolve_for_all_lengths_up_to_200_and_16_slots():
    # One DP table (a homogeneous chain of 200 stages, memory in slots) answers every (l, s):
    # the prefix problem C(1, l, K + s). All 3200 pairs, ~0.3 s.
    E = revolve_extra_forwards(200, 16)
    wrong = [(l, s, int(E[l, s]), revolve_forward_count(l, s))
             for l in range(1, 201) for s in range(1, 17) if E[l, s] != revolve_forward_count(l, s)]
    assert not wrong, wrong[:10]


@pytest.mark.parametrize("steps,snaps", [(1, 1), (2, 1), (10, 1), (10, 3), (37, 4), (100, 5), (64, 16)])
def test_revolve_schedules_simulate_to_the_closed_form(steps, snaps):
    K = snaps + 1
    chain = homogeneous_chain(steps, tape=K)
    budget = chain.x[0] + K + snaps
    sched = solve_optimal(chain, budget, slots=None)
    res = simulate(chain, sched)
    assert res.recomputed == revolve_forward_count(steps, snaps)
    assert res.peak <= budget


# ---------------------------------------------------------------------------------------------
# Heterogeneous chains: DP == MILP == exhaustive search


def test_dp_equals_milp_on_random_chains():
    rng = random.Random(2024)
    compared = feasible = 0
    for _ in range(60):
        chain = random_chain(rng, rng.randint(1, 12))
        lo, hi = min_feasible_budget(chain), keep_all_peak(chain)
        budgets = {int(lo) - 1, int(lo)} | {rng.randint(int(lo), int(hi)) for _ in range(2)}
        for budget in sorted(budgets):
            dp = solve_optimal(chain, budget)
            milp = solve_chain_milp(chain, budget)
            assert (dp is None) == (milp is None), (chain, budget)
            compared += 1
            if dp is None:
                continue
            feasible += 1
            r_dp, r_milp = simulate(chain, dp), simulate(chain, milp)
            assert r_dp.peak <= budget and r_milp.peak <= budget
            assert r_dp.cost == r_milp.cost, (chain, budget, str(dp), str(milp))
    assert compared >= 200 and feasible >= 150


def _exhaustive(chain: Chain, budget: float) -> float | None:
    """Least cost over ALL operation sequences (Dijkstra over memory states), written from the
    module docstring's rules independently of the simulator."""
    L = chain.length
    x, xb, g = chain.x, (0,) + chain.xbar, chain.g
    ft, bt, f, b = (0,) + chain.ftmp, (0,) + chain.btmp, (0,) + chain.f, (0,) + chain.b
    start = (((0, True),), frozenset(), L)
    if x[0] + g[L] > budget:
        return None
    dist, heap, tick = {start: 0.0}, [(0.0, 0, start)], 0
    while heap:
        d, _, state = heapq.heappop(heap)
        if d > dist[state]:
            continue
        acts, tapes, k = state
        if k == 0:
            return d
        A = dict(acts)
        mem = sum(x[j] for j in A) + sum(xb[j] for j in tapes) + g[k]
        moves = []
        for i in range(1, k + 1):
            src = "T" if i - 1 in tapes else "A" if i - 1 in A else None
            if src is None:
                continue
            for kind in ("F", "Fck", "Fall"):
                A2, T2 = dict(A), set(tapes)
                if kind == "Fall":
                    if i in T2:
                        continue
                    peak = mem + xb[i] + ft[i]
                    T2.add(i)
                else:
                    if i in A2 or i in T2:
                        continue
                    peak = mem + x[i] + ft[i]
                    A2[i] = False
                if src == "A":
                    if kind == "F":
                        if A2[i - 1]:
                            continue  # would drop a checkpoint
                        del A2[i - 1]
                    else:
                        A2[i - 1] = True
                if peak <= budget:
                    moves.append(((tuple(sorted(A2.items())), frozenset(T2), k), f[i]))
        if k in tapes and (k - 1 in tapes or k - 1 in A) and mem + g[k - 1] + bt[k] <= budget:
            A2 = {j: p for j, p in A.items() if j < k - 1}
            moves.append(((tuple(sorted(A2.items())), tapes - {k}, k - 1), b[k]))
        for nxt, w in moves:
            if d + w < dist.get(nxt, math.inf):
                dist[nxt] = d + w
                tick += 1
                heapq.heappush(heap, (d + w, tick, nxt))
    return None


def test_dp_equals_exhaustive_search_on_small_chains():
    rng = random.Random(7)
    for _ in range(40):
        chain = random_chain(rng, rng.randint(1, 4))
        lo, hi = min_feasible_budget(chain), keep_all_peak(chain)
        for budget in range(int(lo) - 1, int(hi) + 1):
            sched = solve_optimal(chain, budget)
            best = _exhaustive(chain, budget)
            assert (sched is None) == (best is None), (chain, budget)
            if sched is not None:
                assert simulate(chain, sched).cost == best, (chain, budget, str(sched))


# ---------------------------------------------------------------------------------------------
# Budget semantics


def test_budget_is_a_monotone_hard_limit():
    rng = random.Random(11)
    for _ in range(25):
        chain = random_chain(rng, rng.randint(2, 20))
        lo, hi = min_feasible_budget(chain), keep_all_peak(chain)
        last_cost, last_peak = -math.inf, math.inf
        for budget in range(int(hi) + 2, int(lo) - 1, -1):  # decreasing
            res = simulate(chain, solve_optimal(chain, budget))
            assert res.peak <= budget
            assert res.cost >= last_cost  # less memory never makes it cheaper
            assert res.peak <= last_peak  # and never needs more memory
            last_cost, last_peak = res.cost, res.peak
        assert solve_optimal(chain, lo - 1) is None


def test_min_feasible_budget_is_exactly_the_boundary():
    rng = random.Random(5)
    for _ in range(40):
        chain = random_chain(rng, rng.randint(1, 16))
        lo = min_feasible_budget(chain)
        assert lo == int(lo)
        sched = solve_optimal(chain, lo)
        assert sched is not None and simulate(chain, sched).peak == lo
        assert simulate(chain, min_memory_schedule(chain)).peak == lo
        assert solve_optimal(chain, lo - 0.5) is None
        assert solve_chain_milp(chain, lo - 1) is None if chain.length <= 8 else True


def test_rounded_slots_stay_within_the_real_budget():
    # Byte sizes that are not multiples of a common unit: 40 slots force rounding. The schedule
    # still fits the real budget, costs at least the exact optimum, and None is exact.
    rng = random.Random(3)
    for _ in range(10):
        L = rng.randint(3, 10)
        x = [rng.randint(1000, 5000) for _ in range(L + 1)]
        chain = Chain(f=[rng.randint(1, 9) for _ in range(L)], b=[rng.randint(1, 9) for _ in range(L)],
                      x=x, xbar=[v + rng.randint(0, 3000) for v in x[1:]])
        lo, hi = min_feasible_budget(chain), keep_all_peak(chain)
        for budget in (lo, lo + 0.3 * (hi - lo), lo + 0.7 * (hi - lo)):
            rough = solve_optimal(chain, budget, slots=40)
            exact = solve_optimal(chain, budget, slots=None)
            r_rough, r_exact = simulate(chain, rough), simulate(chain, exact)
            assert r_rough.peak <= budget and r_exact.peak <= budget
            assert r_rough.cost >= r_exact.cost
        assert solve_optimal(chain, lo * (1 - 1e-9), slots=40) is None


def test_pareto_front_is_monotone_and_spans_min_to_keep_all():
    rng = random.Random(9)
    for _ in range(10):
        chain = random_chain(rng, rng.randint(2, 14))
        front = pareto_front(chain)
        budgets = [b for b, _ in front]
        costs = [c for _, c in front]
        assert budgets == sorted(budgets) and costs == sorted(costs, reverse=True)
        assert budgets[0] == min_feasible_budget(chain)
        assert costs[-1] == sum(chain.f) + sum(chain.b)
        for budget, cost in front:
            assert simulate(chain, solve_optimal(chain, budget)).cost == cost


# ---------------------------------------------------------------------------------------------
# Baselines


def test_baselines_are_valid_with_their_expected_costs():
    rng = random.Random(1)
    for _ in range(20):
        chain = random_chain(rng, rng.randint(1, 25))
        L, f = chain.length, chain.f
        base = sum(f) + sum(chain.b)

        k = simulate(chain, keep_all(chain))
        assert k.cost == base and k.recomputed == 0 and k.peak == keep_all_peak(chain)

        r = simulate(chain, recompute_all(chain))
        assert r.recomputed == sum(f[i - 1] * (L - i) for i in range(1, L + 1))

        for segments in (None, 1, 2, 3):
            s = simulate(chain, sqrt_schedule(chain, segments))
            n = max(1, min(L, segments if segments is not None else round(math.sqrt(L))))
            last_start = round((n - 1) * L / n)  # the last segment is stages last_start+1..L
            assert s.recomputed == sum(f[:last_start])

        # The optimum at each baseline's own peak is no worse than the baseline.
        for sched in (keep_all(chain), recompute_all(chain), sqrt_schedule(chain)):
            res = simulate(chain, sched)
            assert simulate(chain, solve_optimal(chain, res.peak)).cost <= res.cost


# ---------------------------------------------------------------------------------------------
# The simulator rejects what the model forbids


@pytest.mark.parametrize("text,why", [
    ("Fall1 Fall2 Fall3 B2 B3 B1", "in order"),
    ("Fck1 F2 Fall3 B3 B2 Fall1 B1", "T_2 is not in memory"),
    ("F1 Fall2 Fall3 B3 B2 Fall1 B1", "checkpoint a_0"),
    ("Fck1 Fck2 Fck3 Fck3", "a_3 is already in memory"),
    ("Fck1 Fck2 Fall3 B3 F3", "already back-propagated"),
    ("Fall1 Fall2 Fall3 B3 B2", "ends before B_1"),
    ("Fck1 Fall3 B3 B2 B1", "a_2 is not in memory"),
    ("Fck1 Fck2 Fall3 B3 Fck1 F2 Fall2 B2 Fall1 B1", "a_1 is already in memory"),
    ("Fall1 Fall1", "T_1 is already in memory"),
])
def test_simulator_rejects_invalid_schedules(text, why):
    chain = Chain(f=[1, 1, 1], b=[1, 1, 1], x=[1, 1, 1, 1], xbar=[2, 2, 2])
    with pytest.raises(ScheduleError, match=why):
        simulate(chain, Schedule.parse(text))


def test_schedule_text_round_trip_and_prefix():
    text = "Fck1 F2 Fall3 B3 Fall2 B2 Fall1 B1"
    assert str(Schedule.parse(text)) == text
    assert Schedule.parse("Fall12")[0] == Op(OpKind.FALL, 12)
    chain = Chain(f=[1, 2, 3], b=[1, 1, 1], x=[1, 2, 3, 4], xbar=[2, 3, 4])
    assert chain.prefix(2).x == (1, 2, 3) and chain.prefix(2).length == 2
    with pytest.raises(ValueError, match="xbar >= x"):
        Chain(f=[1], b=[1], x=[1, 5], xbar=[2])


# ---------------------------------------------------------------------------------------------
# Explanations


def test_explanations_say_what_is_kept_and_what_is_recomputed():
    chain = Chain(f=[1e6, 2e6, 3e6, 1e6], b=[2e6, 4e6, 6e6, 2e6], x=[1024, 2048, 1024, 3072, 1024],
                  xbar=[4096, 2048, 6144, 2048], names=("conv1", "relu1", "conv2", "loss"))
    budget = 14 * 1024
    sched = solve_optimal(chain, budget)
    assert str(sched) == "Fck1 F2 Fall3 Fall4 B4 B3 Fall1 Fall2 B2 B1"
    lines = explain(chain, sched, budget)
    assert len(lines) == chain.length
    assert lines[0] == ("stage 1 (conv1): recomputed 1x from the input a0 (cost 1.0 Mmac) because budget "
                        "14.0 KiB < keep-all peak 19.0 KiB; tape 4.0 KiB recorded just before B1")
    assert lines[1].startswith("stage 2 (relu1): kept (checkpoint a2, 1.0 KiB); recomputed 1x from the input a0 (cost 2.0 Mmac)")
    assert lines[2] == "stage 3 (conv2): kept (tape T3, 6.0 KiB, first forward to B3)"
    assert lines[3] == "stage 4 (loss): kept (tape T4, 2.0 KiB, first forward to B4)"
    assert explain(chain, keep_all(chain), 19 * 1024)[0] == "stage 1 (conv1): kept (tape T1, 4.0 KiB, first forward to B1)"


# ---------------------------------------------------------------------------------------------
# General graphs


def random_training_graph(rng: random.Random, n: int):
    forward, needs = [], []
    for k in range(n):
        deps = {k - 1} if k else set()
        if k >= 2 and rng.random() < 0.4:
            deps.add(rng.randrange(0, k - 1))  # a skip connection
        forward.append(Node(f"v{k}", rng.randint(1, 5), rng.randint(1, 4), tuple(sorted(deps))))
        need = {d for d in deps if rng.random() < 0.7} | ({k} if rng.random() < 0.5 else set())
        needs.append(sorted(need))
    return training_graph(forward, needs)


def test_graph_milp_and_heuristic_against_each_other():
    rng = random.Random(4)
    solved = 0
    for _ in range(10):
        graph = random_training_graph(rng, rng.randint(3, 6))
        full = simulate_graph(graph, keep_all_graph(graph))
        assert full.recomputed == 0
        last = -math.inf
        for budget in range(int(full.peak) + 1, 0, -1):
            exact = solve_graph_milp(graph, budget)
            heur = solve_graph_heuristic(graph, budget)
            if exact is None:
                assert heur is None
                break
            r = simulate_graph(graph, exact)
            assert r.peak <= budget and r.cost >= last
            if budget >= full.peak:
                assert r.recomputed == 0
            if heur is not None:
                h = simulate_graph(graph, heur)
                assert h.peak <= budget and h.cost >= r.cost
            last = r.cost
            solved += 1
    assert solved >= 30


def test_graph_simulator_rules_and_explanations():
    # x -> conv -> relu -> loss; dconv reads x, drelu and dloss read relu.
    forward = [Node("x", 1, 1), Node("conv", 4, 4, (0,)), Node("relu", 1, 4, (1,)), Node("loss", 1, 1, (2,))]
    graph = training_graph(forward, [[], [0], [2], [2]])
    assert [n.name for n in graph.nodes] == ["x", "conv", "relu", "loss", "dloss", "drelu", "dconv", "dx"]
    assert graph.nodes[6].deps == (0, 5)  # dconv reads x and drelu's output
    sched = keep_all_graph(graph)
    assert simulate_graph(graph, sched).peak == 1 + 4 + 4 + 4  # at drelu: x, relu, dloss, drelu
    bad = list(sched)
    bad[5] = Stage((5,), bad[5].keep - {0})  # forgets x before dconv needs it
    with pytest.raises(GraphScheduleError, match="node 6 \\(dconv\\) reads \\[0\\], not in memory"):
        simulate_graph(graph, bad)
    tight = solve_graph_milp(graph, 12)
    assert simulate_graph(graph, tight) == (12, 22, 1)  # x dropped, recomputed for dconv
    assert all(st.keep <= {0, 1, 2, 3, 4, 5, 6} for st in tight)
    lines = explain_graph(graph, tight, 12)
    assert lines[0] == "x: recomputed 1x for dconv (cost 1 mac) to fit the budget 12 B; held until conv"
    assert lines[2] == "relu: kept (4 B, held until drelu)"  # pruned: nothing reads it after drelu
    assert solve_graph_milp(graph, 11) is None and solve_graph_heuristic(graph, 11) is None
