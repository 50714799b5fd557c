"""Keep-or-recompute for a chain of stages: model, simulator, exact solvers, baselines.

This module is the decision core of the future `mlc-checkpoint` pass for the (common) case
where the training step is a chain. It has no IR dependency: a `Chain` is a list of numbers.

The chain
---------
`L >= 1` stages. Stage `i` (numbered `1..L`) computes the activation `a_i = F_i(a_{i-1})`;
`a_0` is the chain input and `a_L` the loss (its gradient `δ_L` is the seed). Per stage:

    f_i      forward cost (multiply-adds)                      Chain.f[i-1]
    b_i      backward cost                                      Chain.b[i-1]
    x_i      bytes of a_i, for i = 0..L (x_0: the input)        Chain.x[i]
    x̄_i      bytes of the *tape* T_i of stage i: everything     Chain.xbar[i-1]
             B_i reads besides a_{i-1} and δ_i. T_i contains
             a_i (so x̄_i >= x_i) and the stage's internals.
    g_i      bytes of δ_i = ∂loss/∂a_i, i = 0..L (default x_i)  Chain.g[i]
    ftmp_i   workspace alive only while F_i runs                Chain.ftmp[i-1]
    btmp_i   workspace alive only while B_i runs                Chain.btmp[i-1]

(This is the model of Herrmann et al., "Optimal checkpointing for heterogeneous chains", 2019 --
"Rotor" -- where x̄ is the tape, not the gradient: a gradient always has the shape of its value,
so its size `g` defaults to `x`.)

Execution model
---------------
Memory holds *items*: activations `A_j` (x_j bytes), tapes `T_j` (x̄_j bytes, provides a_j too)
and exactly one gradient `G_k` (g_k bytes; `G_L` is present from the start). `a_j` is *available*
when `A_j` or `T_j` is in memory. An `A_j` is either *transient* or *pinned* (a checkpoint).
A schedule is a sequence of operations:

    F i     (F_∅)  needs a_{i-1}; creates transient A_i; frees A_{i-1} if that was the source.
    Fck i   (F_ck) like F, but keeps the source: an A_{i-1} read this way becomes pinned.
    Fall i  (F_all) needs a_{i-1}; creates T_i; keeps and pins the source like Fck.
    B i     needs G_i (so B_L, B_{L-1}, ..., B_1 in this order), T_i and a_{i-1};
            creates G_{i-1}; frees G_i, T_i and every A_j with j >= i-1 (nothing can read them).

Persistence: `F i` must not consume a pinned `A_{i-1}`; a checkpoint, once kept, lives until the
backward that ends its usefulness (B_{j+1}). `A_0` is pinned from the start. Without this rule
the heterogeneous problem is NP-hard (Rotor, TOMS 2024); with it the dynamic programme below is
exact. An operation that would create an item already in memory is an error.

Memory model. `mem` is the sum of the sizes of the items in memory. While an operation runs,
its output and workspace are live next to everything it reads:

    peak(F i), peak(Fck i) = mem + x_i + ftmp_i
    peak(Fall i)           = mem + x̄_i + ftmp_i
    peak(B i)              = mem + g_{i-1} + btmp_i        (G_i and T_i are freed after)

The schedule's peak is the maximum of these (and of the initial `x_0 + g_L`); the budget bounds
it. Its cost is `Σ f_i` over forward ops plus `Σ b_i` over backward ops; every stage runs F_all and
B at least once, so `recomputed = cost - Σ(f_i + b_i)` is the price of the budget. Parameters,
weight gradients and optimizer state are outside the chain (a constant the caller subtracts).

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

Revolve
-------
Homogeneous chain, unit costs and sizes, `f = 1, b = 0, x = 1, g = ftmp = btmp = 0` and tape
`x̄ = K`. With `D(n, m)` the least number of *extra* forwards (cost - n) of a length-n segment:
`D(1, m) = 0` iff `m >= K`; the tape branch needs `m >= 2K`; a sweep needs 2 <= K. So for
`m = K + σ < 2K` the recurrence is exactly Griewank's
`T(n, σ) = min_j [ j + T(n-j, σ-1) + T(j, σ) ]`, `T(1, σ) = 0` iff σ >= 0, whose closed form is
Revolve's `t(l, s) = r·l - β(s+1, r-1)`, `β(s, r) = C(s+r, s)`, r the least with β(s, r) >= l.
`revolve_extra_forwards` runs the DP once on such a chain and reads every (l, s) off the table.
"""

from __future__ import annotations

import ctypes
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import numpy as np

INF = math.inf


# ---------------------------------------------------------------------------------------------
# The chain


def _tuple(values: Sequence[float] | None, n: int, default: float | Sequence[float], what: str) -> tuple:
    if values is None:
        values = [default] * n if isinstance(default, (int, float)) else list(default)
    values = tuple(values)
    if len(values) != n:
        raise ValueError(f"{what}: expected {n} entries, got {len(values)}")
    for v in values:
        if not (v >= 0 and math.isfinite(v)):
            raise ValueError(f"{what}: entries must be finite and >= 0, got {v!r}")
    return values


@dataclass(frozen=True)
class Chain:
    """A chain of L stages; see the module docstring for the meaning of each field.

    Per-stage sequences (`f, b, xbar, ftmp, btmp`) have L entries, entry `i-1` for stage `i`;
    per-value sequences (`x, g`) have L + 1 entries, entry `i` for `a_i` (`x[0]`: the input).
    """

    f: tuple[float, ...]
    b: tuple[float, ...]
    x: tuple[float, ...]
    xbar: tuple[float, ...]
    g: tuple[float, ...] | None = None
    ftmp: tuple[float, ...] | None = None
    btmp: tuple[float, ...] | None = None
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.f)
        if n < 1:
            raise ValueError("a chain has at least one stage")
        put = lambda name, value: object.__setattr__(self, name, value)
        put("f", _tuple(self.f, n, 0, "f"))
        put("b", _tuple(self.b, n, 0, "b"))
        put("x", _tuple(self.x, n + 1, 0, "x"))
        put("xbar", _tuple(self.xbar, n, 0, "xbar"))
        put("g", _tuple(self.g, n + 1, self.x, "g"))
        put("ftmp", _tuple(self.ftmp, n, 0, "ftmp"))
        put("btmp", _tuple(self.btmp, n, 0, "btmp"))
        for i in range(1, n + 1):
            if self.xbar[i - 1] < self.x[i]:
                raise ValueError(f"stage {i}: the tape contains a_{i}, so xbar >= x ({self.xbar[i-1]} < {self.x[i]})")
        if self.names is not None:
            put("names", tuple(self.names))
            if len(self.names) != n:
                raise ValueError(f"names: expected {n} entries")

    @property
    def length(self) -> int:
        return len(self.f)

    def prefix(self, length: int) -> Chain:
        """Stages 1..length (the loss seed then sits on a_length, with size g[length])."""
        l = length
        return Chain(self.f[:l], self.b[:l], self.x[: l + 1], self.xbar[:l], self.g[: l + 1],
                     self.ftmp[:l], self.btmp[:l], None if self.names is None else self.names[:l])

    def stage_name(self, i: int) -> str:
        return f"stage {i}" if self.names is None else f"stage {i} ({self.names[i - 1]})"


class _Arrays(NamedTuple):
    """The chain as 1-based float arrays (index 0 of per-stage arrays is 0), as in the maths."""

    L: int
    f: np.ndarray
    b: np.ndarray
    x: np.ndarray
    xbar: np.ndarray
    g: np.ndarray
    ftmp: np.ndarray
    btmp: np.ndarray


def _arrays(chain: Chain, sizes: dict[str, np.ndarray] | None = None) -> _Arrays:
    stage = lambda v: np.concatenate(([0.0], np.asarray(v, dtype=float)))
    arr = _Arrays(chain.length, stage(chain.f), stage(chain.b), np.asarray(chain.x, dtype=float),
                  stage(chain.xbar), np.asarray(chain.g, dtype=float), stage(chain.ftmp), stage(chain.btmp))
    return arr._replace(**sizes) if sizes else arr


def homogeneous_chain(length: int, *, tape: float = 1, f: float = 1, b: float = 0, x: float = 1,
                      g: float = 0) -> Chain:
    """`length` identical stages (the Revolve setting when `tape = K > snapshots`, see `revolve_extra_forwards`)."""
    return Chain(f=[f] * length, b=[b] * length, x=[x] * (length + 1), xbar=[tape] * length,
                 g=[g] * (length + 1))


# ---------------------------------------------------------------------------------------------
# Schedules and the simulator (the ground truth)


class OpKind(str, Enum):
    F = "F"
    FCK = "Fck"
    FALL = "Fall"
    B = "B"


@dataclass(frozen=True, slots=True)
class Op:
    kind: OpKind
    stage: int

    def __str__(self) -> str:
        return f"{self.kind.value}{self.stage}"


class Schedule(list):
    """A list of `Op`s; `str` gives e.g. `Fck1 F2 Fall3 B3 Fall2 B2 Fall1 B1`."""

    def __str__(self) -> str:
        return " ".join(map(str, self))

    @classmethod
    def parse(cls, text: str) -> Schedule:
        ops = cls()
        for word in text.split():
            for kind in (OpKind.FALL, OpKind.FCK, OpKind.F, OpKind.B):
                if word.startswith(kind.value) and word[len(kind.value):].isdigit():
                    ops.append(Op(kind, int(word[len(kind.value):])))
                    break
            else:
                raise ValueError(f"not an operation: {word!r}")
        return ops


class ScheduleError(ValueError):
    """The schedule is not executable under the model (names the operation and the reason)."""


class SimResult(NamedTuple):
    peak: float  # bytes
    cost: float  # forward + backward cost
    recomputed: float  # cost - Σ (f_i + b_i)


@dataclass
class _Run:
    """One forward execution of a stage (for explanations)."""

    kind: OpKind
    phase: int  # k: the run happens before B_k
    origin: int  # the stored value its sweep started from (a_origin)


class _Machine:
    """Executes a schedule on the model, checking every rule; records runs and pins."""

    def __init__(self, chain: Chain) -> None:
        self.c = chain
        L = chain.length
        self.acts: dict[int, bool] = {0: True}  # j -> pinned
        self.tapes: set[int] = set()
        self.origin: dict[int, int] = {0: 0}
        self.tape_phase: dict[int, int] = {}
        self.grad = L
        self.mem = chain.x[0] + chain.g[L]
        self.peak = self.mem
        self.cost = 0.0
        self.runs: dict[int, list[_Run]] = {i: [] for i in range(1, L + 1)}
        self.pinned: set[int] = set()

    def _fail(self, n: int, op: Op, why: str) -> None:
        raise ScheduleError(f"operation {n} ({op}): {why}")

    def _source(self, n: int, op: Op) -> str:
        j = op.stage - 1
        if j in self.tapes:
            return "tape"
        if j in self.acts:
            return "act"
        self._fail(n, op, f"a_{j} is not in memory")
        return ""

    def step(self, n: int, op: Op) -> None:
        c, i = self.c, op.stage
        if not 1 <= i <= c.length:
            self._fail(n, op, f"no stage {i}")
        if op.kind is OpKind.B:
            self._backward(n, op)
            return
        if i > self.grad:
            self._fail(n, op, f"stage {i} is already back-propagated")
        src = self._source(n, op)
        # A sweep starts at a value stored before it: a pinned A, or a tape of an earlier phase.
        stored = self.tape_phase.get(i - 1) != self.grad if src == "tape" else self.acts[i - 1]
        origin = i - 1 if stored else self.origin[i - 1]
        if op.kind is OpKind.FALL:
            if i in self.tapes:
                self._fail(n, op, f"T_{i} is already in memory")
            self.peak = max(self.peak, self.mem + c.xbar[i - 1] + c.ftmp[i - 1])
            self.tapes.add(i)
            self.tape_phase[i] = self.grad
            self.mem += c.xbar[i - 1]
        else:
            if i in self.acts or i in self.tapes:
                self._fail(n, op, f"a_{i} is already in memory")
            self.peak = max(self.peak, self.mem + c.x[i] + c.ftmp[i - 1])
            self.acts[i] = False
            self.mem += c.x[i]
        self.origin[i] = origin
        if src == "act":
            if op.kind is OpKind.F:
                if self.acts[i - 1]:
                    self._fail(n, op, f"F would free the checkpoint a_{i-1} (schedules are persistent; use Fck)")
                del self.acts[i - 1]
                self.mem -= c.x[i - 1]
            elif not self.acts[i - 1]:
                self.acts[i - 1] = True
                self.pinned.add(i - 1)
        self.cost += c.f[i - 1]
        self.runs[i].append(_Run(op.kind, self.grad, origin))

    def _backward(self, n: int, op: Op) -> None:
        c, i = self.c, op.stage
        if i != self.grad:
            self._fail(n, op, f"the current gradient is δ_{self.grad}; backward runs B_L, ..., B_1 in order")
        if i not in self.tapes:
            self._fail(n, op, f"T_{i} is not in memory")
        self._source(n, op)
        self.peak = max(self.peak, self.mem + c.g[i - 1] + c.btmp[i - 1])
        self.tapes.discard(i)
        self.mem += c.g[i - 1] - c.g[i] - c.xbar[i - 1]
        for j in [j for j in self.acts if j >= i - 1]:
            self.mem -= c.x[j]
            del self.acts[j]
        self.grad = i - 1
        self.cost += c.b[i - 1]

    def run(self, schedule: Sequence[Op]) -> _Machine:
        for n, op in enumerate(schedule):
            self.step(n, op)
        if self.grad != 0:
            raise ScheduleError(f"the schedule ends before B_1 (current gradient δ_{self.grad})")
        return self

    def result(self) -> SimResult:
        base = sum(self.c.f) + sum(self.c.b)
        return SimResult(self.peak, self.cost, self.cost - base)


def simulate(chain: Chain, schedule: Sequence[Op]) -> SimResult:
    """Run `schedule` on the model; return (peak bytes, cost, recomputed cost) or raise ScheduleError."""
    return _Machine(chain).run(schedule).result()


# ---------------------------------------------------------------------------------------------
# Baselines


def keep_all(chain: Chain) -> Schedule:
    """Record every tape in one forward, then back-propagate: no recompute, the most memory."""
    L = chain.length
    return Schedule([Op(OpKind.FALL, i) for i in range(1, L + 1)] + [Op(OpKind.B, i) for i in range(L, 0, -1)])


def recompute_all(chain: Chain) -> Schedule:
    """Keep only the input: before each B_k sweep from a_0 to a_{k-1}, record T_k.

    Recomputed cost: Σ_i f_i (L - i) (stage i reruns once for each later backward)."""
    L = chain.length
    ops = Schedule()
    for k in range(L, 0, -1):
        if k > 1:
            ops.append(Op(OpKind.FCK, 1))
            ops.extend(Op(OpKind.F, i) for i in range(2, k))
        ops += [Op(OpKind.FALL, k), Op(OpKind.B, k)]
    return ops


def sqrt_schedule(chain: Chain, segments: int | None = None) -> Schedule:
    """Chen et al. 2016: keep the segment boundaries, recompute each segment once (tapes on).

    `segments` defaults to round(sqrt(L)); segment lengths differ by at most one. The last
    segment is taped during the first forward, so the recomputed cost is the sum of f over all
    other segments (one extra forward pass, less the last segment)."""
    L = chain.length
    n = max(1, min(L, segments if segments is not None else round(math.sqrt(L))))
    bounds = [round(k * L / n) for k in range(n + 1)]  # segment k is stages bounds[k]+1..bounds[k+1]
    ops = Schedule()
    for k in range(n - 1):  # first forward: sweep, keeping each segment's input
        lo, hi = bounds[k] + 1, bounds[k + 1]
        ops.append(Op(OpKind.FCK, lo))
        ops.extend(Op(OpKind.F, i) for i in range(lo + 1, hi + 1))
    for k in range(n - 1, -1, -1):  # (re)compute segment k with tapes, then its backward
        lo, hi = bounds[k] + 1, bounds[k + 1]
        ops.extend(Op(OpKind.FALL, i) for i in range(lo, hi + 1))
        ops.extend(Op(OpKind.B, i) for i in range(hi, lo - 1, -1))
    return ops


# ---------------------------------------------------------------------------------------------
# Least memory (exact, real-valued): lo(s, t) and hi(s, t)


def _requirements(a: _Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def _bounds(a: _Arrays) -> tuple[np.ndarray, np.ndarray]:
    """lo[s, t]: least memory of any schedule of C(s, t, ·); hi[s, t]: peak of the all-tape one.

    lo(s, s) = hi(s, s) = leaf(s);
    hi(s, t) = max(tape(s, t), x̄_s + hi(s+1, t));
    lo(s, t) = min( max(tape(s, t), x̄_s + lo(s+1, t)),
                    min_j max(g_t + sweep(s, j), x_{j-1} + lo(j, t), lo(s, j-1)) ).
    Computed by diagonals d = t - s, vectorised over s and j."""
    L = a.L
    leaf, breq, sw = _requirements(a)
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
    lo, _ = _bounds(_arrays(chain))
    return chain.x[0] + float(lo[1, chain.length])


def keep_all_peak(chain: Chain) -> float:
    """Peak of `keep_all`: x_0 + hi(1, L); at this budget nothing needs recomputing."""
    _, hi = _bounds(_arrays(chain))
    return chain.x[0] + float(hi[1, chain.length])


def min_memory_schedule(chain: Chain) -> Schedule:
    """A schedule whose peak is exactly `min_feasible_budget` (the lo recurrence traced back)."""
    a = _arrays(chain)
    lo, _ = _bounds(a)
    _, breq, sw = _requirements(a)
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
            stack += [(s, jj - 1), (jj, t)] + _sweep(s, jj)[::-1]
    return ops


def _sweep(s: int, j: int) -> list[Op]:
    """Fck s, F s+1, ..., F j-1: from the kept a_{s-1} to a transient a_{j-1}."""
    return [Op(OpKind.FCK, s)] + [Op(OpKind.F, k) for k in range(s + 1, j)]


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
/* The chain DP's table (mlc/checkpointing/chain.py, ChainTable): C(s, t, m) for t ascending and
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
        self.a = _arrays(chain, {k: v.astype(float) for k, v in disc.sizes.items()})
        self.M = disc.M
        lo, hi = _bounds(self.a)
        self.lo = [[int(v) if math.isfinite(v) else 0 for v in row] for row in lo]
        self.hi = [[int(v) if math.isfinite(v) else 0 for v in row] for row in hi]
        self.leaf, self.breq, self.sw = _requirements(self.a)
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
                    stack += [(s, j - 1, mm), (j, e, mm - int(self.a.x[j - 1]))] + _sweep(s, j)[::-1]
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
    lo, hi = _bounds(_arrays(chain))
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


# ---------------------------------------------------------------------------------------------
# Revolve


def revolve_forward_count(steps: int, snaps: int) -> int:
    """Griewank-Walther: least number of forward steps to reverse `steps` steps with `snaps` snapshots.

    t(l, s) = r·l - β(s+1, r-1), β(s, r) = C(s+r, s), r the least with β(s, r) >= l
    (`β(s+1, r-1) = β(s, r)·r/(s+1)`, so one loop finds both)."""
    if steps < 1 or snaps < 1:
        raise ValueError("steps >= 1 and snaps >= 1")
    reps, beta = 0, 1
    while beta < steps:
        reps += 1
        beta = beta * (reps + snaps) // reps
    return reps * steps - beta * reps // (snaps + 1)


def revolve_extra_forwards(max_steps: int, max_snaps: int) -> np.ndarray:
    """E[l, s] = extra forwards (cost - l) of the DP optimum on the homogeneous chain of length l
    with s snapshot slots, for 1 <= l <= max_steps, 1 <= s <= max_snaps, from ONE table.

    The chain is `homogeneous_chain(max_steps, tape=K)` with K = max_snaps + 1 (so a kept tape
    never fits and the model is Revolve's, see the module docstring); s snapshots mean the budget
    x_0 + K + s, i.e. m = K + s slots, and the prefix problems C(1, l, K + s) give every l."""
    K = max_snaps + 1
    chain = homogeneous_chain(max_steps, tape=K)
    table = solve_table(chain, chain.x[0] + K + max_snaps, slots=None)
    assert table is not None and table.disc.exact and table.disc.unit == 1
    E = np.full((max_steps + 1, max_snaps + 1), -1, dtype=np.int64)
    for l in range(1, max_steps + 1):
        for s in range(1, max_snaps + 1):
            E[l, s] = round(table.cost(1, l, K + s)) - l
    return E


# ---------------------------------------------------------------------------------------------
# An independent exact solver: a phase-indexed MILP (Checkmate-style), HiGHS via SciPy


class _MilpBuilder:
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
    m = _MilpBuilder()
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


# ---------------------------------------------------------------------------------------------
# Explanations


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:g} B"


def format_macs(n: float) -> str:
    for unit, scale in (("Gmac", 1e9), ("Mmac", 1e6), ("kmac", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:g} mac"


def _value(j: int) -> str:
    return "the input a0" if j == 0 else f"a{j}"


def explain(chain: Chain, schedule: Sequence[Op], budget: float | None = None, *, reason: str | None = None) -> list[str]:
    """One line per stage saying what the schedule keeps and what it recomputes, and why.

    "kept (tape ...)": T_i recorded in the first forward and held until B_i (no recompute);
    "kept (checkpoint a_i ...)": a_i held as a restart point for later sweeps;
    "recomputed nx from a_j": the stage re-ran n times in sweeps that started at the stored a_j,
    and its tape was recorded only just before B_i. The reason compares the budget with the
    keep-all peak (what no recompute at all needs), unless the caller gives its own `reason`."""
    machine = _Machine(chain).run(schedule)
    full = keep_all_peak(chain)
    if reason is not None:
        why = reason
    elif budget is None:
        why = f"by this schedule (peak {format_bytes(machine.peak)}, keep-all peak {format_bytes(full)})"
    elif budget < full:
        why = f"because budget {format_bytes(budget)} < keep-all peak {format_bytes(full)}"
    else:
        why = f"although budget {format_bytes(budget)} >= keep-all peak {format_bytes(full)}"
    lines = []
    for i in range(1, chain.length + 1):
        runs = machine.runs[i]
        parts = []
        if len(runs) == 1 and runs[0].kind is OpKind.FALL:
            parts.append(f"kept (tape T{i}, {format_bytes(chain.xbar[i-1])}, first forward to B{i})")
        if i in machine.pinned:
            parts.append(f"kept (checkpoint {_value(i)}, {format_bytes(chain.x[i])})")
        again = runs[1:]
        if again:
            origins = ", ".join(_value(o) for o in sorted({r.origin for r in again}))
            parts.append(f"recomputed {len(again)}x from {origins} (cost {format_macs(len(again) * chain.f[i - 1])}) "
                         f"{why}; tape {format_bytes(chain.xbar[i-1])} recorded just before B{i}")
        lines.append(f"{chain.stage_name(i)}: " + "; ".join(parts))
    return lines
