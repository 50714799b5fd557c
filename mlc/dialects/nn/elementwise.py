"""The elementwise ops of `nn`: unary functions, broadcasting binary arithmetic, scalar constants."""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.builtin import FloatAttr, StringAttr, TensorType, f64
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, opt_prop_def, prop_def, result_def

from mlc.dialects.nn.base import FORMAT_1, FORMAT_2, GraphOp, ShapeError, broadcast_shapes, fmt, tensor_type


# -- elementwise ------------------------------------------------------------------------------
class UnaryOp(GraphOp):
    x = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue):
        super().__init__(operands=[x], result_types=[tensor_type(x)])

    def infer(self) -> TensorType:
        return tensor_type(self.x)


def _unary(op_name: str, doc: str) -> type[UnaryOp]:
    cls = type(f"{op_name.capitalize()}Op", (UnaryOp,), {"name": f"nn.{op_name}", "__doc__": doc})
    return irdl_op_definition(cls)


ReluOp = _unary("relu", "max(x, 0); relu'(0) = 0.")
SigmoidOp = _unary("sigmoid", "1 / (1 + exp(-x)).")
TanhOp = _unary("tanh", "tanh(x).")
ExpOp = _unary("exp", "exp(x).")
LogOp = _unary("log", "log(x).")
SqrtOp = _unary("sqrt", "sqrt(x).")
AbsOp = _unary("abs", "|x|; abs'(0) = 0.")
SignOp = _unary("sign", "+1 if x >= 0 else -1 (straight-through gradient).")
NegOp = _unary("neg", "-x.")
SquareOp = _unary("square", "x * x.")
SiluOp = _unary("silu", "x * sigmoid(x).")
ErfOp = _unary("erf", "The error function 2/sqrt(pi) ∫_0^x exp(-t^2) dt.")
UNARY: dict[str, type[UnaryOp]] = {
    c.name.split(".")[1]: c
    for c in (ReluOp, SigmoidOp, TanhOp, ExpOp, LogOp, SqrtOp, AbsOp, SignOp, NegOp, SquareOp, SiluOp, ErfOp)
}


@irdl_op_definition
class GeluOp(UnaryOp):
    """x (1 + erf(x / sqrt 2)) / 2, or with `approximate = "tanh"` PyTorch's tanh form
    x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2. The property is absent for the exact form."""

    name = "nn.gelu"
    APPROXIMATIONS: ClassVar[tuple[str, ...]] = ("none", "tanh")
    approximate = opt_prop_def(StringAttr)

    def __init__(self, x: SSAValue, approximate: str = "none"):
        super().__init__(x)
        if approximate != "none":
            self.properties["approximate"] = StringAttr(approximate)

    def approximation(self) -> str:
        return "none" if self.approximate is None else self.approximate.data

    def infer(self) -> TensorType:
        if self.approximation() not in self.APPROXIMATIONS:
            raise ShapeError(f"approximate must be none or tanh, got {self.approximation()}")
        return super().infer()


class ActivationOp(GraphOp):
    """An elementwise function with number options (`leaky_relu(x, alpha=0.2)`): one f64 property
    per name in `OPTIONS`, given to the scalar function of the op's name in that order."""

    OPTIONS: ClassVar[tuple[str, ...]] = ()
    x = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, **options: float):
        props = {name: FloatAttr(float(options[name]), f64) for name in self.OPTIONS}
        super().__init__(operands=[x], result_types=[tensor_type(x)], properties=props)

    def options(self) -> tuple[float, ...]:
        return tuple(self.option(name) for name in self.OPTIONS)

    def option(self, name: str) -> float:
        attr = self.properties[name]
        assert isinstance(attr, FloatAttr)
        return attr.value.data

    def infer(self) -> TensorType:
        return tensor_type(self.x)


class _AlphaActivation(ActivationOp):
    OPTIONS: ClassVar[tuple[str, ...]] = ("alpha",)
    alpha = prop_def(FloatAttr)


class _RangeActivation(ActivationOp):
    OPTIONS: ClassVar[tuple[str, ...]] = ("lo", "hi")
    lo = prop_def(FloatAttr)
    hi = prop_def(FloatAttr)

    def infer(self) -> TensorType:
        if self.option("lo") > self.option("hi"):
            raise ShapeError(f"lo={self.option('lo'):g} is greater than hi={self.option('hi'):g}")
        return super().infer()


@irdl_op_definition
class LeakyReluOp(_AlphaActivation):
    """x > 0 ? x : alpha * x."""

    name = "nn.leaky_relu"


@irdl_op_definition
class EluOp(_AlphaActivation):
    """x > 0 ? x : alpha * (exp(x) - 1)."""

    name = "nn.elu"


@irdl_op_definition
class HardtanhOp(_RangeActivation):
    """min(max(x, lo), hi), with PyTorch's gradient: 1 strictly between lo and hi, else 0."""

    name = "nn.hardtanh"


@irdl_op_definition
class ClampOp(_RangeActivation):
    """min(max(x, lo), hi), with PyTorch's gradient: 1 on [lo, hi] including its edges, else 0."""

    name = "nn.clamp"


@irdl_op_definition
class SoftplusOp(ActivationOp):
    """PyTorch's softplus: x where beta * x > threshold, else log(1 + exp(beta * x)) / beta. A
    property at its default (beta = 1, threshold = 20) is left out of the IR."""

    name = "nn.softplus"
    OPTIONS: ClassVar[tuple[str, ...]] = ("beta", "threshold")
    DEFAULTS: ClassVar[dict[str, float]] = {"beta": 1.0, "threshold": 20.0}
    beta = opt_prop_def(FloatAttr)
    threshold = opt_prop_def(FloatAttr)

    def __init__(self, x: SSAValue, beta: float = 1.0, threshold: float = 20.0):
        super().__init__(x, beta=beta, threshold=threshold)
        for name, default in self.DEFAULTS.items():
            if self.option(name) == default:
                del self.properties[name]

    def option(self, name: str) -> float:
        return self.DEFAULTS[name] if name not in self.properties else super().option(name)

    def infer(self) -> TensorType:
        if self.option("beta") == 0:
            raise ShapeError("beta must not be 0")
        return super().infer()


ACTIVATIONS: dict[str, type[ActivationOp]] = {
    c.name.split(".")[1]: c for c in (LeakyReluOp, EluOp, HardtanhOp, ClampOp, SoftplusOp)
}


@irdl_op_definition
class ClampTensorOp(GraphOp):
    """min(max(x, lo), hi) with tensor bounds, the three broadcast together (torch.clamp with
    tensors: hi where lo > hi), with torch's gradients (`mlc.loops.scalars.clamp_between`)."""

    name = "nn.clamp_tensor"
    x = operand_def(TensorType)
    lo = operand_def(TensorType)
    hi = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = "$x `,` $lo `,` $hi attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, lo: SSAValue, hi: SSAValue):
        super().__init__(operands=[x, lo, hi], result_types=[tensor_type(x)])
        self._set_inferred_type()

    def infer(self) -> TensorType:
        x, lo, hi = (tensor_type(v) for v in (self.x, self.lo, self.hi))
        try:
            return self.tensor(broadcast_shapes(broadcast_shapes(x.get_shape(), lo.get_shape()), hi.get_shape()))
        except ShapeError:
            raise ShapeError(f"x {fmt(x)}, lo {fmt(lo)} and hi {fmt(hi)} do not broadcast") from None


class BinaryOp(GraphOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_2

    def __init__(self, lhs: SSAValue, rhs: SSAValue):
        super().__init__(operands=[lhs, rhs], result_types=[tensor_type(lhs)])
        self._set_inferred_type()

    def infer(self) -> TensorType:
        return self.tensor(broadcast_shapes(tensor_type(self.lhs).get_shape(), tensor_type(self.rhs).get_shape()))


def _binary(op_name: str, doc: str) -> type[BinaryOp]:
    cls = type(f"{op_name.capitalize()}Op", (BinaryOp,), {"name": f"nn.{op_name}", "__doc__": doc})
    return irdl_op_definition(cls)


AddOp = _binary("add", "lhs + rhs with NumPy broadcasting.")
SubOp = _binary("sub", "lhs - rhs with NumPy broadcasting.")
MulOp = _binary("mul", "lhs * rhs with NumPy broadcasting.")
DivOp = _binary("div", "lhs / rhs with NumPy broadcasting.")
BINARY: dict[str, type[BinaryOp]] = {"+": AddOp, "-": SubOp, "*": MulOp, "/": DivOp}
MaximumOp = _binary("maximum", "max(lhs, rhs) with NumPy broadcasting; on ties the gradient goes to lhs.")
PowOp = _binary("pow", "lhs ** rhs with NumPy broadcasting (torch.pow).")
MinimumOp = _binary("minimum", "min(lhs, rhs) with NumPy broadcasting; on ties the gradient goes to lhs.")


@irdl_op_definition
class ConstantOp(GraphOp):
    """A scalar literal (`f32[]`/`f64[]`)."""

    name = "nn.constant"
    value = prop_def(FloatAttr)
    out = result_def(TensorType)
    assembly_format = "$value attr-dict `:` type($out)"

    def __init__(self, value: float, element_type: Attribute):
        super().__init__(result_types=[TensorType(element_type, [])], properties={"value": FloatAttr(float(value), f64)})

    def element_type(self) -> Attribute:
        return tensor_type(self.out).get_element_type()

    def infer(self) -> TensorType:
        return tensor_type(self.out) if tensor_type(self.out).get_num_dims() == 0 else self.tensor(())
