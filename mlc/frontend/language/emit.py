"""The semantic half of the frontend: a checked AST becomes graph-level IR (``nn`` + ``ix``).

Output: one ``builtin.module`` with one ``func.func`` per ``model``, in source order.  The
function's arguments are the model's ``input`` s and ``param`` s in declaration order (block
argument ``name_hint`` = source name), its results the ``output`` values, and its signature
(names, kinds, initialisers, output names) is recorded with :class:`ModelSignature`.  Built-in
calls and operators become ``nn`` ops (the table is in ``builtins.py``); each call of a custom
``op`` instantiates it for its argument shapes as ``ix.compute`` ops (``custom_ops.py``).

Rules (where LANGUAGE.md leaves room, what mlc does):

* **Order and names.**  Declarations and statements are processed in source order: a name is
  usable after the line that binds it, and re-binding shadows.  Inputs and params are bound
  where they are declared.  Model names and op names share one namespace and must be unique; an
  op may not take a built-in's name.
* **Literals** are Python numbers until they meet a tensor: arithmetic between literals is
  folded (``/`` is true division), and a literal operand becomes an ``nn.constant`` scalar of
  the other operand's element type.  A literal that meets no tensor (``a = 2.0; output a``, or
  ``relu(2.0)``) gets the model's element type: that of its first declaration (f32 if none).
* **Element types** never mix: every tensor operand of an operator or call has the same type.
* **Outputs.**  A model has exactly one ``output`` statement; its names must be bound and
  distinct.  Statements after it are still checked but cannot affect the results.
* **The loss rule** is not the frontend's: a model may output anything, params or not. Its first
  output is the default loss, which must be a scalar when the model is differentiated; the
  function records where each output name stands (``mlc.output_locs``) so that ``mlc-autodiff``
  reports a non-scalar loss at that name.
* **Several targets** (``a, b = f(...)``) need a call that returns that many values; every
  built-in and custom op returns one value today.

Errors are :class:`CompileError` s at the most precise location (an operator token for
broadcasting, the keyword value for a bad option, the whole call for a shape mismatch); the
first one found stops the compilation.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from xdsl.builder import ImplicitBuilder
from xdsl.dialects import func
from xdsl.dialects.builtin import ArrayAttr, ModuleOp, StringAttr, TensorType
from xdsl.ir import Attribute, Block, Region, SSAValue

from mlc.dialects import nn
from mlc.errors import CompileError, SourceLocation
from mlc.frontend.language import ast
from mlc.frontend.language.builtins import BUILTINS, MAX_ELEMENTS, REQUIRED, Builtin, Opt, Param, fmt_type, word_loc
from mlc.frontend.language.options import MAX_INT
from mlc.frontend.language.custom_ops import ELEMENT_TYPES, CustomOp
from mlc.graph.locations import MODEL_LOC, OUTPUT_LOCS, location_text
from mlc.graph.signature import ModelSignature, TensorSpec

__all__ = ["emit_module"]

Value = SSAValue | float
"""A model-level value: a tensor, or a literal not yet given an element type."""

NUMPY_DTYPES = {"f32": np.dtype(np.float32), "f64": np.dtype(np.float64)}

RECURSION_LIMIT = 20_000
"""Expressions are walked recursively; this leaves room for very long operator chains."""


def emit_module(module: ast.Module) -> ModuleOp:
    """Check ``module`` and build its IR; raises the first :class:`CompileError`."""
    ops = _custom_ops(module)
    functions: list[func.FuncOp] = []
    with _recursion_limit(RECURSION_LIMIT):
        for d in module.defs:
            if isinstance(d, ast.OpDef):
                ops[d.name].check()
            else:
                functions.append(_ModelEmitter(d, ops).emit())
    return ModuleOp(functions)


def _custom_ops(module: ast.Module) -> dict[str, CustomOp]:
    """The op table, after checking that every model and op name is defined once."""
    seen: dict[str, ast.Model | ast.OpDef] = {}
    for d in module.defs:
        if d.name in seen:
            first = seen[d.name]
            raise CompileError(d.name_loc, f"'{d.name}' is already defined at line {first.name_loc.line}")
        if isinstance(d, ast.OpDef) and d.name in BUILTINS:
            raise CompileError(d.name_loc, f"'{d.name}' is a built-in operation; give this op another name")
        seen[d.name] = d
    return {d.name: CustomOp(d) for d in module.ops}


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _position(node: ast.Node) -> tuple[int, int]:
    return node.loc.line, node.loc.col


def _tensor_type(t: ast.TensorTypeExpr) -> TensorType:
    return TensorType(ELEMENT_TYPES[t.dtype], list(t.static_shape()))


def _s(n: int) -> str:
    return "" if n == 1 else "s"


class _ModelEmitter:
    """Builds the ``func.func`` of one model."""

    def __init__(self, model: ast.Model, ops: dict[str, CustomOp]) -> None:
        self.model = model
        self.ops = ops
        self.scope: dict[str, Value] = {}
        self.states: dict[str, SSAValue] = {}
        """The model's state arguments by name."""
        self.state_updates: dict[str, SourceLocation] = {}
        """Where each state is given to the op that updates it (one op per state)."""
        self.default_type: Attribute = ELEMENT_TYPES[model.decls[0].type.dtype if model.decls else "f32"]

    # -- the function -----------------------------------------------------------------------
    def emit(self) -> func.FuncOp:
        decls = self.model.decls
        self._check_declarations()
        block = Block(arg_types=[_tensor_type(d.type) for d in decls])
        args = {d.name: a for d, a in zip(decls, block.args)}
        outputs: list[tuple[ast.Name, SSAValue]] | None = None
        with ImplicitBuilder(block):
            for item in sorted((*decls, *self.model.stmts), key=_position):
                if isinstance(item, (ast.InputDecl, ast.ParamDecl)):
                    args[item.name].name_hint = item.name
                    self.scope[item.name] = args[item.name]
                    if isinstance(item, ast.StateDecl):
                        self.states[item.name] = args[item.name]
                elif isinstance(item, ast.Assign):
                    self._assign(item)
                else:
                    if outputs is not None:
                        raise CompileError(item.loc, f"model '{self.model.name}' already has an output statement")
                    outputs = self._outputs(item)
            if outputs is None:
                raise CompileError(self.model.name_loc, f"model '{self.model.name}' has no 'output' statement")
            func.ReturnOp(*(v for _, v in outputs))
        f = func.FuncOp(self.model.name, ([a.type for a in block.args], [v.type for _, v in outputs]), Region(block))
        self._signature(outputs).attach(f)
        # For the errors of later passes (a non-scalar loss is one of autodiff's):
        f.attributes[MODEL_LOC] = StringAttr(location_text(self.model.name_loc.start()))
        f.attributes[OUTPUT_LOCS] = ArrayAttr([StringAttr(location_text(name.loc)) for name, _ in outputs])
        return f

    def _check_declarations(self) -> None:
        seen: dict[str, ast.Decl] = {}
        for d in self.model.decls:
            if d.name in seen:
                raise CompileError(d.name_loc, f"'{d.name}' is already declared at line {seen[d.name].name_loc.line}")
            _check_static_type(d.type)
            seen[d.name] = d

    def _signature(self, outputs: list[tuple[ast.Name, SSAValue]]) -> ModelSignature:
        args = tuple(
            TensorSpec(d.name, d.type.static_shape(), NUMPY_DTYPES[d.type.dtype], _kind(d), _init_text(d))
            for d in self.model.decls
        )
        results = tuple(
            TensorSpec(n.name, tuple(_tt(v).get_shape()), _numpy_dtype(v), "output") for n, v in outputs
        )
        return ModelSignature(self.model.name, args, results)

    def _outputs(self, stmt: ast.Output) -> list[tuple[ast.Name, SSAValue]]:
        outputs: list[tuple[ast.Name, SSAValue]] = []
        for n in stmt.names:
            if any(m.name == n.name for m, _ in outputs):
                raise CompileError(n.loc, f"'{n.name}' is output twice")
            outputs.append((n, self.tensor(self.lookup(n), self.default_type)))
        return outputs

    # -- statements ---------------------------------------------------------------------------
    def _assign(self, stmt: ast.Assign) -> None:
        value = self.expr(stmt.value)
        if len(stmt.targets) > 1:
            assert isinstance(stmt.value, ast.Call)
            n = len(stmt.targets)
            raise CompileError(stmt.value.loc, f"'{stmt.value.func}' returns 1 value, but {n} names are bound")
        self.scope[stmt.targets[0].name] = value

    # -- expressions --------------------------------------------------------------------------
    def expr(self, e: ast.Expr) -> Value:
        if isinstance(e, ast.Number):
            return float(e.value)
        if isinstance(e, ast.Name):
            return self.lookup(e)
        if isinstance(e, ast.Unary):
            v = self.expr(e.operand)
            return -v if isinstance(v, float) else nn.NegOp(v).results[0]
        if isinstance(e, ast.Binary):
            return self._binary(e)
        if isinstance(e, ast.Call):
            return self._call(e)
        if isinstance(e, ast.TupleExpr):
            raise CompileError(e.loc, "a tuple is not a tensor")
        raise CompileError(e.loc, "this expression is only allowed in op bodies")

    def lookup(self, n: ast.Name) -> Value:
        if n.name not in self.scope:
            raise CompileError(n.loc, f"unknown name '{n.name}'")
        return self.scope[n.name]

    def tensor(self, v: Value, element_type: Attribute) -> SSAValue:
        """``v`` as a tensor: a literal becomes a scalar constant of ``element_type``."""
        if isinstance(v, float):
            return nn.ConstantOp(v, element_type).results[0]
        return v

    def _binary(self, e: ast.Binary) -> Value:
        lhs, rhs = self.expr(e.lhs), self.expr(e.rhs)
        where = e.op_loc or e.loc
        if isinstance(lhs, float) and isinstance(rhs, float):
            return _fold(e.op, lhs, rhs, where)
        a, b = self._same_type([lhs, rhs], f"operands of '{e.op}'", where)
        try:
            return nn.BINARY[e.op](a, b).results[0]
        except nn.ShapeError:
            raise CompileError(where, f"operands of '{e.op}' do not broadcast: {fmt_type(a.type)} and {fmt_type(b.type)}") from None

    def _same_type(self, values: Sequence[Value], what: str, loc: SourceLocation) -> list[SSAValue]:
        """Give literals the element type of the first tensor and check that no types mix."""
        tensors = [v for v in values if not isinstance(v, float)]
        elt = _tt(tensors[0]).get_element_type() if tensors else self.default_type
        for t in tensors:
            if _tt(t).get_element_type() != elt:
                raise CompileError(loc, f"{what} have different element types: {fmt_type(tensors[0].type)} and {fmt_type(t.type)}")
        return [self.tensor(v, elt) for v in values]

    # -- calls --------------------------------------------------------------------------------
    def _call(self, call: ast.Call) -> SSAValue:
        if call.func in BUILTINS:
            return self._builtin(BUILTINS[call.func], call)
        if call.func in self.ops:
            return self._custom(self.ops[call.func], call)
        raise CompileError(word_loc(call.loc, call.func), f"unknown operation '{call.func}'")

    def _builtin(self, b: Builtin, call: ast.Call) -> SSAValue:
        _check_arity(b, call)
        tensors: list[tuple[int, Value]] = []
        options: dict[str, Opt] = {}
        positional = [_VARIADIC] * len(call.args) if b.variadic else b.positional
        for param, arg in zip(positional, call.args):
            self._argument(b, param, arg, tensors, options)
        self._keywords(b, call, tensors, options, {p.name for p in positional[: len(call.args)]})
        tensors.sort(key=lambda t: t[0])  # parameter order (stable: a variadic call's in call order)
        values = self._same_type([v for _, v in tensors], f"operands of {b.name}", call.loc)
        try:
            op = b.build(values, options)
            op.infer()  # type: ignore[attr-defined]
            _check_result_size(b.name, op.results[0].type, call.loc)
            if isinstance(op, nn.GraphOp) and op.KEEPS_LOCATION:
                op.attributes[MODEL_LOC] = StringAttr(location_text(call.loc))
        except nn.ShapeError as err:
            message = str(err) if str(err).startswith((f"{b.name} ", f"{b.name}:")) else f"{b.name}: {err}"
            raise CompileError(call.loc, message) from None
        return op.results[0]

    def _argument(self, b: Builtin, param: Param, arg: ast.Expr, tensors: list[tuple[int, Value]],
                  options: dict[str, Opt]) -> None:
        """One argument: an option (parsed), a tensor operand (evaluated, with its parameter's
        position), a state (``mean=``), or for a parameter that takes ``numbers`` either, by what
        it evaluates to."""
        if param.state:
            options[param.name] = Opt(self._state_arg(arg, b.name, param.name), arg.loc)
            return
        if not param.is_tensor:
            options[param.name] = Opt(param.parse(arg, param.name), arg.loc)  # type: ignore[misc]
            return
        value = self._tensor_arg(arg, b.name, param.name)
        if param.numbers and isinstance(value, float):
            options[param.name] = Opt(value, arg.loc)
        else:
            tensors.append((b.params.index(param) if param in b.params else 0, value))

    def _keywords(self, b: Builtin, call: ast.Call, tensors: list[tuple[int, Value]], options: dict[str, Opt],
                  given: set[str]) -> None:
        """Take the keyword arguments (``given`` names the parameters given positionally) and fill
        in defaults."""
        by_name = {p.name: p for p in b.keywords}
        for kw in call.kwargs:
            param = by_name.get(kw.name)
            if param is None:
                expected = f"expected {', '.join(by_name)}" if by_name else "it takes none"
                raise CompileError(kw.loc, f"{b.name} has no keyword '{kw.name}' ({expected})")
            if kw.name in given:
                raise CompileError(kw.loc, f"{b.name} got '{kw.name}' twice (positionally and by keyword)")
            given.add(kw.name)
            self._argument(b, param, kw.value, tensors, options)
        for p in b.keywords:
            if p.name not in given:
                if p.default is REQUIRED:
                    raise CompileError(call.loc, f"{b.name} needs the argument '{p.name}'")
                options[p.name] = Opt(p.default, call.loc)

    def _state_arg(self, value: ast.Expr, callee: str, keyword: str) -> SSAValue:
        """A keyword naming a state of the model (batchnorm's ``mean=``): the state itself, not a
        value computed from it, and given to one op only (that op updates it in training mode)."""
        name = value.name if isinstance(value, ast.Name) else None
        if name is None or name not in self.states:
            raise CompileError(value.loc, f"{callee}: {keyword}= must name a state of the model (declared 'state NAME: TYPE')")
        if self.scope.get(name) is not self.states[name]:
            raise CompileError(value.loc, f"{callee}: '{name}' is re-bound here, so it is no longer the state '{name}'")
        if name in self.state_updates:
            raise CompileError(value.loc, f"state '{name}' is already updated by the op at line {self.state_updates[name].line}")
        self.state_updates[name] = value.loc
        return self.states[name]

    def _tensor_arg(self, arg: ast.Expr, callee: str, param: str) -> Value:
        if isinstance(arg, ast.TupleExpr):
            raise CompileError(arg.loc, f"'{param}' of {callee} must be a tensor, not a tuple")
        return self.expr(arg)

    def _custom(self, op: CustomOp, call: ast.Call) -> SSAValue:
        if call.kwargs:
            raise CompileError(call.kwargs[0].loc, f"{op.name} takes no keyword arguments")
        params = op.defn.params
        values: list[SSAValue] = []
        for k, arg in enumerate(call.args):
            v = self._tensor_arg(arg, op.name, params[k].name if k < len(params) else f"argument {k + 1}")
            dtype = params[k].type.dtype if k < len(params) else op.defn.result_type.dtype
            values.append(self.tensor(v, ELEMENT_TYPES[dtype]))
        return op.instantiate(call, values)


_VARIADIC = Param("inputs")
"""The parameter every positional argument of a variadic built-in (``concat``) binds to."""


def _check_arity(b: Builtin, call: ast.Call) -> None:
    lo, hi = b.arity()
    n = len(call.args)
    if lo <= n and (hi is None or n <= hi):
        return
    if hi is None:
        expects = f"at least {lo} positional argument{_s(lo)}"
    elif lo == hi:
        expects = f"{lo} positional argument{_s(lo)}"
    else:
        expects = f"{lo} to {hi} positional arguments"
    loc = call.args[hi].loc if hi is not None and n > hi else call.loc
    raise CompileError(loc, f"{b.name} expects {expects}, got {n}")


_FOLD = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _fold(op: str, a: float, b: float, loc: SourceLocation) -> float:
    """Arithmetic between two literals, done in Python."""
    if op == "/" and b == 0:
        raise CompileError(loc, "division by zero")
    return _FOLD[op](a, b)


def _check_static_type(t: ast.TensorTypeExpr) -> None:
    """Model dimensions are positive and not absurdly large (shape arithmetic stays in i64)."""
    for dim in t.dims:
        if isinstance(dim, ast.Number) and not 1 <= dim.value <= MAX_INT:
            raise CompileError(dim.loc, f"dimensions must be between 1 and {MAX_INT}, got {dim.value}")
    if math.prod(t.static_shape()) > MAX_ELEMENTS:
        raise CompileError(t.loc, f"{t.dtype}[...] has more than {MAX_ELEMENTS} elements")


def _check_result_size(name: str, result: Attribute, loc: SourceLocation) -> None:
    """A built-in's result obeys the limits of declared types: options within MAX_INT can still
    make a huge result (upsample2d(x, scale=2**31 - 1), a conv2d_transpose stride), which the
    passes then lowered for minutes and whose element count overflows i64 offsets."""
    if not isinstance(result, TensorType):
        return
    shape = list(result.get_shape())
    if any(d > MAX_INT for d in shape):
        raise CompileError(loc, f"{name}: the result {fmt_type(result)} has a dimension larger than {MAX_INT}")
    if math.prod(shape) > MAX_ELEMENTS:
        raise CompileError(loc, f"{name}: the result {fmt_type(result)} has more than {MAX_ELEMENTS} elements")


def _kind(d: ast.Decl) -> str:
    return "input" if isinstance(d, ast.InputDecl) else "state" if isinstance(d, ast.StateDecl) else "param"


def _init_text(d: ast.Decl) -> str:
    """The initialiser as recorded in the signature ("" for inputs; the default: zeros for states,
    by rank for params)."""
    if isinstance(d, ast.InputDecl):
        return ""
    if d.init is None:
        return "glorot" if d.type.rank >= 2 and not isinstance(d, ast.StateDecl) else "zeros"
    if not d.init.args:
        return d.init.kind
    return f"{d.init.kind}({', '.join(repr(a.value) for a in d.init.args)})"


def _tt(v: SSAValue) -> TensorType:
    assert isinstance(v.type, TensorType), v.type
    return v.type


def _numpy_dtype(v: SSAValue) -> np.dtype:
    return NUMPY_DTYPES[str(_tt(v).get_element_type())]

