"""Solve times of the keep-or-recompute solvers (mlc/checkpointing), next to their targets.

    python benchmarks/checkpoint_solve_times.py [--repeats 5] [--revolve-grid]

Chain DP: random heterogeneous chains as in the notes (f ∈ [1, 3] Mmac, b = 2f, x ∈ {1..4} pages
of 4 KiB plus up to 1 KiB, x̄ = 2x: sizes have no common unit, so the memory is discretised into
500 slots), solved with `solve_optimal` at budgets from the least feasible one to nearly keep-all
(fraction of the way between them). Reported: the median of the repeats per budget, and the
worst budget against the target (L=64: 50 ms, L=128: 0.5 s). `recompute` is the recomputed cost
over one forward pass at the tightest budget.

Revolve: the DP's extra forwards on homogeneous chains against the closed form, every l <= 200
and s <= 16 from one table (with --revolve-grid: l <= 1000, s <= 32, about 20 s).

Graphs: Checkmate's MILP (HiGHS, 20 s limit) and the heuristic on random residual training graphs
at 90% and 70% of the keep-all peak; the heuristic alone on larger graphs.
"""

from __future__ import annotations

import argparse
import random
import time

from timing import median_seconds

from mlc.checkpointing.chain import (
    Chain,
    keep_all_peak,
    min_feasible_budget,
    revolve_extra_forwards,
    revolve_forward_count,
    simulate,
    solve_optimal,
    solve_table,
)
from mlc.checkpointing.graph import (
    Node,
    keep_all_graph,
    simulate_graph,
    solve_graph_heuristic,
    solve_graph_milp,
    training_graph,
)

TARGETS = {64: 0.050, 128: 0.500}
FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.95)


def random_chain(length: int, seed: int) -> Chain:
    rng = random.Random(seed)
    f = [rng.uniform(1, 3) * 1e6 for _ in range(length)]
    x = [rng.randint(1, 4) * 4096 + rng.randint(0, 1023) for _ in range(length + 1)]
    return Chain(f=f, b=[2 * v for v in f], x=x, xbar=[2 * v for v in x[1:]])


def chain_table(repeats: int) -> None:
    print("Chain DP, solve_optimal, ~500 slots: median ms per budget (fraction from least feasible to keep-all)")
    head = " ".join(f"{f:>6}" for f in FRACTIONS)
    print(f"{'L':>4} {'slots':>5} {head} {'worst':>7} {'target':>7}  recompute@min")
    for L in (16, 32, 64, 128):
        chain = random_chain(L, seed=L)
        lo, hi = min_feasible_budget(chain), keep_all_peak(chain)
        row = []
        for frac in FRACTIONS:
            budget = lo + frac * (hi - lo)
            row.append(median_seconds(lambda c=chain, b=budget: solve_optimal(c, b), repeats, warmup=False))
            res = simulate(chain, solve_optimal(chain, budget))
            assert res.peak <= budget
        slots = solve_table(chain, lo + 0.5 * (hi - lo)).M
        worst = max(row)
        target = TARGETS.get(L)
        verdict = "" if target is None else f"{target * 1e3:5.0f}ms {'ok' if worst <= target else 'MISSED'}"
        tight = simulate(chain, solve_optimal(chain, lo)).recomputed / sum(chain.f)
        cells = " ".join(f"{t * 1e3:6.1f}" for t in row)
        print(f"{L:>4} {slots:>5} {cells} {worst * 1e3:7.1f} {verdict:>10}  {tight:.2f}x")


def revolve_check(full: bool) -> None:
    steps, snaps = (1000, 32) if full else (200, 16)
    t0 = time.perf_counter()
    E = revolve_extra_forwards(steps, snaps)
    elapsed = time.perf_counter() - t0
    wrong = sum(E[l, s] != revolve_forward_count(l, s) for l in range(1, steps + 1) for s in range(1, snaps + 1))
    print(f"\nRevolve: l <= {steps}, s <= {snaps}: {steps * snaps} pairs, {wrong} differ from "
          f"r·l - β(s+1, r-1); one table in {elapsed:.2f} s (e.g. l=100, s=5: {E[100, 5]})")


def random_training_graph(rng: random.Random, n: int):
    forward, needs = [], []
    for k in range(n):
        deps = {k - 1} if k else set()
        if k >= 2 and rng.random() < 0.4:
            deps.add(rng.randrange(0, k - 1))
        forward.append(Node(f"v{k}", rng.randint(1, 5), rng.randint(1, 4), tuple(sorted(deps))))
        needs.append(sorted({d for d in deps if rng.random() < 0.7} | ({k} if rng.random() < 0.5 else set())))
    return training_graph(forward, needs)


def graph_table() -> None:
    rng = random.Random(1)
    print("\nGraphs: Checkmate MILP (HiGHS, 20 s limit) vs heuristic; cost = forward+backward cost")
    print(f"{'nodes':>5} {'budget':>7} {'milp cost':>9} {'proven':>6} {'milp s':>7} {'heur cost':>9} {'heur s':>7}")
    for n in (8, 12, 16, 20):
        graph = random_training_graph(rng, n)
        peak = simulate_graph(graph, keep_all_graph(graph)).peak
        for frac in (0.9, 0.7):
            budget = int(peak * frac)
            t0 = time.perf_counter()
            try:
                exact = solve_graph_milp(graph, budget, time_limit=20)
            except TimeoutError:
                exact = None
            t1 = time.perf_counter()
            heur = solve_graph_heuristic(graph, budget)
            t2 = time.perf_counter()
            ec = "-" if exact is None else f"{simulate_graph(graph, exact).cost:g}"
            hc = "-" if heur is None else f"{simulate_graph(graph, heur).cost:g}"
            proven = "-" if exact is None else ("yes" if exact.optimal else "no")
            print(f"{len(graph):>5} {f'{frac:.0%}':>7} {ec:>9} {proven:>6} {t1 - t0:7.2f} {hc:>9} {t2 - t1:7.3f}")
    print(f"\n{'nodes':>5} {'budget':>7} {'heur cost':>9} {'keep-all':>9} {'heur s':>7}")
    for n in (50, 100, 200):
        graph = random_training_graph(rng, n)
        full = simulate_graph(graph, keep_all_graph(graph))
        for frac in (0.7, 0.4):
            t0 = time.perf_counter()
            heur = solve_graph_heuristic(graph, full.peak * frac)
            elapsed = time.perf_counter() - t0
            hc = "-" if heur is None else f"{simulate_graph(graph, heur).cost:g}"
            print(f"{len(graph):>5} {f'{frac:.0%}':>7} {hc:>9} {full.cost:>9g} {elapsed:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--revolve-grid", action="store_true", help="l <= 1000, s <= 32 (about 20 s)")
    parser.add_argument("--no-graphs", action="store_true")
    args = parser.parse_args()
    chain_table(args.repeats)
    revolve_check(args.revolve_grid)
    if not args.no_graphs:
        graph_table()


if __name__ == "__main__":
    main()
