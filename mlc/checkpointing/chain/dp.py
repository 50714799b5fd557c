"""The exact dynamic programme under a memory budget: discretisation, the table (filled by a C loop), traceback.

The chain's quantities are those of `model`, the operations and the memory model those of `simulator`.

The dynamic programme
---------------------
`C(s, t, m)`: least cost to go from "a_{s-1} available and kept by the caller (outside m), G_t
current (inside m)" to "G_{s-1} current, every item of stages >= s freed", never using more than
`m` bytes besides what the caller holds. The first operation reads a_{s-1}; either it records the
tape (then `T_s` stays until B_s) or the schedule sweeps forward without tapes to the first value
it keeps, `a_{j-1}`, which stays until `B_j`. Everything of stages `j..t` is then done with
`a_{j-1}` (restarting from a_{s-1} would cost more and hold more), and what remains is the same
problem on `s..j-1` with `G_{j-1}`:

    C(s, s, m) = f_s + b_s                                        if m >= leaf(s)
    C(s, t, m) = min( f_s + b_s + C(s+1, t, m - x̄_s)              if m >= tape(s, t),
                      min_{s<j<=t}  Σ_{k=s}^{j-1} f_k + C(j, t, m - x_{j-1}) + C(s, j-1, m)
                                                                  if m >= g_t + sweep(s, j) )
    leaf(s)     = max(g_s + x̄_s + ftmp_s,  x̄_s + g_s + g_{s-1} + btmp_s)
    tape(s, t)  = max(g_t + x̄_s + ftmp_s,  x̄_s + g_s + g_{s-1} + btmp_s)
    sweep(s, j) = max(x_s + ftmp_s,  max_{s<k<j} x_{k-1} + x_k + ftmp_k)

(`Fck s` holds g_t + x_s + ftmp_s; each `F k` holds its transient input and output.) Infeasible
entries are +inf, and the answer for budget B is `C(1, L, B - x_0)`.

Speed. Memory is discretised into integer slots (below). Two exact bounds cut the work:
`lo(s, t)` = the least memory of any schedule (the same recurrence with (max, +) -> (min, max)),
below which C = inf; and `hi(s, t)` = the peak of the all-tape schedule, at and above which
C = Σ_{k=s}^t (f_k + b_k) (nothing can be cheaper). Only `lo <= m < hi` is computed. There,
with the rows stored pre-shifted, `E_t[j, m] = C(j, t, m - x_{j-1}) + P_{j-1}` (P the prefix
sums of f), and `C(s, ·, m)` by end stage, the candidates are `E_t[s+1..t, m] + C(s, s..t-1, m)
- P_{s-1}`, two contiguous rows. `sweep(s, j)` is non-decreasing in j, so the candidates valid
at m are a prefix of the rows. Complexity O(L^3 M) worst case. The fill is a small C loop
(`_FILL_C`, compiled once by the C backend's compiler and cached): as NumPy expressions per
(s, t) it spent most of a 64-stage solve in call overhead (55 ms against 25 ms); the traceback
re-reads the table with NumPy, from the same float64 sums and minima.

Discretisation. If every size is an integer, the unit is their gcd and the DP is exact whenever
`(B - x_0) / unit <= slots`. Otherwise the unit is `(B - x_0) / slots` and every size is rounded
up: the schedule still fits the real budget (its real peak <= its rounded peak <= B), but is
optimal only for the rounded sizes; if the rounding alone makes the budget infeasible, the
exact least-memory schedule is returned, so `None` means exactly `B < min_feasible_budget`.
Among optimal schedules the one needing the least memory is returned (the table is traced back
at the smallest m with the optimal cost), so in exact mode the peak never grows when B shrinks.
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .least_memory import bounds, keep_all_peak, min_memory_schedule, requirements, sweep
from .model import INF, Chain, arrays
from .simulator import Op, OpKind, Schedule


# ---------------------------------------------------------------------------------------------
# Discretisation


@dataclass(frozen=True)
class Discretisation:
    """Sizes in integer slots of `unit` bytes; `M` slots for everything but the input."""

    unit: float
    M: int
    exact: bool
    sizes: dict  # name -> 1-based integer array (x, xbar, g, ftmp, btmp)


def _integral(v: float) -> bool:
    return float(v).is_integer()


def discretise(chain: Chain, budget: float, slots: int | None = 500) -> Discretisation | None:
    """Slots for `budget`; None if the budget does not even hold the input.

    Exact (unit = gcd of the sizes) when the sizes are integers and (budget - x_0)/unit <= slots
    (always, for slots=None); otherwise unit = (budget - x_0)/slots and sizes round up."""
    room = budget - chain.x[0]
    if room < 0:
        return None
    raw = {"x": chain.x, "xbar": (0,) + chain.xbar, "g": chain.g,
           "ftmp": (0,) + chain.ftmp, "btmp": (0,) + chain.btmp}
    values = [v for k, vs in raw.items() for i, v in enumerate(vs) if not (k == "x" and i == 0)]
    unit: float | None = None
    if all(_integral(v) for v in values):
        unit = float(math.gcd(*[int(v) for v in values]) or 1)
        if slots is not None and room / unit > slots:
            unit = None
    elif slots is None:
        raise ValueError("exact discretisation (slots=None) needs integer sizes")
    if unit is not None:
        return Discretisation(unit, int(room // unit), True,
                              {k: np.array([int(v) // int(unit) for v in vs], dtype=np.int64) for k, vs in raw.items()})
    unit = room / slots if room > 0 else 1.0

    def up(v: float) -> int:
        n = math.ceil(v / unit)
        return n + 1 if n * unit < v else n

    M = math.floor(room / unit)
    if M * unit > room:
        M -= 1
    return Discretisation(unit, M, False, {k: np.array([up(v) for v in vs], dtype=np.int64) for k, vs in raw.items()})


# ---------------------------------------------------------------------------------------------
# The exact DP table


_FILL_C = r"""
#include <stdint.h>
/* The chain DP's table (mlc/checkpointing/chain/dp.py, ChainTable): C(s, t, m) for t ascending and
   s descending, m in slots, row (s, t) at start + start_at[s] + (t - s) * W, shifted by `pad`
   columns, and end_t[j-1][m] = C(j, t, m - x_{j-1}) + P_{j-1}. Each value is the float64 sum
   and minimum of the NumPy reading in `ChainTable.schedule`, so a traceback finds it again.
   Per (s, t) and m in [lo, hi):
     sweep(m) = min over j in (s, t] with g_t + sweep(s, j) <= m of end_t[j-1][m] + C(s, j-1, m),
                minus P_{s-1};
     tape(m)  = C(s+1, t, m - xbar_s) + f_s + b_s, infeasible below max(g_t + tape_req_s, breq_s);
     C(s, t, m) = min(sweep(m), tape(m)); at m >= hi the all-tape cost Q_t - Q_{s-1}. */
#define INF (1.0 / 0.0)
void mlc_chain_fill(int64_t L, int64_t M, int64_t pad, const int64_t* lo, const int64_t* hi,
                    const double* P, const double* Q, const int64_t* x, const int64_t* xbar,
                    const int64_t* g, const double* fb, const int64_t* tape_req, const int64_t* breq,
                    const double* sw, double* start, const int64_t* start_at, double* end,
                    const int64_t* end_at) {
  const int64_t W = pad + M + 1, N = L + 2;
  for (int64_t t = 1; t <= L; t++) {
    double* end_t = end + end_at[t];
    for (int64_t s = t; s >= 1; s--) {
      double* row = start + start_at[s] + (t - s) * W;
      int64_t wl = lo[s * N + t] < M + 1 ? lo[s * N + t] : M + 1;
      int64_t wh = hi[s * N + t] > wl ? hi[s * N + t] : wl;
      if (wh > M + 1) wh = M + 1;
      for (int64_t k = pad + wh; k < W; k++) row[k] = Q[t] - Q[s - 1];
      if (wh > wl) {
        const int64_t n = t - s, xb = xbar[s] < pad ? xbar[s] : pad;
        const double* own = start + start_at[s];           /* C(s, s + r, .), r < n */
        const double* next = start + start_at[s + 1] + (t - s - 1) * W;  /* C(s+1, t, .) */
        int64_t cut = g[t] + tape_req[s] > breq[s] ? g[t] + tape_req[s] : breq[s];
        for (int64_t m = wl; m < wh; m++) {
          double best = INF;
          for (int64_t r = 0; r < n; r++) {
            if ((double)g[t] + sw[s * N + s + 1 + r] > (double)m) break;  /* sweep(s, j) grows with j */
            double v = end_t[(s + r) * (M + 1) + m] + own[r * W + pad + m];
            if (v < best) best = v;
          }
          best -= P[s - 1];
          double tape = m < cut ? INF : next[pad + m - xb] + fb[s];
          row[pad + m] = tape < best ? tape : best;
        }
      }
      if (s >= 2) {
        const int64_t xs = x[s - 1] < pad ? x[s - 1] : pad;
        for (int64_t m = 0; m <= M; m++) end_t[(s - 1) * (M + 1) + m] = row[pad - xs + m] + P[s - 1];
      }
    }
  }
}
"""


def _carve(flat: np.ndarray, shapes: Sequence[tuple[int, int]]) -> tuple[list[np.ndarray], np.ndarray]:
    """Views of consecutive blocks of `flat` of `shapes`, and their offsets (int64)."""
    sizes = [r * w for r, w in shapes]
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
    return [flat[o:o + n].reshape(shape) for o, n, shape in zip(offsets, sizes, shapes)], offsets


def _c(values: object, dtype: type = np.float64) -> np.ndarray:
    """`values` as a contiguous array of `dtype`, for `_FILL_C`."""
    return np.ascontiguousarray(values, dtype=dtype)


@functools.cache
def _fill_function() -> ctypes._CFuncPtr:  # pyright: ignore[reportAttributeAccessIssue]
    """`mlc_chain_fill`, compiled once (and cached on disk) by the C backend's compiler."""
    from mlc.backends.c.runtime import compile_c, load_library

    fn = load_library(compile_c(_FILL_C)).mlc_chain_fill
    fn.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_void_p] * 15
    fn.restype = None
    return fn


class ChainTable:
    """C(s, t, m) for 1 <= s <= t <= L and 0 <= m <= M (slots), filled by `_fill`.

    Storage: `_start[s][t-s, pad+m] = C(s, t, m)` (the first `pad` columns are +inf, so a shift
    by at most `pad` slots is a plain slice) and `_end[t][j-1, m] = C(j, t, m - x_{j-1}) + P_{j-1}`."""

    def __init__(self, chain: Chain, disc: Discretisation) -> None:
        self.chain = chain
        self.disc = disc
        self.a = arrays(chain, {k: v.astype(float) for k, v in disc.sizes.items()})
        self.M = disc.M
        lo, hi = bounds(self.a)
        self.lo = [[int(v) if math.isfinite(v) else 0 for v in row] for row in lo]
        self.hi = [[int(v) if math.isfinite(v) else 0 for v in row] for row in hi]
        self.leaf, self.breq, self.sw = requirements(self.a)
        L = chain.length
        self.P = np.concatenate(([0.0], np.cumsum(self.a.f[1:])))
        fb = self.a.f + self.a.b
        self.Q = np.concatenate(([0.0], np.cumsum(fb[1:])))
        shifts = [int(v) for v in self.a.x[1:L]] + [int(v) for v in self.a.xbar[1:L]] + [0]
        self.pad = min(max(shifts), self.M + 1)
        self._fill()

    # -- filling -------------------------------------------------------------------------------

    def _fill(self) -> None:
        """Every C(s, t, ·) by `_FILL_C` (the recurrences of the module docstring, t ascending,
        s descending), into one block per table so that the C loop sees flat arrays."""
        a, M, pad, L = self.a, self.M, self.pad, self.chain.length
        W = pad + M + 1
        start_shapes = [(L - s + 1, W) for s in range(1, L + 1)]
        end_shapes = [(t, M + 1) for t in range(1, L + 1)]
        flat_start = np.full(sum(r * w for r, w in start_shapes), INF)  # below lo(s, t): infeasible
        flat_end = np.empty(sum(r * w for r, w in end_shapes))
        starts, start_at = _carve(flat_start, start_shapes)
        ends, end_at = _carve(flat_end, end_shapes)
        self._start, self._end = [None, *starts], [None, *ends]
        args = [_c(self.lo, np.int64), _c(self.hi, np.int64), _c(self.P), _c(self.Q), _c(a.x, np.int64),
                _c(a.xbar, np.int64), _c(a.g, np.int64), _c(a.f + a.b),
                _c(np.concatenate(([0], a.xbar[1:] + a.ftmp[1:])), np.int64), _c(self.breq, np.int64), _c(self.sw),
                flat_start, np.concatenate(([0], start_at, [0])), flat_end, np.concatenate(([0], end_at))]
        _fill_function()(L, M, pad, *(v.ctypes.data for v in args))

    # -- queries -------------------------------------------------------------------------------

    def cost(self, s: int, t: int, m: int) -> float:
        """C(s, t, m) (m in slots; m > M is clamped, m < 0 is infeasible)."""
        if m < 0:
            return INF
        return float(self._start[s][t - s, self.pad + min(m, self.M)])

    def pareto(self) -> list[tuple[int, float]]:
        """(m, C(1, L, m)) at each m where the optimum drops: the budget/cost curve in slots."""
        row = self._start[1][self.chain.length - 1, self.pad:]
        out, last = [], INF
        for m, v in enumerate(row.tolist()):
            if v < last:
                out.append((m, v))
                last = v
        return out

    def tightest(self, m: int, t: int | None = None) -> int:
        """The least m' <= m with C(1, t, m') = C(1, t, m)."""
        t = self.chain.length if t is None else t
        row = self._start[1][t - 1, self.pad:self.pad + m + 1]
        return int(np.argmax(row == row[m]))

    def _tape_value(self, s: int, t: int, m: int) -> float:
        a = self.a
        if m < max(a.g[t] + a.xbar[s] + a.ftmp[s], self.breq[s]):
            return INF
        xb = min(int(a.xbar[s]), self.pad)
        return float(self._start[s + 1][t - s - 1, self.pad + m - xb] + (a.f[s] + a.b[s]))

    def _sweep_values(self, s: int, t: int, m: int) -> np.ndarray:
        n = t - s
        vals = (self._end[t][s:t, m] + self._start[s][:n, self.pad + m]) - self.P[s - 1]
        vals[self.a.g[t] + self.sw[s, s + 1:t + 1] > m] = INF
        return vals

    def schedule(self, m: int | None = None, t: int | None = None) -> Schedule | None:
        """Trace back C(1, t, m) (defaults: the whole chain, m = M); None if infeasible."""
        t = self.chain.length if t is None else t
        m = self.M if m is None else m
        if not math.isfinite(self.cost(1, t, m)):
            return None
        ops = Schedule()
        stack: list = [(1, t, m)]
        while stack:
            item = stack.pop()
            if isinstance(item, Op):
                ops.append(item)
                continue
            s, e, mm = item
            if s == e:
                ops += [Op(OpKind.FALL, s), Op(OpKind.B, s)]
            elif mm >= self.hi[s][e]:
                ops += [Op(OpKind.FALL, i) for i in range(s, e + 1)] + [Op(OpKind.B, i) for i in range(e, s - 1, -1)]
            else:
                best = self.cost(s, e, mm)
                if self._tape_value(s, e, mm) == best:
                    stack += [Op(OpKind.B, s), (s + 1, e, mm - int(self.a.xbar[s])), Op(OpKind.FALL, s)]
                else:
                    j = s + 1 + int(np.flatnonzero(self._sweep_values(s, e, mm) == best)[0])
                    stack += [(s, j - 1, mm), (j, e, mm - int(self.a.x[j - 1]))] + sweep(s, j)[::-1]
        return ops


def solve_table(chain: Chain, budget: float, *, slots: int | None = 500) -> ChainTable | None:
    """The DP table for `budget` (bytes, input included); None if the budget cannot hold x_0."""
    disc = discretise(chain, budget, slots)
    return None if disc is None else ChainTable(chain, disc)


def solve_optimal(chain: Chain, budget: float, *, slots: int | None = 500) -> Schedule | None:
    """The cheapest schedule with peak <= budget (bytes, input included), None if there is none.

    Exact under the model when the discretisation is (see the module docstring); among optimal
    schedules, one needing the least memory."""
    if math.isnan(budget):
        raise ValueError("the budget is NaN")
    lo, hi = bounds(arrays(chain))
    L = chain.length
    if budget < chain.x[0] + lo[1, L]:
        return None
    budget = min(budget, chain.x[0] + float(hi[1, L]))  # more memory than keep-all cannot help
    table = solve_table(chain, budget, slots=slots)
    sched = None if table is None else table.schedule(table.tightest(table.M))
    return sched if sched is not None else min_memory_schedule(chain)


def pareto_front(chain: Chain, *, slots: int | None = 500) -> list[tuple[float, float]]:
    """(budget bytes, optimal cost) at each budget where the optimum drops, from least memory to
    keep-all, from one table (so the curve is monotone even when discretised)."""
    table = solve_table(chain, keep_all_peak(chain), slots=slots)
    assert table is not None
    return [(chain.x[0] + m * table.disc.unit, c) for m, c in table.pareto()]
