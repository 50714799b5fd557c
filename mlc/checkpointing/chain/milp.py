"""An independent exact solver of the chain model: a phase-indexed MILP (Checkmate-style), HiGHS via SciPy.

`MilpBuilder` also builds Checkmate's MILP on graphs (`mlc.checkpointing.graph`)."""

from __future__ import annotations

import numpy as np

from .model import INF, Chain
from .simulator import Op, OpKind, Schedule


# ---------------------------------------------------------------------------------------------
# An independent exact solver: a phase-indexed MILP (Checkmate-style), HiGHS via SciPy


class MilpBuilder:
    """Variables by name, sparse constraint rows lb <= a·v <= ub."""

    def __init__(self) -> None:
        self.index: dict[tuple, int] = {}
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def var(self, key: tuple, lb: float = 0, ub: float = 1) -> int:
        self.index[key] = len(self.lb)
        self.lb.append(lb)
        self.ub.append(ub)
        return self.index[key]

    def row(self, coef: dict[int, float], lb: float, ub: float) -> None:
        self.rows.append((coef, lb, ub))

    def solve(self, cost: dict[int, float], time_limit: float) -> tuple[np.ndarray, bool] | None:
        """(solution, proven optimal) or None if infeasible; TimeoutError if the time limit
        passed before any feasible solution was found."""
        from scipy.optimize import Bounds, LinearConstraint, milp
        from scipy.sparse import coo_array

        n = len(self.lb)
        c = np.zeros(n)
        for k, v in cost.items():
            c[k] += v
        r, cc, vv = [], [], []
        for i, (coef, _, _) in enumerate(self.rows):
            for k, v in coef.items():
                r.append(i), cc.append(k), vv.append(v)
        A = coo_array((vv, (r, cc)), shape=(len(self.rows), n)).tocsr()
        cons = LinearConstraint(A, [lb for _, lb, _ in self.rows], [ub for _, _, ub in self.rows])
        res = milp(c, constraints=cons, integrality=np.ones(n), bounds=Bounds(self.lb, self.ub),
                   options={"time_limit": time_limit, "mip_rel_gap": 0.0})
        if res.status == 0:
            return np.round(res.x).astype(int), True
        if res.status == 2:  # infeasible
            return None
        if res.status == 1 and res.x is not None:  # time limit, with an incumbent
            return np.round(res.x).astype(int), False
        raise TimeoutError(f"HiGHS found no schedule within {time_limit} s: {res.message}")


def _held_before(k: int, i: int, x, xb, r, a, p, sa, st) -> dict[int, float]:
    """Bytes held (as MILP coefficients) when stage i's forward starts in phase k, besides
    x_0 and δ_k: what entered the phase, what the phase kept before i, the transient a_{i-1}."""
    coef: dict[int, float] = {sa[k, j]: x[j] for j in range(1, k)}
    coef.update({st[k, j]: xb[j] for j in range(1, k + 1)})
    for j in range(1, i - 1):
        coef[p[k, j]] = coef.get(p[k, j], 0) + x[j]
    for j in range(1, i):
        coef[a[k, j]] = coef.get(a[k, j], 0) + xb[j]
    if i >= 2:  # the input a_{i-1}, if computed in this phase and not taped
        coef[r[k, i - 1]] = coef.get(r[k, i - 1], 0) + x[i - 1]
        coef[a[k, i - 1]] = coef.get(a[k, i - 1], 0) - x[i - 1]
    return coef


def solve_chain_milp(chain: Chain, budget: float, *, time_limit: float = 60.0) -> Schedule | None:
    """The optimum of the same model by a MILP over phases (independent of the DP's recursion).

    Phase k = the operations between B_{k+1} and B_k (phase L includes the first forward). In a
    phase each stage runs at most once and in increasing order (a chain). Binaries, for i <= k:
      r[k,i]  stage i runs in phase k;  a[k,i]  as Fall (records T_i);  p[k,i]  its A_i is kept
      sa[k,i] A_i is kept entering phase k;  st[k,i]  T_i is kept entering phase k.
    Rules: sa[k-1,i] = sa[k,i] + p[k,i] (i <= k-2; B_k frees A_{k-1}), st[k-1,i] = st[k,i] + a[k,i];
    r[k,k] + st[k,k] = 1 = a[k,k] + st[k,k]; nothing stored is recomputed (r + sa + st <= 1);
    stage i runs only if a_{i-1} is computed or stored; B_k needs a_{k-1}; an A_i that is not
    consumed by the next stage's F, or is read by its Fall, is kept (p >= ...), p <= r - a.
    Memory at each forward of phase k (its output, workspace, the transient input, what phase k
    has kept so far, what entered it, δ_k) and at B_k is <= budget. Objective Σ f_i r[k,i]."""
    L = chain.length
    x, xb, g, ft, bt, f = chain.x, (0,) + chain.xbar, chain.g, (0,) + chain.ftmp, (0,) + chain.btmp, (0,) + chain.f
    m = MilpBuilder()
    r, a, p, sa, st = {}, {}, {}, {}, {}
    for k in range(L, 0, -1):
        for i in range(1, k + 1):
            r[k, i] = m.var(("r", k, i))
            a[k, i] = m.var(("a", k, i))
            st[k, i] = m.var(("st", k, i), 0, 0 if k == L else 1)
        for i in range(1, k):
            p[k, i] = m.var(("p", k, i))
            sa[k, i] = m.var(("sa", k, i), 0, 0 if k == L else 1)
    for k in range(L, 0, -1):
        if k >= 2:
            for i in range(1, k - 1):
                m.row({sa[k - 1, i]: 1, sa[k, i]: -1, p[k, i]: -1}, 0, 0)
            for i in range(1, k):
                m.row({st[k - 1, i]: 1, st[k, i]: -1, a[k, i]: -1}, 0, 0)
        m.row({r[k, k]: 1, st[k, k]: 1}, 1, 1)
        m.row({a[k, k]: 1, st[k, k]: 1}, 1, 1)
        for i in range(1, k + 1):
            m.row({a[k, i]: 1, r[k, i]: -1}, -INF, 0)
            if i < k:
                m.row({r[k, i]: 1, sa[k, i]: 1, st[k, i]: 1}, -INF, 1)
                m.row({p[k, i]: 1, r[k, i]: -1, a[k, i]: 1}, -INF, 0)
                m.row({p[k, i]: 1, r[k, i]: -1, a[k, i]: 1, r[k, i + 1]: 1}, 0, INF)
                m.row({p[k, i]: 1, r[k, i]: -1, a[k, i]: 1, a[k, i + 1]: -1}, -1, INF)
            if i >= 2:
                m.row({r[k, i]: 1, r[k, i - 1]: -1, sa[k, i - 1]: -1, st[k, i - 1]: -1}, -INF, 0)
        if k >= 2:
            m.row({r[k, k - 1]: 1, sa[k, k - 1]: 1, st[k, k - 1]: 1}, 1, INF)
        const = x[0] + g[k]
        for i in range(1, k + 1):
            coef = _held_before(k, i, x, xb, r, a, p, sa, st)
            coef[r[k, i]] = coef.get(r[k, i], 0) + x[i] + ft[i]
            coef[a[k, i]] = coef.get(a[k, i], 0) - x[i] + xb[i]
            m.row(coef, -INF, budget - const)
        coef = _held_before(k, k, x, xb, r, a, p, sa, st)
        coef[a[k, k]] = coef.get(a[k, k], 0) + xb[k]
        m.row(coef, -INF, budget - const - g[k - 1] - bt[k])
    found = m.solve({r[k, i]: f[i] for (k, i) in r}, time_limit)
    if found is None:
        return None
    sol, optimal = found
    if not optimal:
        raise TimeoutError(f"HiGHS did not prove optimality within {time_limit} s")
    ops = Schedule()
    for k in range(L, 0, -1):
        for i in range(1, k + 1):
            if not sol[r[k, i]]:
                continue
            if sol[a[k, i]]:
                ops.append(Op(OpKind.FALL, i))
            elif i >= 2 and sol[r[k, i - 1]] and not sol[a[k, i - 1]] and not sol[p[k, i - 1]]:
                ops.append(Op(OpKind.F, i))
            else:
                ops.append(Op(OpKind.FCK, i))
        ops.append(Op(OpKind.B, k))
    return ops
