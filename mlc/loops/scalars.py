"""Scalar code for `ix.compute` bodies: one builder per scalar function of the language.

Graph lowering and the frontend's custom ops both build bodies from these, so every scalar
function (relu, sigmoid, sign, ...) has exactly one definition. Builders create ops at the
implicit insertion point (inside `with ImplicitBuilder(block):`) and use only the scalar ops that
every backend prints. A Python number becomes a constant of its partner operand's type.
"""

from __future__ import annotations

import math as pymath
from collections.abc import Callable

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerAttr, IntegerType, UnitAttr, i64
from xdsl.ir import Attribute, Operation, SSAValue

from mlc.dialects import ix

Scalar = SSAValue | float | int
"""An SSA scalar, or a Python number that becomes a constant of its partner's type."""


def const(value: float | int, typ: Attribute) -> SSAValue:
    """`arith.constant` of a float type, or of an integer type (`index`, `i64`) for an int."""
    if isinstance(typ, IndexType | IntegerType):
        return arith.ConstantOp(IntegerAttr(int(value), typ)).result
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
remsi = _binary(arith.RemSIOp)
powf = _binary(math.PowFOp)
neg, exp, log, sqrt, absf, tanh = map(_unary, (arith.NegfOp, math.ExpOp, math.LogOp, math.SqrtOp, math.AbsFOp, math.TanhOp))
erf = _unary(math.ErfOp)


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
    return arith.SIToFPOp(arith.IndexCastOp(i, i64).result, typ).result  # pyright: ignore[reportArgumentType]


def relu(x: SSAValue) -> SSAValue:
    """relu(x) = x <= 0 ? 0 : x, so a NaN passes through (as torch.relu's does; `x > 0 ? x : 0`
    would make it 0), and the gradient with it."""
    zero = const(0.0, x.type)
    return select(cmpf("ole", x, zero), zero, x)


STRAIGHT_THROUGH = "mlc.straight_through"
"""Marks the `arith.select` of `sign`, whose derivative is the straight-through estimator."""


def sign(x: SSAValue) -> SSAValue:
    """sign(x) = x >= 0 ? 1 : -1 (so sign(0) = +1, as XNOR-Net binarises).

    Its derivative is 0 almost everywhere, which would stop all learning; LANGUAGE.md asks for the
    straight-through estimator `d sign(v)/dv = 1 if |v| <= 1 else 0` instead, so the select is
    marked and its tangent rule (below) implements that.
    """
    result = select(cmpf("oge", x, 0.0), const(1.0, x.type), -1.0)
    result.owner.attributes[STRAIGHT_THROUGH] = UnitAttr()
    return result


def minimum(a: Scalar, b: Scalar) -> SSAValue:
    return arith.MinimumfOp(_lift(a, b), _lift(b, a)).result


SIGMOID = "mlc.sigmoid"
"""Marks the `arith.divf` that ends `sigmoid`, whose tangent rule (below) is written in its result."""


def sigmoid(x: SSAValue) -> SSAValue:
    """sigmoid(x) = 1 / (1 + exp(-x)).

    Differentiated op by op, the derivative exp(-x) / (1 + exp(-x))^2 needs x; the same number
    is s (1 - s) in the result s alone, so the division is marked and its rule uses that: the
    backward then keeps the activation's output, as it does for tanh, not its input.
    """
    result = div(1.0, add(1.0, exp(neg(x))))
    result.owner.attributes[SIGMOID] = UnitAttr()
    return result


def square(x: SSAValue) -> SSAValue:
    """x * x."""
    return mul(x, x)


def silu(x: SSAValue) -> SSAValue:
    """silu(x) = x * sigmoid(x) (the backward keeps sigmoid's result, as for sigmoid itself)."""
    return mul(x, sigmoid(x))


SOFTPLUS_THRESHOLD = 20.0
"""Above it softplus(x) is x (PyTorch's threshold: log(1 + exp(x)) - x < 2.1e-9 there)."""


def softplus(x: SSAValue, beta: float = 1.0, threshold: float = SOFTPLUS_THRESHOLD) -> SSAValue:
    """softplus(x) = beta x > threshold ? x : log(1 + exp(beta x)) / beta (PyTorch's; with
    beta = 1 no multiply or divide); d/dx = sigmoid(beta x) below the threshold, 1 above.

    The branch not taken may overflow (exp(x) = inf for large x); a select never mixes it in,
    and neither does its derivative, which is the select of the branches' derivatives."""
    if beta == 1.0:
        return select(cmpf("ogt", x, threshold), x, log(add(1.0, exp(x))))
    z = mul(x, beta)
    return select(cmpf("ogt", z, threshold), x, div(log(add(1.0, exp(z))), beta))


def leaky_relu(x: SSAValue, alpha: float) -> SSAValue:
    """x > 0 ? x : alpha * x (at 0 the slope alpha, as PyTorch's gradient)."""
    return select(cmpf("ogt", x, 0.0), x, mul(alpha, x))


def elu(x: SSAValue, alpha: float) -> SSAValue:
    """x > 0 ? x : alpha * (exp(x) - 1) (at 0 the slope alpha, as PyTorch's gradient)."""
    return select(cmpf("ogt", x, 0.0), x, mul(alpha, sub(exp(x), 1.0)))


def hardtanh(x: SSAValue, lo: float, hi: float) -> SSAValue:
    """x <= lo ? lo : x >= hi ? hi : x: the slope is 1 strictly inside (lo, hi), 0 on its edges
    and outside (PyTorch's hardtanh gradient)."""
    return select(cmpf("ole", x, lo), const(lo, x.type), select(cmpf("oge", x, hi), const(hi, x.type), x))


def clamp(x: SSAValue, lo: float, hi: float) -> SSAValue:
    """x < lo ? lo : x > hi ? hi : x: the slope is 1 on [lo, hi] with its edges (PyTorch's clamp
    gradient, unlike hardtanh's)."""
    return select(cmpf("olt", x, lo), const(lo, x.type), select(cmpf("ogt", x, hi), const(hi, x.type), x))


def gelu(x: SSAValue) -> SSAValue:
    """gelu(x) = x (1 + erf(x / sqrt 2)) / 2, in the order of PyTorch's CPU kernel:
    x * 0.5 * (1 + erf(x * (1 / sqrt 2)))."""
    return mul(mul(x, 0.5), add(1.0, erf(mul(x, pymath.sqrt(0.5)))))


GELU_KAPPA = 0.044715
"""The cubic coefficient of gelu's tanh form (Hendrycks and Gimpel; PyTorch's `kKappa`)."""


def gelu_tanh(x: SSAValue) -> SSAValue:
    """gelu(x, approximate=tanh) = x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2, in the order of
    PyTorch's CPU kernel: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * (x * x * x))))."""
    inner = mul(pymath.sqrt(2.0 / pymath.pi), add(x, mul(GELU_KAPPA, mul(mul(x, x), x))))
    return mul(mul(0.5, x), add(1.0, tanh(inner)))


DETACHED = "mlc.detached"
"""Marks an op whose result passes no derivative: its tangent is 0 whatever its operands' are."""


def detached(v: SSAValue) -> SSAValue:
    """The value of `v` (as `max(v, v)`) with a zero derivative."""
    result = maximum(v, v)
    result.owner.attributes[DETACHED] = UnitAttr()
    return result


def clamp_between(x: SSAValue, lo: SSAValue, hi: SSAValue) -> SSAValue:
    """min(max(x, lo), hi) with bounds that are values (tensors), written so that the select
    rule gives torch.clamp's gradients with tensor bounds (its `clamp_backward` and
    `clamp_backward_min_max`): x gets it on lo <= x <= hi; lo where x < lo < hi; hi where
    x > hi or hi < lo; nobody where x < lo == hi (PyTorch's rule, hence `detached`).

        x < lo ? (lo < hi ? lo : lo > hi ? hi : detached(lo)) : x > hi ? hi : x

    A NaN x fails both comparisons and comes out NaN, as in PyTorch."""
    below = select(cmpf("olt", lo, hi), lo, select(cmpf("ogt", lo, hi), hi, detached(lo)))
    return select(cmpf("olt", x, lo), below, select(cmpf("ogt", x, hi), hi, x))


FUNCTIONS: dict[str, Callable[..., SSAValue]] = {
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "erf": erf,
    "exp": exp,
    "log": log,
    "sqrt": sqrt,
    "abs": absf,
    "sign": sign,
    "neg": neg,
    "square": square,
    "silu": silu,
    "softplus": softplus,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "hardtanh": hardtanh,
    "clamp": clamp,
    "max": maximum,
    "min": minimum,
}
"""The language's scalar functions by name (as in `.mlc` source and in `nn` op names); the ones after
the first argument take the op's number options, in the order of the op's `OPTIONS`."""


# ---------------------------------------------------------------------------------------------
# Derivatives: the tangent of each scalar op from its operands' tangents (forward mode).
#
# A rule gets the op, its operands (primal values, already available at the insertion point) and
# their tangents, where None is an exact zero; it returns the result's tangent (None for zero).
# Reverse mode at the index level (mlc-autodiff) only ever needs d body / d read_k, which is this
# forward-mode sweep over the scalar body with read_k's tangent set to 1.
# ---------------------------------------------------------------------------------------------
Tangent = SSAValue | None
TangentRule = Callable[[Operation, list[SSAValue], list[Tangent]], Tangent]


def _plus(a: Tangent, b: Tangent) -> Tangent:
    if a is None or b is None:
        return a if b is None else b
    return add(a, b)


def float_constant(v: SSAValue) -> float | None:
    """The value of `v` when it is a float `arith.constant`, else None."""
    owner = v.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr):
        return owner.value.value.data
    return None


def is_one(v: Scalar) -> bool:
    """Whether `v` is the constant 1 (so multiplying by it can be skipped)."""
    if not isinstance(v, SSAValue):
        return v == 1
    return float_constant(v) == 1.0


def times(a: Scalar, b: Scalar) -> SSAValue:
    """a * b, skipping a factor that is the constant 1 (derivatives are full of them)."""
    if is_one(a) and isinstance(b, SSAValue):
        return b
    if is_one(b) and isinstance(a, SSAValue):
        return a
    return mul(a, b)


def _times(t: Tangent, factor: Scalar) -> Tangent:
    return None if t is None else times(t, factor)


def _choose(cond: SSAValue, a: Tangent, b: Tangent) -> Tangent:
    """cond ? a : b for tangents."""
    if a is None and b is None:
        return None
    return select(cond, 0.0 if a is None else a, 0.0 if b is None else b)


def _straight_through(op: Operation, tangents_of: Callable[[SSAValue], Tangent]) -> Tangent:
    """d sign(v)/dv = 1 if |v| <= 1 else 0, with v the compared value."""
    compare = op.operands[0].owner
    assert isinstance(compare, arith.CmpfOp)
    v = compare.lhs
    tv = tangents_of(v)
    if tv is None:
        return None
    return select(cmpf("ole", absf(v), 1.0), tv, 0.0)


def _sigmoid_input(op: Operation) -> SSAValue | None:
    """x of a marked `div(1, add(1, exp(neg(x))))`, or None where a rewrite changed that shape."""
    chain = [(arith.DivfOp, 1), (arith.AddfOp, 1), (math.ExpOp, 0), (arith.NegfOp, 0)]
    value: SSAValue = op.results[0]
    for kind, operand in chain:
        owner = value.owner
        if not isinstance(owner, kind):
            return None
        value = owner.operands[operand]
    return value


def _sigmoid_rule(op: Operation, tangents_of: Callable[[SSAValue], Tangent]) -> Tangent:
    """sigmoid'(x) = s (1 - s), with s the result."""
    x = _sigmoid_input(op)
    assert x is not None
    tx = tangents_of(x)
    s = op.results[0]
    return None if tx is None else times(tx, mul(s, sub(1.0, s)))


def _div_rule(op: Operation, x: list[SSAValue], t: list[Tangent]) -> Tangent:
    """d(a/b) = (da - (a/b) db) / b."""
    numerator = _plus(t[0], None if t[1] is None else neg(mul(op.results[0], t[1])))
    return None if numerator is None else div(numerator, x[1])


def _abs_rule(op: Operation, x: list[SSAValue], t: list[Tangent]) -> Tangent:
    """abs'(v) = sign(v) with abs'(0) = 0."""
    (v,), (tv,) = x, t
    if tv is None:
        return None
    return select(cmpf("ogt", v, 0.0), tv, select(cmpf("olt", v, 0.0), neg(tv), 0.0))


TWO_OVER_SQRT_PI = 2.0 / pymath.sqrt(pymath.pi)


def _erf_rule(op: Operation, x: list[SSAValue], t: list[Tangent]) -> Tangent:
    """erf'(v) = 2 / sqrt(pi) exp(-v^2) (0 once exp(-v^2) underflows)."""
    (v,), (tv,) = x, t
    return _times(tv, mul(TWO_OVER_SQRT_PI, exp(neg(mul(v, v)))))


def _pow_rule(op: Operation, x: list[SSAValue], t: list[Tangent]) -> Tangent:
    """d a^b = b a^(b-1) da + log(a) a^b db (torch.pow's: the second term NaN for a < 0, and
    only there when b varies; a^(b-1) is recomputed, not a^b / a, which fails at a = 0)."""
    da = None if t[0] is None else _times(mul(t[0], x[1]), powf(x[0], sub(x[1], 1.0)))
    db = None if t[1] is None else mul(t[1], mul(log(x[0]), op.results[0]))
    return _plus(da, db)


TANGENT_RULES: dict[type[Operation], TangentRule] = {
    arith.AddfOp: lambda op, x, t: _plus(t[0], t[1]),
    arith.SubfOp: lambda op, x, t: _plus(t[0], None if t[1] is None else neg(t[1])),
    arith.MulfOp: lambda op, x, t: _plus(_times(t[0], x[1]), _times(t[1], x[0])),
    arith.DivfOp: _div_rule,
    arith.NegfOp: lambda op, x, t: None if t[0] is None else neg(t[0]),
    # max/min route the tangent to the operand they return: the first one on ties and when it
    # is NaN, as the forward does (bce's max(log p, -100) at p < 0 passes on 1/p, as PyTorch's)
    arith.MaximumfOp: lambda op, x, t: _choose(cmpf("olt", x[0], x[1]), t[1], t[0]),
    arith.MinimumfOp: lambda op, x, t: _choose(cmpf("ogt", x[0], x[1]), t[1], t[0]),
    arith.SelectOp: lambda op, x, t: _choose(x[0], t[1], t[2]),
    math.ExpOp: lambda op, x, t: _times(t[0], op.results[0]),
    math.LogOp: lambda op, x, t: None if t[0] is None else div(t[0], x[0]),
    # sqrt'(v) = 1 / (2 sqrt(v)): +inf at 0, as IEEE arithmetic gives
    math.SqrtOp: lambda op, x, t: None if t[0] is None else div(t[0], mul(2.0, op.results[0])),
    math.AbsFOp: _abs_rule,
    math.TanhOp: lambda op, x, t: _times(t[0], sub(1.0, mul(op.results[0], op.results[0]))),
    math.PowFOp: _pow_rule,
    math.ErfOp: _erf_rule,
}
"""Ops absent here (constants, comparisons, index arithmetic, casts) have zero tangent."""

ZERO_TANGENT: tuple[type[Operation], ...] = (
    arith.ConstantOp, arith.CmpfOp, arith.CmpiOp, arith.SIToFPOp, arith.IndexCastOp, arith.AddiOp, arith.SubiOp,
    arith.MuliOp, arith.FloorDivSIOp, arith.RemSIOp, arith.DivSIOp, arith.MaxSIOp, arith.MinSIOp, ix.IndexOp,
)


def tangent(op: Operation, operands: list[SSAValue], tangents: list[Tangent],
            tangents_of: Callable[[SSAValue], Tangent]) -> Tangent:
    """The tangent of `op`'s (single) result, building the ops that compute it."""
    if DETACHED in op.attributes:
        return None
    if isinstance(op, arith.SelectOp) and STRAIGHT_THROUGH in op.attributes:
        return _straight_through(op, tangents_of)
    if SIGMOID in op.attributes and _sigmoid_input(op) is not None:
        return _sigmoid_rule(op, tangents_of)
    if isinstance(op, ZERO_TANGENT) or all(t is None for t in tangents):
        return None
    rule = TANGENT_RULES.get(type(op))
    if rule is None:
        raise NotImplementedError(f"no derivative rule for '{op.name}'")
    return rule(op, operands, tangents)
