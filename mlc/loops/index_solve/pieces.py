"""What the solver returns: the gathers of a scatter (`Piece`, one per phase), the scatter's iteration
values as functions of a gather's box (`Quasi`), and the conditions that predicate them."""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlc.loops.affine import Interval
from mlc.loops.index_solve.forms import Linear, Var


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
