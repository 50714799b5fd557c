"""Least memory (exact, real-valued): lo(s, t), the least memory of any schedule, and hi(s, t), the peak of the
all-tape one (nothing is cheaper above it); the dynamic programme (`dp`) fills its table only between them."""

from __future__ import annotations

import numpy as np

from .model import INF, Arrays, Chain, arrays
from .simulator import Op, OpKind, Schedule


# ---------------------------------------------------------------------------------------------
# Least memory (exact, real-valued): lo(s, t) and hi(s, t)


def requirements(a: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """leaf(s), breq(s) = x̄_s + g_s + g_{s-1} + btmp_s, and SW[s, j] = sweep(s, j) (1-based)."""
    L = a.L
    idx = np.arange(1, L + 1)
    breq = np.zeros(L + 1)
    breq[1:] = a.xbar[1:] + a.g[1:] + a.g[:-1] + a.btmp[1:]
    leaf = np.zeros(L + 1)
    leaf[1:] = np.maximum(a.g[1:] + a.xbar[1:] + a.ftmp[1:], breq[1:])
    inner = np.zeros(L + 1)  # inner[k] = x_{k-1} + x_k + ftmp_k
    inner[1:] = a.x[:-1] + a.x[1:] + a.ftmp[1:]
    sw = np.full((L + 2, L + 2), INF)
    for s in idx:
        # sweep(s, j) for j = s+1..L+1: max(x_s + ftmp_s, inner[s+1..j-1])
        sw[s, s + 1:L + 2] = np.maximum.accumulate(np.concatenate(([a.x[s] + a.ftmp[s]], inner[s + 1:L + 1])))
    return leaf, breq, sw


def bounds(a: Arrays) -> tuple[np.ndarray, np.ndarray]:
    """lo[s, t]: least memory of any schedule of C(s, t, ·); hi[s, t]: peak of the all-tape one.

    lo(s, s) = hi(s, s) = leaf(s);
    hi(s, t) = max(tape(s, t), x̄_s + hi(s+1, t));
    lo(s, t) = min( max(tape(s, t), x̄_s + lo(s+1, t)),
                    min_j max(g_t + sweep(s, j), x_{j-1} + lo(j, t), lo(s, j-1)) ).
    Computed by diagonals d = t - s, vectorised over s and j."""
    L = a.L
    leaf, breq, sw = requirements(a)
    lo = np.full((L + 2, L + 2), INF)
    hi = np.full((L + 2, L + 2), INF)
    s_all = np.arange(1, L + 1)
    lo[s_all, s_all] = leaf[1:]
    hi[s_all, s_all] = leaf[1:]
    for d in range(1, L):
        s = np.arange(1, L - d + 1)
        t = s + d
        tape = np.maximum(a.g[t] + a.xbar[s] + a.ftmp[s], breq[s])
        hi[s, t] = np.maximum(tape, a.xbar[s] + hi[s + 1, t])
        by_tape = np.maximum(tape, a.xbar[s] + lo[s + 1, t])
        j = s[:, None] + np.arange(1, d + 1)[None, :]  # (n_s, d)
        cand = np.maximum(np.maximum(a.g[t][:, None] + sw[s[:, None], j], a.x[j - 1] + lo[j, t[:, None]]),
                          lo[s[:, None], j - 1])
        lo[s, t] = np.minimum(by_tape, cand.min(axis=1))
    return lo, hi


def min_feasible_budget(chain: Chain) -> float:
    """The least budget (bytes, input included) for which some schedule exists: x_0 + lo(1, L)."""
    lo, _ = bounds(arrays(chain))
    return chain.x[0] + float(lo[1, chain.length])


def keep_all_peak(chain: Chain) -> float:
    """Peak of `keep_all`: x_0 + hi(1, L); at this budget nothing needs recomputing."""
    _, hi = bounds(arrays(chain))
    return chain.x[0] + float(hi[1, chain.length])


def min_memory_schedule(chain: Chain) -> Schedule:
    """A schedule whose peak is exactly `min_feasible_budget` (the lo recurrence traced back)."""
    a = arrays(chain)
    lo, _ = bounds(a)
    _, breq, sw = requirements(a)
    ops = Schedule()
    stack: list = [(1, a.L)]
    while stack:
        item = stack.pop()
        if isinstance(item, Op):
            ops.append(item)
            continue
        s, t = item
        if s == t:
            ops += [Op(OpKind.FALL, s), Op(OpKind.B, s)]
            continue
        tape = max(a.g[t] + a.xbar[s] + a.ftmp[s], breq[s], a.xbar[s] + lo[s + 1, t])
        j = np.arange(s + 1, t + 1)
        cand = np.maximum(np.maximum(a.g[t] + sw[s, j], a.x[j - 1] + lo[j, t]), lo[s, j - 1])
        if tape <= cand.min():
            stack += [Op(OpKind.B, s), (s + 1, t), Op(OpKind.FALL, s)]
        else:
            jj = int(j[np.argmin(cand)])
            stack += [(s, jj - 1), (jj, t)] + sweep(s, jj)[::-1]
    return ops


def sweep(s: int, j: int) -> list[Op]:
    """Fck s, F s+1, ..., F j-1: from the kept a_{s-1} to a transient a_{j-1}."""
    return [Op(OpKind.FCK, s)] + [Op(OpKind.F, k) for k in range(s + 1, j)]
