"""Index arithmetic of custom ops: dimension expressions (``(H - K) / 2 + 1`` in a signature) and
subscripts (``x[i + a, j / 2]`` in a body) translated to quasi-affine expressions."""

from __future__ import annotations

import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from xdsl.ir.affine import AffineExpr

from mlc.errors import CompileError, SourceLocation
from mlc.frontend.language import ast
from mlc.frontend.language.options import MAX_INT, source_text


# ---------------------------------------------------------------------------- dimension expressions


class DimError(Exception):
    """A dimension expression that cannot be evaluated (division by zero)."""


def dim_names(e: ast.Expr) -> Iterator[ast.Name]:
    """The names used in a dimension expression, left to right."""
    if isinstance(e, ast.Name):
        yield e
    elif isinstance(e, ast.Binary):
        yield from dim_names(e.lhs)
        yield from dim_names(e.rhs)


_DIM_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}


def eval_dim(e: ast.Expr, env: Mapping[str, int]) -> int:
    """Value of a dimension expression (``/`` is floor division) for bound names ``env``."""
    if isinstance(e, ast.Number):
        return int(e.value)
    if isinstance(e, ast.Name):
        return env[e.name]
    assert isinstance(e, ast.Binary), e
    lhs, rhs = eval_dim(e.lhs, env), eval_dim(e.rhs, env)
    if e.op in "/%" and rhs == 0:
        raise DimError(f"{source_text(e)} divides by zero")
    return _DIM_OPS[e.op](lhs, rhs)


def type_text(t: ast.TensorTypeExpr) -> str:
    """A declared type as written, e.g. ``f32[N, H - 2]``."""
    return f"{t.dtype}[{', '.join(source_text(d) for d in t.dims)}]"


# ---------------------------------------------------------------------------- subscripts

Const = int | None
"""A subscript constant: its value, or None while checking a definition (dimension unknown)."""
Index = AffineExpr | Const
"""A subscript (sub)expression: affine in the iteration variables, or a constant."""


@dataclass
class Subscripts:
    """Translates subscript expressions to quasi-affine expressions over the iteration variables.

    ``positions`` maps index variable names to iteration dimensions; ``dims`` gives the value of
    each dimension name (None while checking a definition).  ``call_loc`` is set at a call site:
    the only error possible there, a divisor that is not positive for this call, is reported at it.
    """

    positions: Mapping[str, int]
    dims: Mapping[str, int | None]
    params: Mapping[str, ast.OpParam]
    call_loc: SourceLocation | None = None

    def translate(self, e: ast.Expr) -> AffineExpr:
        v = self.index(e)
        return v if isinstance(v, AffineExpr) else AffineExpr.constant(v or 0)

    def index(self, e: ast.Expr) -> Index:
        if isinstance(e, ast.Number):
            if not e.is_int:
                raise _non_affine(e, f"{source_text(e)} is not an integer")
            if abs(e.value) > MAX_INT:
                raise CompileError(e.loc, f"{e.value} is too large (the limit is {MAX_INT})")
            return int(e.value)
        if isinstance(e, ast.Name):
            return self._name(e)
        if isinstance(e, ast.Unary):
            v = self.index(e.operand)
            return None if v is None else -v
        if isinstance(e, ast.Binary):
            return self._binary(e)
        if isinstance(e, ast.Subscript):
            raise _non_affine(e, f"{source_text(e)} reads a tensor inside a subscript")
        if isinstance(e, ast.Reduction):
            raise _non_affine(e, f"a reduction '{e.kind}(...)' cannot be a subscript")
        if isinstance(e, ast.Call):
            raise _non_affine(e, f"{source_text(e)} calls a function inside a subscript")
        raise _non_affine(e, f"{source_text(e)} is not an integer index expression")

    def _name(self, e: ast.Name) -> Index:
        if e.name in self.positions:
            return AffineExpr.dimension(self.positions[e.name])
        if e.name in self.dims:
            return self.dims[e.name]
        if e.name in self.params:
            raise _non_affine(e, f"{e.name} reads a tensor inside a subscript")
        raise CompileError(e.loc, f"unknown name '{e.name}'")

    def _binary(self, e: ast.Binary) -> Index:
        lhs, rhs = self.index(e.lhs), self.index(e.rhs)
        if e.op in "+-":
            if not isinstance(lhs, AffineExpr) and not isinstance(rhs, AffineExpr):
                return None if lhs is None or rhs is None else (lhs + rhs if e.op == "+" else lhs - rhs)
            a, b = _affine(lhs), _affine(rhs)
            return a + b if e.op == "+" else a - b
        if e.op == "*":
            if isinstance(lhs, AffineExpr) and isinstance(rhs, AffineExpr):
                raise _non_affine(e, f"{source_text(e)} multiplies two index expressions")
            if not isinstance(lhs, AffineExpr) and not isinstance(rhs, AffineExpr):
                return None if lhs is None or rhs is None else lhs * rhs
            return _affine(lhs) * _affine(rhs)
        return self._division(e, lhs, rhs)

    def _division(self, e: ast.Binary, lhs: Index, rhs: Index) -> Index:
        """``/`` (floor division) and ``%`` by a positive integer constant."""
        what = "divides" if e.op == "/" else "takes the remainder"
        if isinstance(rhs, AffineExpr):
            raise _non_affine(e, f"{source_text(e)} {what} by an index expression; only positive integer constants are allowed")
        if rhs is not None and rhs <= 0:
            message = f"{source_text(e)} {what} by {rhs}; the divisor must be a positive integer"
            if self.call_loc is not None:
                raise CompileError(self.call_loc, f"subscript {message} (for this call)")
            raise _non_affine(e, message)
        if not isinstance(lhs, AffineExpr):
            if lhs is None or rhs is None:
                return None
            return lhs // rhs if e.op == "/" else lhs % rhs
        divisor = AffineExpr.constant(rhs if rhs is not None else 1)
        return lhs // divisor if e.op == "/" else lhs % divisor


def _affine(v: Index) -> AffineExpr:
    return v if isinstance(v, AffineExpr) else AffineExpr.constant(v if v is not None else 1)


def _non_affine(e: ast.Node, why: str) -> CompileError:
    return CompileError(e.loc, f"non-affine subscript: {why}")
