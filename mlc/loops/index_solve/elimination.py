"""Steps 2 and 3 of the solver (see the package docstring): fraction-free Gauss-Jordan elimination
with the largest-extent pivot rules, and the equations that a pivot's range pins."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlc.loops.index_solve.forms import Linear, Var


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
