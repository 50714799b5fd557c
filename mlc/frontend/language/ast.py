"""Syntax tree of the mlc language, as produced by :func:`mlc.frontend.parser.parse`.

The tree is purely syntactic: names are unresolved strings, calls are not checked against the
built-ins, shapes are not inferred.  The parser guarantees only what the grammar and a few local
rules say (see ``parser.py``), so the semantic pass can rely on, e.g., keyword values being
numbers, enum words or tuples of numbers, and on subscripts/reductions/comparisons appearing only
inside ``op`` bodies.

Every node carries ``loc``: the span from its first to its last token (1-based line/column of the
first token).  All nodes are frozen dataclasses (hashable, comparable; ``loc`` is keyword-only).
One expression family serves models, op bodies, subscripts and dimensions:

* ``Expr``     - any expression (``Name``, ``Number``, ``Unary``, ``Binary``, ``Compare``, ``Call``,
  ``Subscript``, ``Reduction``; ``TupleExpr`` only as a call argument or keyword value).
* ``DimExpr``  - a dimension or reduction extent: ``Number`` (non-negative int), ``Name``, or
  ``Binary`` with ``+ - * /`` (``/`` is floor division) over ``DimExpr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Union

from mlc.errors import SourceLocation


@dataclass(frozen=True)
class Node:
    """Base of all syntax nodes; ``loc`` spans the node's tokens."""

    loc: SourceLocation = field(kw_only=True)


# ---------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Name(Node):
    """A use of a name: a variable, an index variable, a dimension symbol or an enum word."""

    name: str


@dataclass(frozen=True)
class Number(Node):
    """A numeric literal.  ``is_int`` tells ``3`` from ``3.0``/``3.``/``3e0``.

    A minus sign directly in front of a literal is folded in (``-1`` is ``Number(-1)``, located
    at the ``-``), so negative keyword values and tuple items are plain numbers.
    """

    value: int | float
    is_int: bool


@dataclass(frozen=True)
class Unary(Node):
    """Prefix operator applied to a non-literal operand; ``op`` is always ``"-"``."""

    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary(Node):
    """Infix arithmetic ``lhs op rhs`` with ``op`` in ``+ - * / %``.

    ``loc`` spans the whole expression; ``op_loc`` is the operator token (a good place for
    "shapes do not broadcast" errors).
    """

    op: str
    lhs: Expr
    rhs: Expr
    op_loc: SourceLocation | None = None


@dataclass(frozen=True)
class Compare(Node):
    """``lhs op rhs`` with ``op`` in ``< <= > >= == !=``; only the condition of ``select`` in op bodies."""

    op: str
    lhs: Expr
    rhs: Expr
    op_loc: SourceLocation | None = None


class Keyword(NamedTuple):
    """A keyword argument ``name=value`` (a ``(name, value, loc)`` triple).

    ``value`` is a ``Number`` (possibly negative), a ``Name`` (an enum word such as ``same`` or
    ``None``) or a ``TupleExpr`` of ``Number`` s.  ``loc`` spans ``name=value``.
    """

    name: str
    value: Expr
    loc: SourceLocation


@dataclass(frozen=True)
class Call(Node):
    """``func(args..., key=value, ...)``: a built-in, a custom op, or a scalar function in op bodies.

    Positional ``args`` (expressions or ``TupleExpr``) always precede ``kwargs``; keyword names
    are unique.  Keyword arguments and tuples occur only in models.
    """

    func: str
    args: tuple[Expr, ...]
    kwargs: tuple[Keyword, ...] = ()

    def kwarg(self, name: str) -> Keyword | None:
        """The keyword argument called ``name``, if given."""
        return next((k for k in self.kwargs if k.name == name), None)


@dataclass(frozen=True)
class TupleExpr(Node):
    """``(a, b, ...)`` as a call argument or keyword value (``(4,)`` is a one-item tuple)."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Subscript(Node):
    """``tensor[i0, i1, ...]`` in an op body; the indices are unchecked index expressions."""

    tensor: str
    indices: tuple[Expr, ...]


class ReductionVar(NamedTuple):
    """``name: extent`` of a reduction (a ``(name, extent, loc)`` triple); ``loc`` is the name."""

    name: str
    extent: DimExpr
    loc: SourceLocation


@dataclass(frozen=True)
class Reduction(Node):
    """``sum(r: N, ...) body`` or ``max(r: N, ...) body`` in an op body.

    ``kind`` is ``"sum"`` or ``"max"``; ``vars`` are distinct and each ranges over
    ``0 .. extent-1``.  The body extends as far right as possible: ``sum(a: 3) x[a] / 9.0`` sums
    ``x[a] / 9.0``.
    """

    kind: str
    vars: tuple[ReductionVar, ...]
    body: Expr


Expr = Union[Name, Number, Unary, Binary, Compare, Call, TupleExpr, Subscript, Reduction]
DimExpr = Union[Number, Name, Binary]


# ---------------------------------------------------------------------------- types


@dataclass(frozen=True)
class TensorTypeExpr(Node):
    """``f32[d0, d1, ...]`` / ``f64[...]``; ``f32[]`` is a scalar (``dims == ()``).

    In models every dim is an int ``Number``; in op signatures dims are ``DimExpr`` s.
    """

    dtype: str
    dims: tuple[DimExpr, ...]

    @property
    def rank(self) -> int:
        return len(self.dims)

    @property
    def is_static(self) -> bool:
        """True when every dimension is an integer literal."""
        return all(isinstance(d, Number) for d in self.dims)

    def static_shape(self) -> tuple[int, ...]:
        """The shape as ints; only valid when :attr:`is_static`."""
        if not self.is_static:
            raise ValueError("type has symbolic dimensions")
        return tuple(int(d.value) for d in self.dims)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Init(Node):
    """Parameter initialiser: ``kind`` in zeros/ones/glorot (no args), normal (std), uniform (lo, hi)."""

    kind: str
    args: tuple[Number, ...] = ()


@dataclass(frozen=True)
class InputDecl(Node):
    """``input name: type``; ``loc`` starts at ``input``, ``name_loc`` is the name."""

    name: str
    type: TensorTypeExpr
    name_loc: SourceLocation


@dataclass(frozen=True)
class ParamDecl(Node):
    """``param name: type [= init]``; ``init`` is None when omitted (the default depends on rank)."""

    name: str
    type: TensorTypeExpr
    init: Init | None
    name_loc: SourceLocation


@dataclass(frozen=True)
class StateDecl(ParamDecl):
    """``state name: type [= init]``: held by the caller like a param, but never trained; the ops
    that read it say how a training-mode run updates it (``init`` None: zeros)."""


@dataclass(frozen=True)
class Assign(Node):
    """``a = expr`` or ``a, b = call(...)`` (several targets only with a ``Call`` value)."""

    targets: tuple[Name, ...]
    value: Expr


@dataclass(frozen=True)
class Output(Node):
    """``output a, b, ...``: the model's results in order (the first is the default loss)."""

    names: tuple[Name, ...]


Decl = Union[InputDecl, ParamDecl, StateDecl]
Stmt = Union[Assign, Output]


@dataclass(frozen=True)
class Model(Node):
    """``model name { ... }``.  Declarations and statements may be interleaved in the source;
    both tuples keep source order (compare ``loc`` s to merge them)."""

    name: str
    decls: tuple[Decl, ...]
    stmts: tuple[Stmt, ...]
    name_loc: SourceLocation

    @property
    def inputs(self) -> tuple[InputDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, InputDecl))

    @property
    def params(self) -> tuple[ParamDecl, ...]:
        return tuple(d for d in self.decls if type(d) is ParamDecl)

    @property
    def states(self) -> tuple[StateDecl, ...]:
        return tuple(d for d in self.decls if isinstance(d, StateDecl))


# ---------------------------------------------------------------------------- custom ops


@dataclass(frozen=True)
class OpParam(Node):
    """``name: type`` in an op signature (``loc`` starts at the name)."""

    name: str
    type: TensorTypeExpr


@dataclass(frozen=True)
class OpDef(Node):
    """``op name(params) -> result_type { out[i, j, ...] = body }``.

    ``out_indices`` are distinct index variables, one per result dimension (``()`` for a scalar
    result, written ``out = ...`` or ``out[] = ...``); ``out_loc`` spans the ``out[...]`` target.
    """

    name: str
    params: tuple[OpParam, ...]
    result_type: TensorTypeExpr
    out_indices: tuple[Name, ...]
    body: Expr
    name_loc: SourceLocation
    out_loc: SourceLocation


@dataclass(frozen=True)
class Module(Node):
    """A whole file: ``model`` and ``op`` definitions in source order."""

    defs: tuple[Model | OpDef, ...]

    @property
    def models(self) -> tuple[Model, ...]:
        return tuple(d for d in self.defs if isinstance(d, Model))

    @property
    def ops(self) -> tuple[OpDef, ...]:
        return tuple(d for d in self.defs if isinstance(d, OpDef))


# ---------------------------------------------------------------------------- printing


def unparse(e: Expr | TensorTypeExpr) -> str:
    """Source-like text of an expression with every binary operation parenthesised.

    Meant for tests and debugging output: ``sum(a: 3) x[i + a] / 9.0`` prints as
    ``sum(a: 3) (x[(i + a)] / 9.0)``.
    """
    if isinstance(e, Name):
        return e.name
    if isinstance(e, Number):
        return repr(e.value)
    if isinstance(e, Unary):
        return f"{e.op}{unparse(e.operand)}"
    if isinstance(e, (Binary, Compare)):
        return f"({unparse(e.lhs)} {e.op} {unparse(e.rhs)})"
    if isinstance(e, Call):
        parts = [unparse(a) for a in e.args]
        parts += [f"{k.name}={unparse(k.value)}" for k in e.kwargs]
        return f"{e.func}({', '.join(parts)})"
    if isinstance(e, TupleExpr):
        inner = ", ".join(unparse(i) for i in e.items)
        return f"({inner},)" if len(e.items) == 1 else f"({inner})"
    if isinstance(e, Subscript):
        return f"{e.tensor}[{', '.join(unparse(i) for i in e.indices)}]"
    if isinstance(e, Reduction):
        rvars = ", ".join(f"{v.name}: {unparse(v.extent)}" for v in e.vars)
        return f"{e.kind}({rvars}) {unparse(e.body)}"
    if isinstance(e, TensorTypeExpr):
        return f"{e.dtype}[{', '.join(unparse(d) for d in e.dims)}]"
    raise TypeError(f"not an expression: {e!r}")
