"""Custom operations in index notation: checking a definition, instantiating it at a call site.

An ``op`` is not emitted on its own.  Its definition is checked once, symbolically (names,
arities, subscript affinity, ranks: nothing that needs concrete shapes), so errors in an op that
no model calls are still reported.  Each call then *instantiates* it for its argument shapes:

1. **Binding.**  Every dimension of a parameter's type that is a bare name binds that name to
   the argument's size (a name bound twice must agree); then every other dimension (an integer
   or an expression such as ``(H - K) / 2 + 1``, ``/`` being floor division) is evaluated and
   compared with the argument.  The result shape is evaluated from the bound names and must be
   positive.
2. **Iteration space.**  A compute op iterates over the output indices ``d0..`` (the variables
   of ``out[...]``) followed by the reduction variables ``r0..`` of a top-level ``sum``/``max``.
   Directly nested reductions of the same kind (``sum(a: 3) sum(b: 3) e``) are one reduction
   over both variables (the same value, and the same first-maximum order for ``max``).
3. **Reads.**  A subscript ``x[e0, e1, ...]`` becomes an ``ix.Read`` of ``x`` through the
   quasi-affine map ``(iteration vars) -> (e0, e1, ...)``; identical reads are shared.  Reads
   outside ``x`` give 0.
4. **Hoisting.**  A reduction that is *not* at the top of the body (``2 * sum(k: 3) x[i, k]``,
   or a reduction inside another's body) cannot be the compute op's reduction.  It becomes its
   own compute op whose output indices are all index variables in scope at that point (output
   indices, then the enclosing reduction variables, in that order), and the outer body reads
   that temporary through the identity map of those variables.
5. **Body.**  The scalar expression becomes ``arith``/``math`` ops of the op's element type;
   see :class:`BodyEmitter` for the exact translation of each construct.  Only the scalar ops
   the backends support are used.

Symbolic dimension names are integer constants: they may appear in subscripts and, as float
constants, in the body.  In a body, ``/`` is float division; in a subscript it is floor division.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import prod

from xdsl.dialects.builtin import Float32Type, Float64Type, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.ir.affine import AffineMap

from mlc.dialects import ix
from mlc.errors import CompileError, SourceLocation
from mlc.frontend.language import ast
from mlc.frontend.language.builtins import MAX_ELEMENTS, fmt_type, word_loc
from mlc.frontend.language.custom_op_body import BodyEmitter
from mlc.frontend.language.options import MAX_INT, source_text
from mlc.frontend.language.custom_op_index import DimError, Subscripts, dim_names, eval_dim, type_text

ELEMENT_TYPES: dict[str, Attribute] = {"f32": Float32Type(), "f64": Float64Type()}

SCALAR_FUNCTIONS: dict[str, int] = {
    "exp": 1, "log": 1, "sqrt": 1, "abs": 1, "tanh": 1, "sigmoid": 1, "relu": 1,
    "max": 2, "min": 2, "select": 3,
}  # fmt: skip
"""Functions allowed in op bodies and their number of arguments."""


# ---------------------------------------------------------------------------- definitions


@dataclass
class CustomOp:
    """One ``op`` definition: checked once (:meth:`check`), instantiated per call (:meth:`instantiate`)."""

    defn: ast.OpDef
    params: dict[str, ast.OpParam] = field(init=False)
    dims: set[str] = field(init=False)
    """The dimension names bound at a call: those that are a whole dimension of some parameter."""
    _checked: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.params = {p.name: p for p in self.defn.params}
        self.dims = {d.name for p in self.defn.params for d in p.type.dims if isinstance(d, ast.Name)}

    @property
    def name(self) -> str:
        return self.defn.name

    @property
    def element_type(self) -> Attribute:
        return ELEMENT_TYPES[self.defn.result_type.dtype]

    # -- checking ---------------------------------------------------------------------------
    def check(self) -> None:
        """Report the first error of the definition itself (needs no call); done once."""
        if self._checked:
            return
        self._check_signature()
        self._check_out()
        positions = {v.name: k for k, v in enumerate(self.defn.out_indices)}
        _BodyChecker(self).check(self.defn.body, dict.fromkeys(positions))
        self._checked = True

    def _check_signature(self) -> None:
        d = self.defn
        seen: set[str] = set()
        for p in d.params:
            if p.name in seen:
                raise CompileError(p.loc, f"parameter '{p.name}' is declared twice")
            if p.name in self.dims:
                raise CompileError(p.loc, f"'{p.name}' is both a parameter and a dimension name")
            if p.type.dtype != d.result_type.dtype:
                raise CompileError(
                    p.type.loc,
                    f"op '{d.name}' computes {d.result_type.dtype}, so '{p.name}' must be {d.result_type.dtype} too, not {p.type.dtype}",
                )
            seen.add(p.name)
        for t in [p.type for p in d.params] + [d.result_type]:
            for dim in t.dims:
                self.check_dim_expr(dim, "a dimension")

    def check_dim_expr(self, e: ast.Expr, what: str, index_vars: Sequence[str] = ()) -> None:
        """Every name in a dimension expression must be bound by some parameter's shape."""
        for n in dim_names(e):
            if n.name in index_vars:
                raise CompileError(n.loc, f"{what} cannot depend on the index variable '{n.name}'")
            if n.name not in self.dims:
                raise CompileError(
                    n.loc, f"dimension name '{n.name}' is not bound: it must be a whole dimension of a parameter, e.g. f32[{n.name}]"
                )
        if any(True for _ in dim_names(e)):
            return  # checked at each call, where the names have values
        try:
            value = eval_dim(e, {})
        except DimError as err:
            raise CompileError(e.loc, str(err)) from None
        if value < 1:
            raise CompileError(e.loc, f"{what} must be positive, got {value}")

    def _check_out(self) -> None:
        d = self.defn
        if len(d.out_indices) != d.result_type.rank:
            raise CompileError(
                d.out_loc,
                f"the result {type_text(d.result_type)} has rank {d.result_type.rank}, "
                f"but 'out' has {len(d.out_indices)} index variable{'s' if len(d.out_indices) != 1 else ''}",
            )
        for v in d.out_indices:
            self.check_new_variable(v.name, v.loc, {})

    def check_new_variable(self, name: str, loc: SourceLocation, in_scope: Mapping[str, ast.Reduction | None]) -> None:
        """An index variable must not hide a parameter, a dimension name or another index variable.

        ``in_scope`` maps the index variables visible here to the reduction that introduced them
        (None for output indices).  Hiding an enclosing reduction's variable usually means the
        author expected that reduction's body to end earlier, so the message says where it ends.
        """
        if name in in_scope:
            outer = in_scope[name]
            if outer is None:
                raise CompileError(loc, f"'{name}' is already an output index variable")
            raise CompileError(
                loc,
                f"'{name}' is already the variable of the enclosing '{outer.kind}(...)' at column {outer.loc.col}, "
                f"whose body extends to the end of the expression; put that {outer.kind} in parentheses",
            )
        if name in self.params:
            raise CompileError(loc, f"index variable '{name}' has the name of a parameter")
        if name in self.dims:
            raise CompileError(loc, f"index variable '{name}' has the name of a dimension")

    # -- instantiation ----------------------------------------------------------------------
    def instantiate(self, call: ast.Call, args: Sequence[SSAValue]) -> SSAValue:
        """Build the compute op(s) of this op for the argument types of ``call``; returns the result."""
        self.check()
        if len(args) != len(self.defn.params):
            n = len(self.defn.params)
            raise CompileError(call.loc, f"{self.name} expects {n} argument{'s' if n != 1 else ''}, got {len(args)}")
        dims = self._bind(call, args)
        shape = [self.eval_at_call(d, dims, call.loc, f"result dimension {source_text(d)}") for d in self.defn.result_type.dims]
        if prod(shape) > MAX_ELEMENTS:
            raise CompileError(call.loc, f"the result of {self.name} would have {prod(shape)} elements, more than {MAX_ELEMENTS}")
        values = {p.name: v for p, v in zip(self.defn.params, args)}
        inst = _Instance(self, values, dims, call.loc)
        out_scope = [(v.name, n) for v, n in zip(self.defn.out_indices, shape)]
        return inst.compute(self.defn.body, out_scope)

    def _bind(self, call: ast.Call, args: Sequence[SSAValue]) -> dict[str, int]:
        """Bind the dimension names from the argument shapes and check every dimension."""
        dims: dict[str, int] = {}
        source: dict[str, str] = {}
        for p, v in zip(self.defn.params, args):
            t = v.type
            assert isinstance(t, TensorType)
            if ELEMENT_TYPES[p.type.dtype] != t.get_element_type() or t.get_num_dims() != p.type.rank:
                raise self._mismatch(call, p, t)
            for d, size in zip(p.type.dims, t.get_shape()):
                if not isinstance(d, ast.Name):
                    continue
                if d.name in dims and dims[d.name] != size:
                    raise self._mismatch(call, p, t, f"{d.name} is {dims[d.name]} from {source[d.name]}")
                dims.setdefault(d.name, size)
                source.setdefault(d.name, p.name)
        for p, v in zip(self.defn.params, args):
            assert isinstance(v.type, TensorType)
            for d, size in zip(p.type.dims, v.type.get_shape()):
                if isinstance(d, ast.Name):
                    continue
                value = self.eval_at_call(d, dims, call.loc, "", check_positive=False)
                if value != size:
                    detail = "" if isinstance(d, ast.Number) else f"{source_text(d)} is {value}"
                    raise self._mismatch(call, p, v.type, detail)
        return dims

    def _mismatch(self, call: ast.Call, p: ast.OpParam, got: TensorType, detail: str = "") -> CompileError:
        suffix = f" ({detail})" if detail else ""
        return CompileError(call.loc, f"{self.name} expects {p.name}: {type_text(p.type)}, got {fmt_type(got)}{suffix}")

    def eval_at_call(self, e: ast.Expr, dims: Mapping[str, int], loc: SourceLocation, what: str, check_positive: bool = True) -> int:
        """Evaluate a dimension expression for a call; errors (``what`` is not positive) go to the call."""
        try:
            value = eval_dim(e, dims)
        except DimError as err:
            raise CompileError(loc, f"in {self.name}: {err} for this call") from None
        if check_positive and value < 1:
            raise CompileError(loc, f"{what} is {value} for this call")
        if check_positive and value > MAX_INT:
            raise CompileError(loc, f"{what} is {value} for this call, more than the limit {MAX_INT}")
        return value


# ---------------------------------------------------------------------------- body checking


def split_reduction(e: ast.Expr) -> tuple[str, list[ast.ReductionVar], ast.Expr]:
    """(kind, variables, body) of a reduction, merging directly nested ones of the same kind;
    ``("none", [], e)`` for anything else."""
    if not isinstance(e, ast.Reduction):
        return "none", [], e
    variables = list(e.vars)
    body = e.body
    while isinstance(body, ast.Reduction) and body.kind == e.kind:
        variables += body.vars
        body = body.body
    return e.kind, variables, body


Scope = dict[str, "ast.Reduction | None"]
"""The index variables visible at a point of a body, in iteration order, with their binders."""


@dataclass
class _BodyChecker:
    """Checks a body without shapes: names, functions and their arities, select conditions,
    subscript ranks and affinity, reduction variables and extents."""

    op: CustomOp

    def check(self, e: ast.Expr, scope: Scope) -> None:
        method: Callable[[ast.Expr, Scope], None] = getattr(self, f"_{type(e).__name__}")
        method(e, scope)

    def _Number(self, e: ast.Number, scope: Scope) -> None:
        pass

    def _Name(self, e: ast.Name, scope: Scope) -> None:
        if e.name in scope or e.name in self.op.dims:
            return
        p = self.op.params.get(e.name)
        if p is None:
            raise CompileError(e.loc, f"unknown name '{e.name}'")
        if p.type.rank:
            raise CompileError(e.loc, f"'{e.name}' is a tensor of rank {p.type.rank}; read its elements with {e.name}[...]")

    def _Unary(self, e: ast.Unary, scope: Scope) -> None:
        self.check(e.operand, scope)

    def _Binary(self, e: ast.Binary, scope: Scope) -> None:
        if e.op == "%":
            raise CompileError(e.op_loc or e.loc, "'%' is only allowed in subscripts (values are floats; use it on indices)")
        self.check(e.lhs, scope)
        self.check(e.rhs, scope)

    def _Compare(self, e: ast.Compare, scope: Scope) -> None:
        raise CompileError(e.op_loc or e.loc, "a comparison is only allowed as the condition of select(...)")

    def _Call(self, e: ast.Call, scope: Scope) -> None:
        arity = SCALAR_FUNCTIONS.get(e.func)
        if arity is None:
            known = ", ".join(SCALAR_FUNCTIONS)
            raise CompileError(word_loc(e.loc, e.func), f"unknown function '{e.func}' in an op body (available: {known})")
        if len(e.args) != arity:
            raise CompileError(e.loc, f"{e.func} expects {arity} argument{'s' if arity != 1 else ''}, got {len(e.args)}")
        args = list(e.args)
        if e.func == "select":
            cond = args.pop(0)
            if not isinstance(cond, ast.Compare):
                raise CompileError(cond.loc, "the condition of select must be a comparison (<, <=, >, >=, ==, !=)")
            args = [cond.lhs, cond.rhs, *args]
        for a in args:
            self.check(a, scope)

    def _Subscript(self, e: ast.Subscript, scope: Scope) -> None:
        p = self.op.params.get(e.tensor)
        if p is None:
            what = "an index variable" if e.tensor in scope else "a dimension" if e.tensor in self.op.dims else None
            message = f"'{e.tensor}' is {what}, not a tensor" if what else f"unknown tensor '{e.tensor}'"
            raise CompileError(word_loc(e.loc, e.tensor), message)
        if len(e.indices) != p.type.rank:
            n = len(e.indices)
            raise CompileError(e.loc, f"'{e.tensor}' has rank {p.type.rank} ({type_text(p.type)}) but is indexed with {n} subscript{'s' if n != 1 else ''}")
        subscripts = Subscripts({name: k for k, name in enumerate(scope)}, dict.fromkeys(self.op.dims), self.op.params)
        for i in e.indices:
            subscripts.index(i)

    def _Reduction(self, e: ast.Reduction, scope: Scope) -> None:
        inner = dict(scope)
        for v in e.vars:
            self.op.check_new_variable(v.name, v.loc, inner)
            self.op.check_dim_expr(v.extent, f"the extent of '{v.name}'", list(inner))
            inner[v.name] = e
        self.check(e.body, inner)


# ---------------------------------------------------------------------------- instantiation


@dataclass
class _Reads:
    """The reads of one compute op; ``of_node`` maps an AST node (by id) to its read's position."""

    reads: list[ix.Read] = field(default_factory=list)
    of_node: dict[int, int] = field(default_factory=dict)
    _index: dict[tuple[SSAValue, AffineMap], int] = field(default_factory=dict)

    def add(self, node: ast.Node, value: SSAValue, amap: AffineMap) -> None:
        key = (value, amap)
        if key not in self._index:
            self._index[key] = len(self.reads)
            self.reads.append(ix.Read(value, amap, 0.0))
        self.of_node[id(node)] = self._index[key]


@dataclass
class _Instance:
    """One call's instantiation: parameter values and dimension values are known."""

    op: CustomOp
    values: dict[str, SSAValue]
    dims: dict[str, int]
    call_loc: SourceLocation

    def compute(self, e: ast.Expr, out_scope: list[tuple[str, int]]) -> SSAValue:
        """The compute op defining ``e`` over ``out_scope`` (names and sizes of its output indices)."""
        kind, rvars, body = split_reduction(e)
        extents = [self._extent(v) for v in rvars]
        scope = out_scope + [(v.name, n) for v, n in zip(rvars, extents)]
        reads = _Reads()
        self._collect(body, scope, reads)
        positions = {name: k for k, (name, _) in enumerate(scope)}
        elt = self.op.element_type
        result_type = TensorType(elt, [n for _, n in out_scope])
        emitter = BodyEmitter(elt, positions, self.dims, reads.of_node)
        op = ix.ComputeOp.build(result_type, reads.reads, lambda args: emitter.emit(body, args), kind, extents)
        return op.result

    def _extent(self, v: ast.ReductionVar) -> int:
        return self.op.eval_at_call(v.extent, self.dims, self.call_loc, f"the extent {source_text(v.extent)} of '{v.name}'")

    def _collect(self, e: ast.Expr, scope: list[tuple[str, int]], reads: _Reads) -> None:
        """Register every read of the body (building hoisted reductions first), left to right."""
        num_dims = len(scope)
        if isinstance(e, ast.Subscript):
            subs = Subscripts({name: k for k, (name, _) in enumerate(scope)}, self.dims, self.op.params, self.call_loc)
            amap = AffineMap(num_dims, 0, tuple(subs.translate(i) for i in e.indices))
            reads.add(e, self.values[e.tensor], amap)
        elif isinstance(e, ast.Name) and e.name in self.values:
            reads.add(e, self.values[e.name], AffineMap(num_dims, 0, ()))
        elif isinstance(e, ast.Reduction):
            temp = self.compute(e, scope)
            reads.add(e, temp, AffineMap.identity(num_dims))
        else:
            for child in _children(e):
                self._collect(child, scope, reads)


def _children(e: ast.Expr) -> tuple[ast.Expr, ...]:
    if isinstance(e, ast.Unary):
        return (e.operand,)
    if isinstance(e, (ast.Binary, ast.Compare)):
        return (e.lhs, e.rhs)
    if isinstance(e, ast.Call):
        return e.args
    return ()
