"""The scalar body of a custom op's compute op: ``arith``/``math`` ops built from the body's AST."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from xdsl.dialects import arith
from xdsl.dialects.builtin import FloatAttr, i64
from xdsl.ir import Attribute, SSAValue

from mlc.loops import scalars
from mlc.dialects import ix
from mlc.frontend.language import ast

CMPF_PREDICATES = {"<": "olt", "<=": "ole", ">": "ogt", ">=": "oge", "==": "oeq", "!=": "une"}


# ---------------------------------------------------------------------------- body emission


@dataclass
class BodyEmitter:
    """Builds the scalar body of a compute op (at the implicit insertion point) from the AST.

    * literals and dimension names: ``arith.constant`` of the element type;
    * an index variable used as a value: ``ix.index`` -> ``arith.index_cast`` to i64 ->
      ``arith.sitofp``;
    * reads (subscripts, rank-0 parameters, hoisted reductions): the block argument of the read;
    * ``+ - * /`` and unary minus: ``arith.addf/subf/mulf/divf/negf``;
    * scalar functions (``exp``, ``relu``, ``max``, ...): the shared builders of `mlc.scalars`;
    * ``select(a OP b, c, d)``: ``arith.cmpf`` with an ordered predicate (``une`` for ``!=``)
      and ``arith.select``.
    """

    elt: Attribute
    positions: Mapping[str, int]
    dims: Mapping[str, int]
    read_of: Mapping[int, int]
    args: Sequence[SSAValue] = ()
    _cache: dict[object, SSAValue] = field(default_factory=dict)

    def emit(self, e: ast.Expr, args: Sequence[SSAValue]) -> SSAValue:
        self.args, self._cache = args, {}
        return self.value(e)

    def value(self, e: ast.Expr) -> SSAValue:
        if id(e) in self.read_of:
            return self.args[self.read_of[id(e)]]
        if isinstance(e, ast.Number):
            return self.const(float(e.value))
        if isinstance(e, ast.Name):
            if e.name in self.positions:
                return self.index(self.positions[e.name])
            return self.const(float(self.dims[e.name]))
        if isinstance(e, ast.Unary):
            return arith.NegfOp(self.value(e.operand)).result
        if isinstance(e, ast.Binary):
            cls = {"+": arith.AddfOp, "-": arith.SubfOp, "*": arith.MulfOp, "/": arith.DivfOp}[e.op]
            return cls(self.value(e.lhs), self.value(e.rhs)).result
        assert isinstance(e, ast.Call), e
        return self._call(e)

    def const(self, v: float) -> SSAValue:
        key = ("c", repr(v))  # repr keeps -0.0 apart from 0.0
        if key not in self._cache:
            self._cache[key] = arith.ConstantOp(FloatAttr(v, self.elt)).result  # type: ignore[arg-type]
        return self._cache[key]

    def index(self, dim: int) -> SSAValue:
        if ("i", dim) not in self._cache:
            as_int = arith.IndexCastOp(ix.IndexOp(dim).result, i64).result
            self._cache[("i", dim)] = arith.SIToFPOp(as_int, self.elt).result  # type: ignore[arg-type]
        return self._cache[("i", dim)]

    def _call(self, e: ast.Call) -> SSAValue:
        if e.func == "select":
            cond, a, b = e.args
            assert isinstance(cond, ast.Compare)
            flag = arith.CmpfOp(self.value(cond.lhs), self.value(cond.rhs), CMPF_PREDICATES[cond.op]).result
            return arith.SelectOp(flag, self.value(a), self.value(b)).result
        args = [self.value(a) for a in e.args]
        return scalars.FUNCTIONS[e.func](*args)
