"""Scalar code for `ix.compute` bodies: one builder per scalar function of the language.

Graph lowering and the frontend's custom ops both build bodies from these, so every scalar
function (relu, sigmoid, sign, ...) has exactly one definition. Builders create ops at the
implicit insertion point (inside `with ImplicitBuilder(block):`) and use only the scalar ops that
every backend prints. A Python number becomes a constant of its partner operand's type.
"""

from __future__ import annotations

from collections.abc import Callable

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerAttr, IntegerType
from xdsl.ir import Attribute, Operation, SSAValue

from mlc.dialects import ix

Scalar = SSAValue | float | int
"""An SSA scalar, or a Python number that becomes a constant of its partner's type."""


def const(value: float | int, typ: Attribute) -> SSAValue:
    """`arith.constant` of a float type, or of `index` for an int with an index partner."""
    if isinstance(typ, IndexType):
        return arith.ConstantOp(IntegerAttr(int(value), IndexType())).result
    return arith.ConstantOp(FloatAttr(float(value), typ)).result  # pyright: ignore[reportArgumentType]


def _lift(v: Scalar, like: Scalar) -> SSAValue:
    if isinstance(v, SSAValue):
        return v
    assert isinstance(like, SSAValue), "at least one operand must be an SSA value"
    return const(v, like.type)


def _binary(op_cls: type[Operation]) -> Callable[[Scalar, Scalar], SSAValue]:
    def build(a: Scalar, b: Scalar) -> SSAValue:
        return op_cls(_lift(a, b), _lift(b, a)).results[0]  # pyright: ignore[reportCallIssue]

    build.__name__ = op_cls.name.split(".")[1]
    return build


def _unary(op_cls: type[Operation]) -> Callable[[SSAValue], SSAValue]:
    def build(a: SSAValue) -> SSAValue:
        return op_cls(a).results[0]  # pyright: ignore[reportCallIssue]

    build.__name__ = op_cls.name.split(".")[1]
    return build


add, sub, mul, div, maximum = map(_binary, (arith.AddfOp, arith.SubfOp, arith.MulfOp, arith.DivfOp, arith.MaximumfOp))
addi, subi, muli, maxsi, minsi = map(_binary, (arith.AddiOp, arith.SubiOp, arith.MuliOp, arith.MaxSIOp, arith.MinSIOp))
neg, exp, log, sqrt, absf, tanh = map(_unary, (arith.NegfOp, math.ExpOp, math.LogOp, math.SqrtOp, math.AbsFOp, math.TanhOp))


def cmpf(predicate: str, a: Scalar, b: Scalar) -> SSAValue:
    return arith.CmpfOp(_lift(a, b), _lift(b, a), predicate).result


def cmpi(predicate: str, a: Scalar, b: Scalar) -> SSAValue:
    return arith.CmpiOp(_lift(a, b), _lift(b, a), predicate).result


def select(cond: SSAValue, a: Scalar, b: Scalar) -> SSAValue:
    return arith.SelectOp(cond, _lift(a, b), _lift(b, a)).result


def index(dim: int) -> SSAValue:
    """The iteration variable `dim` (output dims first, then reduction variables)."""
    return ix.IndexOp(dim).result


def index_to_float(i: SSAValue, typ: Attribute) -> SSAValue:
    """index -> i64 -> float (arith.sitofp takes signless integers only)."""
    return arith.SIToFPOp(arith.IndexCastOp(i, IntegerType(64)).result, typ).result  # pyright: ignore[reportArgumentType]


def relu(x: SSAValue) -> SSAValue:
    """relu(x) = x > 0 ? x : 0."""
    zero = const(0.0, x.type)
    return select(cmpf("ogt", x, zero), x, zero)


def sign(x: SSAValue) -> SSAValue:
    """sign(x) = x >= 0 ? 1 : -1 (so sign(0) = +1, as XNOR-Net binarises)."""
    return select(cmpf("oge", x, 0.0), const(1.0, x.type), -1.0)


def minimum(a: Scalar, b: Scalar) -> SSAValue:
    return arith.MinimumfOp(_lift(a, b), _lift(b, a)).result


def sigmoid(x: SSAValue) -> SSAValue:
    """sigmoid(x) = 1 / (1 + exp(-x))."""
    return div(1.0, add(1.0, exp(neg(x))))


FUNCTIONS: dict[str, Callable[..., SSAValue]] = {
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "exp": exp,
    "log": log,
    "sqrt": sqrt,
    "abs": absf,
    "sign": sign,
    "neg": neg,
    "max": maximum,
    "min": minimum,
}
"""The language's scalar functions by name (as in `.mlc` source and in `nn` op names)."""
