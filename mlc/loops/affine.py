"""Index-map algebra shared by every level of mlc.

Index maps are xDSL `AffineMap`s over the iteration space of a compute op: dimensions
`0 .. rank-1` are the output indices, the rest are reduction variables. Maps are quasi-affine
(integer coefficients, `floordiv`/`mod` by positive constants), as in MLIR.

This module holds the small amount of algebra the passes share: interval bounds (used to prove
a read can never leave its tensor, so the loop code needs no bounds check), linear forms,
substitution, and maps built from Python callables. Maps as text are `mlc.dialects.index_maps`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache

from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
)

from mlc.dialects.index_maps import dim_names, format_expr, format_map_results  # noqa: F401  (re-exported)

Interval = tuple[int, int]
"""Inclusive integer range `(lo, hi)`."""


def expr_bounds(expr: AffineExpr, ranges: Sequence[Interval]) -> Interval:
    """Conservative inclusive bounds of `expr` when dimension `k` ranges over `ranges[k]`."""
    if isinstance(expr, AffineDimExpr):
        return ranges[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return (expr.value, expr.value)
    assert isinstance(expr, AffineBinaryOpExpr)
    lo1, hi1 = expr_bounds(expr.lhs, ranges)
    lo2, hi2 = expr_bounds(expr.rhs, ranges)
    match expr.kind:
        case AffineBinaryOpKind.Add:
            return (lo1 + lo2, hi1 + hi2)
        case AffineBinaryOpKind.Mul:
            corners = (lo1 * lo2, lo1 * hi2, hi1 * lo2, hi1 * hi2)
            return (min(corners), max(corners))
        case AffineBinaryOpKind.FloorDiv:
            assert lo2 == hi2 and lo2 > 0, "division by a positive constant"
            return (lo1 // lo2, hi1 // lo2)
        case AffineBinaryOpKind.CeilDiv:
            assert lo2 == hi2 and lo2 > 0, "division by a positive constant"
            return (-(-lo1 // lo2), -(-hi1 // lo2))
        case AffineBinaryOpKind.Mod:
            assert lo2 == hi2 and lo2 > 0, "modulo by a positive constant"
            if lo1 >= 0 and hi1 < lo2 and lo1 // lo2 == hi1 // lo2:
                return (lo1 % lo2, hi1 % lo2)
            return (0, lo2 - 1)
    raise AssertionError(expr.kind)


def read_in_bounds(amap: AffineMap, ranges: Sequence[Interval], shape: Sequence[int]) -> list[bool]:
    """For each result of `amap`, whether it provably stays inside `0 .. shape[k]-1`."""
    result: list[bool] = []
    for expr, size in zip(amap.results, shape, strict=True):
        lo, hi = expr_bounds(expr, ranges)
        result.append(lo >= 0 and hi < size)
    return result


def iteration_ranges(shape: Sequence[int], extents: Sequence[int]) -> list[Interval]:
    """The iteration ranges of a compute op: output dims, then reduction variables."""
    return [(0, n - 1) for n in (*shape, *extents)]


def dims(count: int) -> list[AffineExpr]:
    """`[d0, d1, ...]` as expressions, for building maps in Python."""
    return [AffineExpr.dimension(i) for i in range(count)]


def make_map(num_dims: int, results: Sequence[AffineExpr | int]) -> AffineMap:
    """An AffineMap over `num_dims` dimensions (no symbols)."""
    exprs = tuple(AffineExpr.constant(r) if isinstance(r, int) else r for r in results)
    return AffineMap(num_dims, 0, exprs)


def map_from(num_dims: int, fn: Callable[..., Sequence[AffineExpr | int]]) -> AffineMap:
    """Build a map from a Python function of the dimension expressions."""
    return make_map(num_dims, fn(*dims(num_dims)))


def reshape_map(src: Sequence[int], dst: Sequence[int]) -> AffineMap:
    """The map from an index of shape `dst` to the index of shape `src` holding the same element
    under a row-major reshape (same element count).

    Both shapes are cut where their prefix products agree (MLIR's reassociation groups): within
    a group the output index is linearised, `L = sum_k d_k * stride_k`, and delinearised into the
    group's source dims, `e_k = (L floordiv s_k) mod n_k`. Cutting keeps maps short (flattening
    `[N, H, W, C]` keeps `d0`); size-1 dims read index 0 and add nothing to `L`.
    """
    groups = _reshape_groups(src, dst)

    def index(*d: AffineExpr) -> list[AffineExpr | int]:
        result: list[AffineExpr | int] = []
        for src_dims, dst_dims in groups:
            linear: AffineExpr = AffineExpr.constant(0)
            for k, stride in zip(dst_dims, _row_major_strides([dst[k] for k in dst_dims])):
                if dst[k] != 1:
                    linear = linear + d[k] * stride
            size = 1
            for k in src_dims:
                size *= src[k]
            for k, stride in zip(src_dims, _row_major_strides([src[k] for k in src_dims])):
                n = src[k]
                e = linear if stride == 1 else linear // stride
                result.append(0 if n == 1 else (e if stride * n == size else e % n))
        return result

    return map_from(len(dst), index)


def _row_major_strides(shape: Sequence[int]) -> list[int]:
    strides, acc = [], 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= n
    return strides[::-1]


def _reshape_groups(src: Sequence[int], dst: Sequence[int]) -> list[tuple[range, range]]:
    """Consecutive (src dims, dst dims) groups of equal element count, cut as finely as possible."""

    def prefix(shape: Sequence[int]) -> list[int]:
        out = [1]
        for n in shape:
            out.append(out[-1] * n)
        return out

    ps, pd = prefix(src), prefix(dst)
    cuts = [(0, 0)]
    for p in range(1, len(src)):
        q = next((q for q in range(cuts[-1][1] + 1, len(dst)) if pd[q] == ps[p]), None)
        if q is not None:
            cuts.append((p, q))
    cuts.append((len(src), len(dst)))
    return [(range(p0, p1), range(q0, q1)) for (p0, q0), (p1, q1) in zip(cuts, cuts[1:])]


Linear = tuple[dict[int, int], int]
"""An affine expression as `({dim: coefficient}, constant)`."""


def linear_form(expr: AffineExpr) -> Linear | None:
    """`expr` as coefficients and a constant, or None when it has a floordiv, ceildiv or mod
    (or a product of two dimensions)."""
    if isinstance(expr, AffineDimExpr):
        return {expr.position: 1}, 0
    if isinstance(expr, AffineConstantExpr):
        return {}, expr.value
    assert isinstance(expr, AffineBinaryOpExpr)
    lhs, rhs = linear_form(expr.lhs), linear_form(expr.rhs)
    if lhs is None or rhs is None:
        return None
    if expr.kind == AffineBinaryOpKind.Add:
        coeffs = dict(lhs[0])
        for d, c in rhs[0].items():
            coeffs[d] = coeffs.get(d, 0) + c
        return {d: c for d, c in coeffs.items() if c}, lhs[1] + rhs[1]
    if expr.kind == AffineBinaryOpKind.Mul:
        if lhs[0] and rhs[0]:
            return None
        (coeffs, const), factor = (lhs, rhs[1]) if not rhs[0] else (rhs, lhs[1])
        return {d: c * factor for d, c in coeffs.items() if c * factor}, const * factor
    return None


def from_linear(form: Linear) -> AffineExpr:
    """The expression of a linear form, dimensions in increasing order, constant last."""
    coeffs, const = form
    expr: AffineExpr | None = None
    for d in sorted(coeffs):
        term = AffineExpr.dimension(d) if coeffs[d] == 1 else AffineExpr.dimension(d) * coeffs[d]
        expr = term if expr is None else expr + term
    if expr is None:
        return AffineExpr.constant(const)
    return expr + const if const else expr


def simplify(expr: AffineExpr) -> AffineExpr:
    """A linear expression in canonical form (terms of one dimension merged, zeros dropped);
    quasi-affine subexpressions are simplified inside and kept."""
    if (form := linear_form(expr)) is not None:
        return from_linear(form)
    if isinstance(expr, AffineBinaryOpExpr):
        return AffineBinaryOpExpr(expr.kind, simplify(expr.lhs), simplify(expr.rhs))
    return expr


def simplify_within(expr: AffineExpr, ranges: Sequence[Interval]) -> AffineExpr:
    """`expr` with the dimensions that stay inside one block of each `floordiv`/`mod` moved out
    of it, given the ranges of the dimensions. For L floordiv D (or L mod D), with s a divisor
    of D: split L into a coarse part S, the terms whose coefficients s divides, and a fine
    part r that the ranges keep in one block [s*m, s*m + s - 1]; then, with S' = S + s*m and
    r' = r - s*m in [0, s), L floordiv D = (S' / s) floordiv (D / s) and L mod D =
    s * ((S' / s) mod (D / s)) + r' (the largest such s). A vector of lanes inside one group of
    a grouped conv then reads one channel block: the lane leaves the division."""
    if not isinstance(expr, AffineBinaryOpExpr):
        return expr
    lhs, rhs = simplify_within(expr.lhs, ranges), simplify_within(expr.rhs, ranges)
    kind = expr.kind
    if kind in (AffineBinaryOpKind.FloorDiv, AffineBinaryOpKind.Mod) and isinstance(rhs, AffineConstantExpr) \
            and rhs.value > 0 and (form := linear_form(lhs)) is not None:
        d, (coeffs, const) = rhs.value, form
        for s in _divisors_above_one(d):
            fine = from_linear(({k: c for k, c in coeffs.items() if c % s}, const))
            lo, hi = expr_bounds(fine, ranges)
            if lo // s != hi // s:
                continue
            m = lo // s
            coarse = from_linear(({k: c // s for k, c in coeffs.items() if c % s == 0}, m))  # S' / s
            blocks = AffineConstantExpr(d // s)
            if kind == AffineBinaryOpKind.FloorDiv:
                return coarse if d == s else simplify(AffineBinaryOpExpr(kind, coarse, blocks))
            inner = AffineConstantExpr(0) if d == s else AffineBinaryOpExpr(kind, coarse, blocks)
            return simplify(inner * s + fine - s * m)
    return simplify(AffineBinaryOpExpr(kind, lhs, rhs))


@cache
def _divisors_above_one(d: int) -> tuple[int, ...]:
    """The divisors of `d` above 1, largest first, found in O(sqrt d) steps (a reshape of a
    huge dimension divides by a constant of 10^9)."""
    small = [k for k in range(2, math.isqrt(d) + 1) if d % k == 0]
    return tuple(sorted({d, *small, *(d // k for k in small)} - {1}, reverse=True))


def moves_with(expr: AffineExpr, dim: int) -> bool:
    """Whether `expr` uses `dim` other than under a `floordiv` (which steps of `dim` inside one
    block of the divisor leave unchanged): where a vector's lanes move a quasi-affine index."""
    if isinstance(expr, AffineDimExpr):
        return expr.position == dim
    if isinstance(expr, AffineBinaryOpExpr):
        if expr.kind == AffineBinaryOpKind.FloorDiv:
            return False
        return moves_with(expr.lhs, dim) or moves_with(expr.rhs, dim)
    return False


def substitute(expr: AffineExpr, values: Sequence[AffineExpr]) -> AffineExpr:
    """`expr` with dimension k replaced by `values[k]`, simplified."""
    return simplify(expr.replace_dims_and_symbols(list(values), []))


def coefficient(expr: AffineExpr, dim: int) -> int | None:
    """The coefficient of `dim` in `expr` when `expr` is `c * dim` plus terms without `dim`
    (which may have divisions), else None: how far `expr` moves per step of `dim`."""
    if dim not in expr.used_dims():
        return 0
    if isinstance(expr, AffineDimExpr):
        return 1
    if isinstance(expr, AffineBinaryOpExpr) and expr.kind == AffineBinaryOpKind.Add:
        lhs, rhs = coefficient(expr.lhs, dim), coefficient(expr.rhs, dim)
        return None if lhs is None or rhs is None else lhs + rhs
    if isinstance(expr, AffineBinaryOpExpr) and expr.kind == AffineBinaryOpKind.Mul:
        for factor, other in ((expr.rhs, expr.lhs), (expr.lhs, expr.rhs)):
            if isinstance(factor, AffineConstantExpr):
                inner = coefficient(other, dim)
                return None if inner is None else inner * factor.value
    return None
