"""Step 1 of the solver (see the package docstring): a quasi-affine write map `W(v) = u` as linear
equations, with a quotient and a remainder for each `floordiv`/`mod` that needs them."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)

from mlc.loops.index_solve.forms import Kind, Linear, Var


class NotInvertible(Exception):
    """The write map is outside what the solver handles (the message says why)."""


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
