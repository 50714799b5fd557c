"""Schedules and the simulator (the ground truth): every solver's schedule is checked by running it here.

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
the heterogeneous problem is NP-hard (Rotor, TOMS 2024); with it the dynamic programme (`dp`) is
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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from .model import Chain


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


class Machine:
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

    def run(self, schedule: Sequence[Op]) -> Machine:
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
    return Machine(chain).run(schedule).result()
