"""The index maps of the gathers: forms and quotients over a gather's box as affine expressions,
and a scatter's maps composed with the iteration values of a piece (`compose`)."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineConstantExpr, AffineDimExpr, AffineExpr

from mlc.loops.index_solve.forms import Linear, Var
from mlc.loops.index_solve.pieces import Quasi


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
