"""The unknowns of index equations (`Var`: iteration variables, auxiliaries, result indices and the
solution's own variables, each with its range) and integer affine forms over them (`Linear`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from mlc.loops.affine import Interval


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
