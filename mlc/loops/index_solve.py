"""Solving index equations: which iteration points of a scatter write a given result element.

The problem
-----------
A scatter `out = 0; for v in box: if W(v) in bounds: out[W(v)] += body(v)`, with a quasi-affine
write map `W: Z^n -> Z^R` and box `v_j in [0, E_j)`, computes for each result index `u`

    out[u] = Σ_{v ∈ S(u)} body(v),        S(u) = { v ∈ box : W(v) = u }.

The gather form needs `S(u)` parametrised: `v = V(u, f)` for `f` in a box `F` (the gather's
reduction variables) and a predicate `C(u, f)`, such that `f -> V(u, f)` is a bijection from
`{f ∈ F : C(u, f)}` onto `S(u)`. Then `out[u] = Σ_{f ∈ F} select(C(u, f), body(V(u, f)), 0)`,
a loop in which each `u` is written by one iteration of the parallel loops. The steps:

1. Linearisation. Each `e floordiv c` and `e mod c` (constant `c > 0`) gets two auxiliary
   integers `q = e floordiv c`, `t = e mod c`, tied by `e = c*q + t, 0 <= t < c`. First
   `e = c*L + e'` is split (`L` takes the multiples of `c`), so that only `e'` needs them, and
   none when `e'` provably stays in one block of `c` values. `e ceildiv c = -((-e) floordiv c)`.
   `W(v) = u` becomes a linear system `A x + B u + k = 0` over `x = (v, q's, t's)`. Ranges:
   `v_j ∈ [0, E_j)` and `t ∈ [0, c)` are constraints; a quotient is determined by the others and
   may be any integer (its interval bounds only size a loop when it is left free).

2. Elimination (fraction-free Gauss-Jordan). Repeatedly choose, over the pending equations, the
   unknown of LARGEST extent as pivot (ties: a coefficient ±1, then the earlier variable), so the
   unknowns left free -- the gather's reduction variables -- have small extents: for a conv input
   gradient `s*o + d*a - p = u` this solves for the output position `o` and keeps the tap `a`.
   A second rule weights a stride pivot's extent by how much its congruence thins the others
   (`_choose_pivot`; with `O = K` and stride 2 solving for `o` halves the taps per element, while
   the plain rule solves for the unit-coefficient `a`); `solve` runs both and keeps the solution
   that iterates fewer points (the weighted rule alone makes poor choices on reshape maps, whose
   quotients have large coefficients but are pinned anyway).
   The pivot row `a*x + L = 0` eliminates `x` from every other row `E'` (coefficient `b`) by
   `E' <- (a/g) E' - (b/g) E`, `g = gcd(a, b)`: since `a != 0` the system keeps exactly its
   integer solutions. Rows are divided by their content; a row whose content does not divide its
   constant has no solution at all. At the end every pivot satisfies `a_p x_p = N_p(u, f)` with
   `N_p` affine in `u` and the free unknowns `f`. Rows left without unknowns are conditions on
   `u` alone: the diagonal `x[i, i]` gives `u0 - u1 = 0`, a constant index `x[0]` gives `u0 = 0`.

3. Tightening. A bounded pivot needs `a lo <= N <= a hi`. Write `N = g*M + h`, `g` the gcd of
   the free coefficients, `M` the free terms and the `u` terms divisible by `g`, `h` the rest
   with bounds `[h-, h+]`; then `M ∈ [ceil((a lo - h+)/g), floor((a hi - h-)/g)]`. When that is
   one value `M0`, `M = M0` is an equation (a consequence of the ranges) and elimination runs
   again with it. Delinearising maps need this: for `x[d floordiv 20, (d floordiv 5) mod 4,
   d mod 5]` the equations leave one quotient free, and the remainder range `0 <= t < 20` pins it
   to `u0`, so the gather has no reduction at all instead of a mostly-predicated one.

4. Strides: phase decomposition. `|a_p| > 1` needs `N_p ≡ 0 (mod |a_p|)`. If every such
   congruence has at most one free unknown `f`, `N = Σ b_r u_r + c f + c0`, split the result by
   phase: with `M_r` the lcm of the moduli of the congruences where `b_r` is not a multiple of
   the modulus, `u_r = M_r q_r + p_r` with `p_r ∈ [0, M_r)`. Within a phase `b_r M_r q_r ≡ 0`, so
   the congruence reads `c f ≡ -(Σ b_r p_r + c0) (mod s)`. With `g = gcd(c, s)` it has no
   solution unless `g` divides the right side, and otherwise `f ≡ f0 (mod s/g)`: the valid values
   are `f = f1 + (s/g) k` for `k ∈ [0, n_p)`, `f1` the first one in range and
   `n_p = (hi_f - f1) div (s/g) + 1` -- exactly the valid taps, a count that depends on the phase
   only. After the substitution `N_p` is divisible by `a_p` identically in `(q, k)`, so `x_p` is an
   integer affine form: one dense gather per phase over the sub-lattice (extent
   `ceil((U_r - p_r) / M_r)`), none of whose iterations is predicated off by the stride. A
   congruence with two free unknowns, or more phases than a limit, is kept as the predicate
   `N mod s == 0` with `x_p = N floordiv a_p` instead (still a gather, not work-minimal).

5. Ranges. A bounded pivot (iteration variable, remainder) must still lie in its range: a
   predicate unless interval bounds over the gather's box prove it, or the caller knows that an
   out-of-range point contributes exactly 0 (`unchecked`). Quotients need none. A free unknown
   ranges over its own box (a quotient over its interval bounds, shifted to start at 0; one of
   extent 1 is a constant). Reduction order: the free unknowns the solution involves (a conv's
   taps) outside, the others (an output channel, a batch) inside, as in the forward's loop nest.

Why this is exact: every `v ∈ S(u)` extends to exactly one integer solution `x` (the auxiliaries
are functions of `v`), elimination and phase splitting keep the integer solutions, and a solution
is determined by `(u, f)`; so each point of `S(u)` is met once, and every other point of the
gather's box either fails a predicate or (for `unchecked` variables) contributes 0.

Maps that are not quasi-affine (a product of two variables, a division by a non-constant or by a
non-positive constant) raise `NotInvertible`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import product

from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)

from mlc.loops.affine import Interval


class NotInvertible(Exception):
    """The write map is outside what the solver handles (the message says why)."""


# ---------------------------------------------------------------------------------------------
# Variables and integer affine forms
# ---------------------------------------------------------------------------------------------
class Kind(Enum):
    ITER = "iteration variable"  # v_j ∈ [0, E_j): a constraint
    REM = "remainder"  # t ∈ [0, c): a constraint
    QUOT = "quotient"  # any integer; bounds only size a loop
    RESULT = "result index"  # u_r ∈ [0, U_r)
    LATTICE = "phase lattice index"  # q_r with u_r = M_r q_r + p_r
    TAP = "tap"  # k with f = f1 + m k
    SHIFTED = "shifted free variable"  # r with f = lo + r


class Var:
    """An integer unknown with an inclusive range. Compared by identity."""

    __slots__ = ("hi", "kind", "lo", "name", "order")
    _count = 0

    def __init__(self, name: str, kind: Kind, lo: int, hi: int) -> None:
        self.name, self.kind, self.lo, self.hi = name, kind, lo, hi
        Var._count += 1
        self.order = Var._count

    @property
    def extent(self) -> int:
        return self.hi - self.lo + 1

    @property
    def bounded(self) -> bool:
        """Whether the range is a constraint of the problem (not just a loop size)."""
        return self.kind in (Kind.ITER, Kind.REM)

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Linear:
    """`Σ coeffs[x] * x + const` with integer coefficients (no zero coefficients stored)."""

    coeffs: Mapping[Var, int] = field(default_factory=dict)
    const: int = 0

    @staticmethod
    def of(var: Var, coeff: int = 1) -> Linear:
        return Linear({var: coeff} if coeff else {}, 0)

    @staticmethod
    def constant(value: int) -> Linear:
        return Linear({}, value)

    @property
    def is_constant(self) -> bool:
        return not self.coeffs

    def vars(self) -> list[Var]:
        return sorted(self.coeffs, key=lambda v: v.order)

    def coeff(self, var: Var) -> int:
        return self.coeffs.get(var, 0)

    def __add__(self, other: Linear | int) -> Linear:
        if isinstance(other, int):
            return Linear(self.coeffs, self.const + other)
        coeffs = dict(self.coeffs)
        for v, c in other.coeffs.items():
            total = coeffs.get(v, 0) + c
            if total:
                coeffs[v] = total
            else:
                coeffs.pop(v, None)
        return Linear(coeffs, self.const + other.const)

    def __neg__(self) -> Linear:
        return self * -1

    def __sub__(self, other: Linear | int) -> Linear:
        return self + (-other)

    def __mul__(self, k: int) -> Linear:
        if k == 0:
            return Linear()
        return Linear({v: c * k for v, c in self.coeffs.items()}, self.const * k)

    __rmul__ = __mul__

    def exact_div(self, k: int) -> Linear:
        assert self.content() % k == 0, f"{self} is not divisible by {k}"
        return Linear({v: c // k for v, c in self.coeffs.items()}, self.const // k)

    def content(self) -> int:
        """gcd of the coefficients and the constant (0 for the zero form)."""
        return math.gcd(*self.coeffs.values(), self.const)

    def substitute(self, table: Mapping[Var, Linear]) -> Linear:
        out = Linear.constant(self.const)
        for v, c in self.coeffs.items():
            out = out + (table[v] * c if v in table else Linear.of(v, c))
        return out

    def bounds(self) -> Interval:
        lo = hi = self.const
        for v, c in self.coeffs.items():
            lo += c * (v.lo if c > 0 else v.hi)
            hi += c * (v.hi if c > 0 else v.lo)
        return lo, hi

    def split(self, c: int) -> tuple[Linear, Linear]:
        """`self = c*L + r` with every coefficient and the constant of `r` in `[0, c)`."""
        high = Linear({v: a // c for v, a in self.coeffs.items() if a // c}, self.const // c)
        low = Linear({v: a % c for v, a in self.coeffs.items() if a % c}, self.const % c)
        return high, low

    def key(self) -> tuple:
        return (tuple(sorted((v.order, c) for v, c in self.coeffs.items())), self.const)

    def __repr__(self) -> str:
        terms = [f"{c}*{v}" for v, c in sorted(self.coeffs.items(), key=lambda t: t[0].order)]
        return " + ".join([*terms, str(self.const)])


# ---------------------------------------------------------------------------------------------
# Step 1: linearisation
# ---------------------------------------------------------------------------------------------
class LinearSystem:
    """The write map `W(v) = u` as linear equations over iteration and auxiliary variables."""

    def __init__(self, extents: Sequence[int], shape: Sequence[int]) -> None:
        self.iters = [Var(f"v{j}", Kind.ITER, 0, e - 1) for j, e in enumerate(extents)]
        self.results = [Var(f"u{r}", Kind.RESULT, 0, n - 1) for r, n in enumerate(shape)]
        self.aux: list[Var] = []
        self.equations: list[Linear] = []
        self._divisions: dict[tuple, tuple[Var, Var]] = {}

    @staticmethod
    def of_map(write: AffineMap, extents: Sequence[int], shape: Sequence[int]) -> LinearSystem:
        system = LinearSystem(extents, shape)
        if write.num_symbols:
            raise NotInvertible("the write map has symbols")
        for expr, u in zip(write.results, system.results, strict=True):
            system.equations.append(system.linearise(expr) - Linear.of(u))
        return system

    @property
    def unknowns(self) -> list[Var]:
        return [*self.iters, *self.aux]

    def linearise(self, expr: AffineExpr) -> Linear:
        if isinstance(expr, AffineDimExpr):
            return Linear.of(self.iters[expr.position])
        if isinstance(expr, AffineConstantExpr):
            return Linear.constant(expr.value)
        if not isinstance(expr, AffineBinaryOpExpr):
            raise NotInvertible(f"'{expr}' is not an affine expression of the iteration variables")
        lhs, rhs = self.linearise(expr.lhs), self.linearise(expr.rhs)
        if expr.kind == AffineBinaryOpKind.Add:
            return lhs + rhs
        if expr.kind == AffineBinaryOpKind.Mul:
            if rhs.is_constant:
                return lhs * rhs.const
            if lhs.is_constant:
                return rhs * lhs.const
            raise NotInvertible(f"'{expr}' multiplies iteration variables")
        if not rhs.is_constant or rhs.const <= 0:
            raise NotInvertible(f"'{expr}' divides by something other than a positive constant")
        c = rhs.const
        if expr.kind == AffineBinaryOpKind.FloorDiv:
            return self.divide(lhs, c)[0]
        if expr.kind == AffineBinaryOpKind.CeilDiv:
            return -self.divide(-lhs, c)[0]
        assert expr.kind == AffineBinaryOpKind.Mod
        return self.divide(lhs, c)[1]

    def divide(self, e: Linear, c: int) -> tuple[Linear, Linear]:
        """`(e floordiv c, e mod c)` as linear forms, adding `e' = c*q + t` when needed."""
        high, low = e.split(c)
        lo, hi = low.bounds()
        if lo // c == hi // c:  # e' stays in one block of c values: no auxiliary needed
            return high + lo // c, low - c * (lo // c)
        key = (low.key(), c)
        if key not in self._divisions:
            n = len(self._divisions)
            q = Var(f"q{n}", Kind.QUOT, lo // c, hi // c)
            t = Var(f"t{n}", Kind.REM, 0, c - 1)
            self.aux += [q, t]
            self.equations.append(low - Linear.of(q, c) - Linear.of(t))
            self._divisions[key] = (q, t)
        q, t = self._divisions[key]
        return high + Linear.of(q), Linear.of(t)


# ---------------------------------------------------------------------------------------------
# Step 2: elimination
# ---------------------------------------------------------------------------------------------
@dataclass
class Pivot:
    """`coeff * var = numerator` with `coeff > 0`; `numerator` is over result and free variables."""

    var: Var
    coeff: int
    numerator: Linear


@dataclass
class Elimination:
    pivots: list[Pivot]
    free: list[Var]
    conditions: list[Linear]  # each `== 0`, over result variables only
    infeasible: bool = False


def _normalise(row: Linear) -> Linear | None:
    """Divide by the content; None when the row has no integer solution."""
    g = math.gcd(*row.coeffs.values())
    if g == 0:
        return row
    if row.const % g:
        return None
    return row.exact_div(g) if g > 1 else row


def eliminate(equations: Sequence[Linear], unknowns: Sequence[Var], weighted: bool = False) -> Elimination:
    """Fraction-free Gauss-Jordan elimination with the largest-extent pivot rule (step 2),
    extents weighted by a stride pivot's thinning when `weighted`."""
    candidates = set(unknowns)
    pending: list[Linear] = []
    for row in equations:
        normal = _normalise(row)
        if normal is None:
            return Elimination([], [], [], infeasible=True)
        pending.append(normal)
    done: list[tuple[Var, Linear]] = []
    while (choice := _choose_pivot(pending, candidates, weighted)) is not None:
        i, var = choice
        pivot_row = pending.pop(i)
        candidates.discard(var)
        reduced_done = [_reduce(row, pivot_row, var) for _, row in done]
        reduced_pending = [_reduce(row, pivot_row, var) for row in pending]
        if any(r is None for r in (*reduced_done, *reduced_pending)):
            return Elimination([], [], [], infeasible=True)
        done = [(v, r) for (v, _), r in zip(done, reduced_done)] + [(var, pivot_row)]  # pyright: ignore[reportAssignmentType]
        pending = reduced_pending  # pyright: ignore[reportAssignmentType]
    conditions = []
    for row in pending:
        if row.is_constant:
            if row.const:
                return Elimination([], [], [], infeasible=True)
            continue
        conditions.append(row)
    pivots = []
    for var, row in done:
        a = row.coeff(var)
        rest = row - Linear.of(var, a)
        if a < 0:
            a, rest = -a, -rest
        pivots.append(Pivot(var, a, -rest))
    free = [v for v in unknowns if v in candidates]
    return Elimination(pivots, free, conditions)


def _choose_pivot(rows: Sequence[Linear], candidates: set[Var], weighted: bool) -> tuple[int, Var] | None:
    """The unknown of largest extent over all rows; ties: coefficient ±1, then the earlier one.

    Weighted, the extent of `x` in `c x + Σ c_i y_i = ...` counts `|c|/g` times
    (`g = gcd(c, c_i...)`): solving for `x` leaves the `y`s bound by `Σ c_i y_i ≡ ... (mod c)`,
    which only a fraction `g/|c|` of their values meet, and phase decomposition iterates only
    those; for a conv `s*o + d*a = u + p` with `O = K` it solves for `o` (K/s taps per element)
    where the plain rule, preferring the unit coefficient, solves for `a` (O positions)."""
    best = None
    for i, row in enumerate(rows):
        unknowns = [v for v in row.vars() if v in candidates]
        for v in unknowns:
            c = abs(row.coeff(v))
            g = math.gcd(c, *(row.coeff(w) for w in unknowns if w is not v)) if weighted else c
            key = (v.extent * c // g, c == 1, -v.order)
            if best is None or key > best[0]:
                best = (key, i, v)
    return None if best is None else (best[1], best[2])


def _reduce(row: Linear, pivot_row: Linear, var: Var) -> Linear | None:
    """`row` without `var`: `(a/g) row - (b/g) pivot_row`, normalised (None: no solution)."""
    a, b = pivot_row.coeff(var), row.coeff(var)
    if b:
        g = math.gcd(a, b)
        row = row * (a // g) - pivot_row * (b // g)
    return _normalise(row)


# ---------------------------------------------------------------------------------------------
# Step 3: tightening
# ---------------------------------------------------------------------------------------------
def pinned_equation(pivot: Pivot, free: Iterable[Var]) -> Linear | None:
    """An equation that the pivot's range forces on the free variables, if one (step 3);
    the impossible `1 = 0` when the range can never be met."""
    var, a, n = pivot.var, pivot.coeff, pivot.numerator
    free_set = set(free)
    free_coeffs = [c for v, c in n.coeffs.items() if v in free_set]
    if not free_coeffs:
        return None
    g = math.gcd(*free_coeffs)
    m_part = Linear({v: c for v, c in n.coeffs.items() if v in free_set or c % g == 0}, n.const // g * g)
    h = n - m_part
    h_lo, h_hi = h.bounds()
    lo = -((h_hi - a * var.lo) // g)  # ceil((a lo - h+) / g)
    hi = (a * var.hi - h_lo) // g
    if lo > hi:
        return Linear.constant(1)
    if lo < hi:
        return None
    return m_part.exact_div(g) - lo


# ---------------------------------------------------------------------------------------------
# Steps 4 and 5: the gather pieces
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quasi:
    """`numerator floordiv divisor` (`divisor == 1`: just the affine form)."""

    numerator: Linear
    divisor: int = 1

    def bounds(self) -> Interval:
        lo, hi = self.numerator.bounds()
        return lo // self.divisor, hi // self.divisor


@dataclass(frozen=True)
class Equal:
    """`form == 0`."""

    form: Linear


@dataclass(frozen=True)
class InRange:
    """`lo <= value <= hi`; a side that is None needs no check."""

    value: Quasi
    lo: int | None
    hi: int | None
    var: Var


@dataclass(frozen=True)
class Divisible:
    """`form mod modulus == 0`."""

    form: Linear
    modulus: int


Condition = Equal | InRange | Divisible


@dataclass
class Piece:
    """One gather (compute op): the iteration values of the scatter as functions of its box.

    `dims` are the gather's iteration variables: its result dims (a result index `u_r`, or the
    lattice index `q_r` of a phase), then its reduction variables (all starting at 0).
    """

    phase: tuple[int, ...]
    dims: list[Var]
    rank: int
    iteration: list[Quasi]  # one per scatter iteration variable
    conditions: list[Condition]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(v.extent for v in self.dims[: self.rank])

    @property
    def extents(self) -> tuple[int, ...]:
        return tuple(v.extent for v in self.dims[self.rank:])


@dataclass
class Solution:
    """The gathers of a scatter: the phase pieces (phases without any writer are absent) over the
    moduli `M_r` (all 1: a single piece, whose result is the scatter's)."""

    moduli: tuple[int, ...]
    pieces: list[Piece]
    divisibility_guard: bool  # some congruence is a predicate, not split by phase

    @property
    def cost(self) -> tuple[int, bool, int]:
        """(iteration points of all pieces, whether a divisibility guard is used, conditions)."""
        points = sum(math.prod(p.shape) * math.prod(p.extents) for p in self.pieces)
        return points, self.divisibility_guard, sum(len(p.conditions) for p in self.pieces)


def solve(
    write: AffineMap,
    extents: Sequence[int],
    shape: Sequence[int],
    unchecked: Iterable[int] = (),
    phase_limit: int = 64,
) -> Solution:
    """Parametrise the pre-images of a scatter's write map (steps 1-5 of the module docstring).

    `unchecked`: iteration variables whose range needs no predicate (an out-of-range point
    contributes exactly 0). `phase_limit`: the most phase pieces before congruences become
    predicates instead (1: always predicates). Both pivot rules are tried (plain and weighted
    largest extent, see `_choose_pivot`); the solution iterating fewer points wins, the plain
    one on a tie."""
    system = LinearSystem.of_map(write, extents, shape)
    solutions = [_solve(system, weighted, set(unchecked), phase_limit) for weighted in (False, True)]
    return min(solutions, key=lambda s: s.cost)


def _solve(system: LinearSystem, weighted: bool, unchecked: set[int], phase_limit: int) -> Solution:
    elim = _eliminate_tight(system, weighted)
    if elim.infeasible:
        return Solution((1,) * len(system.results), [], False)
    congruences = [p for p in elim.pivots if p.coeff > 1]
    moduli = _moduli(congruences, elim.free, system.results)
    guard = moduli is None or math.prod(moduli) > phase_limit
    if guard:
        moduli = (1,) * len(system.results)
    assert moduli is not None
    skip = {system.iters[j] for j in unchecked}
    pieces = []
    for phase in product(*(range(m) for m in moduli)):
        piece = _piece(system, elim, moduli, phase, guard, skip)
        if piece is not None:
            pieces.append(piece)
    return Solution(moduli, pieces, guard and bool(congruences))


def _eliminate_tight(system: LinearSystem, weighted: bool) -> Elimination:
    """Eliminate, add an equation that a range pins (step 3), eliminate again, until none.

    Terminates: a pinned equation has a free variable, so each round frees one fewer."""
    equations = list(system.equations)
    while True:
        elim = eliminate(equations, system.unknowns, weighted)
        if elim.infeasible:
            return elim
        pinned = next((e for p in elim.pivots if (e := pinned_equation(p, elim.free)) is not None), None)
        if pinned is None:
            return elim
        equations.append(pinned)


def _moduli(congruences: Sequence[Pivot], free: Sequence[Var], results: Sequence[Var]) -> tuple[int, ...] | None:
    """`M_r` per result dim, or None when a congruence has two or more free variables."""
    moduli = [1] * len(results)
    free_set = set(free)
    for p in congruences:
        n, s = p.numerator, p.coeff
        if sum(1 for v, c in n.coeffs.items() if v in free_set and c % s) > 1:
            return None
        for r, u in enumerate(results):
            if n.coeff(u) % s:
                moduli[r] = math.lcm(moduli[r], s)
    return tuple(moduli)


def _piece(
    system: LinearSystem,
    elim: Elimination,
    moduli: Sequence[int],
    phase: Sequence[int],
    guard: bool,
    skip: set[Var],
) -> Piece | None:
    """The gather of one phase, or None when no point of the scatter writes there."""
    table: dict[Var, Linear] = {}
    dims: list[Var] = []
    for u, m, p in zip(system.results, moduli, phase):
        if m == 1:
            dims.append(u)
            continue
        count = -(-(u.hi + 1 - p) // m)
        if count <= 0:
            return None
        q = Var(f"q_{u.name}", Kind.LATTICE, 0, count - 1, )
        table[u] = Linear.of(q, m) + p
        dims.append(q)
    rank = len(dims)
    numerators = {p.var: p.numerator.substitute(table) for p in elim.pivots}
    free = list(elim.free)
    free_values = {f: Linear.of(f) for f in elim.free}  # original free variable -> its value

    def substitute_free(f: Var, value: Linear) -> None:
        """Replace free variable `f` by `value` (a constant, or one new variable)."""
        for table_ in (numerators, free_values):
            for var in table_:
                table_[var] = table_[var].substitute({f: value})
        i = free.index(f)
        free[i : i + 1] = list(value.coeffs)

    if not guard:
        for pivot in elim.pivots:
            if pivot.coeff == 1:
                continue
            solved = _restrict_by_congruence(numerators[pivot.var], pivot.coeff, free)
            if solved is None:
                return None
            if solved is not True:
                substitute_free(*solved)
    for f in list(free):  # reduction variables start at 0; one of extent 1 is a constant
        if f.extent == 1:
            substitute_free(f, Linear.constant(f.lo))
        elif f.lo != 0:
            substitute_free(f, Linear.of(Var(f"r_{f.name}", Kind.SHIFTED, 0, f.extent - 1)) + f.lo)
    # reduction order: the free variables the solution involves (a conv's taps) outside, the
    # others (a conv's output channel, a batch) inside, as in the forward's loop nest
    involved = {v for n in numerators.values() for v in n.coeffs}
    free.sort(key=lambda v: v not in involved)
    dims += free
    values: dict[Var, Quasi] = {f: Quasi(value) for f, value in free_values.items()}
    conditions: list[Condition] = []
    for pivot in elim.pivots:
        n, a = numerators[pivot.var], pivot.coeff
        if a == 1 or not guard:
            values[pivot.var] = Quasi(n.exact_div(a))
        else:
            values[pivot.var] = Quasi(n, a)
            conditions.append(Divisible(n, a))
    for row in elim.conditions:
        form = row.substitute(table)
        if form.is_constant:
            if form.const:
                return None
            continue
        conditions.append(Equal(form))
    for pivot in elim.pivots:
        var = pivot.var
        if not var.bounded or var in skip:
            continue
        check = _range_check(var, values[var])
        if check is not None:
            conditions.append(check)
    return Piece(tuple(phase), dims, rank, [values[v] for v in system.iters], conditions)


def _restrict_by_congruence(n: Linear, s: int, free: Sequence[Var]) -> tuple[Var, Linear] | bool | None:
    """Solve `n ≡ 0 (mod s)` for its one free variable `f` (step 4).

    Returns `(f, f1 + m*k)` with a new tap variable `k`; True when the congruence holds whatever
    the free variables; None when it never holds in this phase."""
    active = [(v, c % s) for v, c in n.coeffs.items() if c % s]
    if not active:
        return True if n.const % s == 0 else None
    assert len(active) == 1 and active[0][0] in free, f"congruence {n} ≡ 0 mod {s} is not single-variable"
    f, c = active[0]
    rhs = -n.const % s
    g = math.gcd(c, s)
    if rhs % g:
        return None
    m = s // g
    f0 = (rhs // g) * pow(c // g, -1, m) % m if m > 1 else 0
    first = f.lo + (f0 - f.lo) % m
    if first > f.hi:
        return None
    count = (f.hi - first) // m + 1
    tap = Var(f"k_{f.name}", Kind.TAP, 0, count - 1)
    return f, Linear.of(tap, m) + first


def _range_check(var: Var, value: Quasi) -> InRange | None:
    lo, hi = value.bounds()
    need_lo, need_hi = lo < var.lo, hi > var.hi
    if not (need_lo or need_hi):
        return None
    return InRange(value, var.lo if need_lo else None, var.hi if need_hi else None, var)


# ---------------------------------------------------------------------------------------------
# Index maps of the gathers
# ---------------------------------------------------------------------------------------------
def to_affine(form: Linear, dims: Sequence[Var]) -> AffineExpr:
    """`form` over `dims` (dimension `i` is `dims[i]`), positive terms first for readable output."""
    position = {v: i for i, v in enumerate(dims)}
    terms = sorted(form.coeffs.items(), key=lambda t: (t[1] < 0, position[t[0]]))
    expr: AffineExpr | None = None
    for v, c in terms:
        term = AffineExpr.dimension(position[v])
        if expr is None:
            expr = term * c if c != 1 else term
        else:
            expr = expr + (term * c if c != 1 else term)
    if expr is None:
        return AffineExpr.constant(form.const)
    return expr + form.const if form.const else expr


def quasi_to_affine(value: Quasi, dims: Sequence[Var]) -> AffineExpr:
    expr = to_affine(value.numerator, dims)
    return expr if value.divisor == 1 else expr // value.divisor


def compose(expr: AffineExpr, values: Sequence[Quasi], dims: Sequence[Var]) -> AffineExpr:
    """`expr` (over the scatter's iteration variables) with variable `j` replaced by
    `values[j]`, as an expression over `dims`. `floordiv`/`mod` of an affine form fold away when
    interval bounds show the remainder part stays in one block (`(20*a + 5*b + c) floordiv 20` is
    `a` when `5*b + c ∈ [0, 20)`)."""
    result = _compose(expr, values, dims)
    return result if isinstance(result, AffineExpr) else to_affine(result, dims)


def _plus(lhs: AffineExpr, rhs: AffineExpr) -> AffineExpr:
    """`lhs + rhs` nested to the left (`a + b + c` is `(a + b) + c`, as the parser builds it)."""
    if isinstance(rhs, AffineBinaryOpExpr) and rhs.kind == AffineBinaryOpKind.Add:
        return _plus(_plus(lhs, rhs.lhs), rhs.rhs)
    return lhs + rhs


def _compose(expr: AffineExpr, values: Sequence[Quasi], dims: Sequence[Var]) -> Linear | AffineExpr:
    def as_affine(x: Linear | AffineExpr) -> AffineExpr:
        return x if isinstance(x, AffineExpr) else to_affine(x, dims)

    if isinstance(expr, AffineDimExpr):
        value = values[expr.position]
        return value.numerator if value.divisor == 1 else quasi_to_affine(value, dims)
    if isinstance(expr, AffineConstantExpr):
        return Linear.constant(expr.value)
    assert isinstance(expr, AffineBinaryOpExpr)
    lhs = _compose(expr.lhs, values, dims)
    rhs = _compose(expr.rhs, values, dims)
    kind = expr.kind
    if kind == AffineBinaryOpKind.Add:
        if isinstance(lhs, Linear) and isinstance(rhs, Linear):
            return lhs + rhs
        return _plus(as_affine(lhs), as_affine(rhs))
    if kind == AffineBinaryOpKind.Mul and isinstance(rhs, Linear) and rhs.is_constant:
        return lhs * rhs.const
    if kind == AffineBinaryOpKind.Mul and isinstance(lhs, Linear) and lhs.is_constant:
        return rhs * lhs.const
    if isinstance(rhs, Linear) and rhs.is_constant and rhs.const > 0 and isinstance(lhs, Linear):
        c = rhs.const
        if kind == AffineBinaryOpKind.CeilDiv:
            folded = _fold_division(-lhs, c, AffineBinaryOpKind.FloorDiv, dims)
            return -folded if isinstance(folded, Linear) else folded * -1
        return _fold_division(lhs, c, kind, dims)
    return AffineBinaryOpExpr(kind, as_affine(lhs), as_affine(rhs))


def _fold_division(e: Linear, c: int, kind: AffineBinaryOpKind, dims: Sequence[Var]) -> Linear | AffineExpr:
    high, low = e.split(c)
    lo, hi = low.bounds()
    if lo // c == hi // c:
        return high + lo // c if kind == AffineBinaryOpKind.FloorDiv else low - c * (lo // c)
    if kind == AffineBinaryOpKind.FloorDiv:
        quotient = to_affine(low, dims) // c
        return quotient if high.is_constant and high.const == 0 else _plus(to_affine(high, dims), quotient)
    return to_affine(low, dims) % c
