"""Steps 4 and 5 of the solver and its entry `solve` (see the package docstring): the phases of the
result that strides ask for, the taps a congruence leaves in a phase, and the range predicates."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import product

from xdsl.ir.affine import AffineMap

from mlc.loops.index_solve.elimination import Elimination, Pivot, eliminate, pinned_equation
from mlc.loops.index_solve.forms import Kind, Linear, Var
from mlc.loops.index_solve.linearise import LinearSystem
from mlc.loops.index_solve.pieces import Condition, Divisible, Equal, InRange, Piece, Quasi, Solution


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
    pinned = _pinned(elim, system.results) if elim.free else {}
    if pinned is None:
        return Solution((1,) * len(system.results), [], False)
    moduli = tuple(u.extent if r in pinned else m for r, (u, m) in enumerate(zip(system.results, moduli)))
    skip = {system.iters[j] for j in unchecked}
    pieces = []
    for phase in product(*((pinned[r],) if r in pinned else range(m) for r, m in enumerate(moduli))):
        piece = _piece(system, elim, moduli, phase, guard, skip)
        if piece is not None:
            pieces.append(piece)
    return Solution(moduli, pieces, guard and bool(congruences))


def _pinned(elim: Elimination, results: Sequence[Var]) -> dict[int, int] | None:
    """The result dims a condition pins to one value, `c u_r + k = 0` (a weight gradient read at a
    constant tap), by position; None when that value is not an index of the result.

    A pinned dim becomes a phase of modulus `U_r` with one piece, of extent 1 along it, that
    the interleave places at its value and reads as 0 elsewhere: the piece's reduction runs only
    for the pinned slice instead of for every element with a predicate that discards all but
    it. Only when the solution has free variables (a reduction); without one the predicate
    costs no more than the interleave."""
    pinned: dict[int, int] = {}
    for row in elim.conditions:
        if len(row.coeffs) != 1:
            continue
        ((u, c),) = row.coeffs.items()
        if u not in results or u.extent == 1:
            continue
        if row.const % c or not u.lo <= -row.const // c <= u.hi:
            return None
        pinned[results.index(u)] = -row.const // c
    return pinned


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
        table[u] = Linear.of(q, m) + p if count > 1 else Linear.constant(p)  # q = 0: u_r is the phase
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
