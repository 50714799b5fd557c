"""The reductions and normalisations of `nn`: sum and mean over axes, softmax, batch and layer norm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import DenseArrayBase, FloatAttr, IntegerAttr, TensorType, f64, i64
from xdsl.ir import SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def

from mlc.dialects.nn.base import FORMAT_1, GraphOp, ShapeError, i64_array, int_tuple, tensor_type, fmt
from mlc.dialects.nn.elementwise import UnaryOp


# -- reductions and normalisations ------------------------------------------------------------
class _AxisReduce(GraphOp):
    x = operand_def(TensorType)
    out = result_def(TensorType)
    axes = prop_def(DenseArrayBase.constr(i64))
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, axes: Sequence[int]):
        super().__init__(operands=[x], result_types=[tensor_type(x)], properties={"axes": i64_array(sorted(set(axes)))})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        shape = tensor_type(self.x).get_shape()
        axes = int_tuple(self.axes)
        if any(not 0 <= a < len(shape) for a in axes):
            raise ShapeError(f"axis {list(axes)} out of range for {fmt(tensor_type(self.x))}")
        return self.tensor([d for k, d in enumerate(shape) if k not in axes])


@irdl_op_definition
class SumOp(_AxisReduce):
    """Sum over `axes` (dimensions removed)."""

    name = "nn.sum"


@irdl_op_definition
class MeanOp(_AxisReduce):
    """Mean over `axes` (dimensions removed)."""

    name = "nn.mean"


@irdl_op_definition
class MaxOp(_AxisReduce):
    """Maximum over `axes` (dimensions removed); the gradient goes to the first maximal element in
    row-major order."""

    name = "nn.max"


@irdl_op_definition
class MinOp(_AxisReduce):
    """Minimum over `axes` (dimensions removed); the gradient goes to the first minimal element in
    row-major order."""

    name = "nn.min"


class _LastAxis(UnaryOp):
    def infer(self) -> TensorType:
        if tensor_type(self.x).get_num_dims() < 1:
            raise ShapeError(f"{self.name.split('.')[1]} needs rank >= 1, got {fmt(tensor_type(self.x))}")
        return tensor_type(self.x)


@irdl_op_definition
class SoftmaxOp(_LastAxis):
    """Softmax over the last axis."""

    name = "nn.softmax"


@irdl_op_definition
class LogSoftmaxOp(_LastAxis):
    """Log-softmax over the last axis."""

    name = "nn.log_softmax"


def _check_channels(x: TensorType, named: Sequence[tuple[str, SSAValue]], scalar_ok: bool) -> None:
    """Batch norm's per-channel operands are [C], C the last dim of `x` (gamma/beta also [], the
    constants 1 and 0 of batch norm without affine parameters)."""
    if x.get_num_dims() < 2:
        raise ShapeError(f"batchnorm input needs rank >= 2, got {fmt(x)}")
    c = x.get_shape()[-1]
    for what, v in named:
        shape = tensor_type(v).get_shape()
        if (shape != (c,) and not (scalar_ok and shape == ())) or tensor_type(v).get_element_type() != x.get_element_type():
            raise ShapeError(f"{what} must be [{c}] for input {fmt(x)}, got {fmt(tensor_type(v))}")


@irdl_op_definition
class BatchNormOp(GraphOp):
    """Batch norm with the batch's statistics in both modes: over all axes but the last, biased
    variance."""

    name = "nn.batchnorm"
    x = operand_def(TensorType)
    gamma = operand_def(TensorType)
    beta = operand_def(TensorType)
    out = result_def(TensorType)
    eps = prop_def(FloatAttr)
    assembly_format = "$x `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, gamma: SSAValue, beta: SSAValue, eps: float = 1e-5):
        super().__init__(operands=[x, gamma, beta], result_types=[tensor_type(x)], properties={"eps": FloatAttr(eps, f64)})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        x = tensor_type(self.x)
        _check_channels(x, (("gamma", self.gamma), ("beta", self.beta)), scalar_ok=True)
        return x


@irdl_op_definition
class RunningBatchNormOp(GraphOp):
    """PyTorch's BatchNorm with running statistics `mean` and `var`, two model states of shape [C].

    What it computes depends on the mode mlc-lower-graph lowers it in: inference normalises with
    the running statistics; training with the batch's (as `nn.batchnorm`), and its lowering also
    computes the states' updates (momentum, unbiased variance), which become results of the
    function tied to the states (`mlc.in_place`)."""

    name = "nn.batchnorm_running"
    KEEPS_LOCATION: ClassVar[bool] = True
    x = operand_def(TensorType)
    gamma = operand_def(TensorType)
    beta = operand_def(TensorType)
    mean = operand_def(TensorType)
    var = operand_def(TensorType)
    out = result_def(TensorType)
    eps = prop_def(FloatAttr)
    momentum = prop_def(FloatAttr)
    assembly_format = "$x `,` $gamma `,` $beta `,` $mean `,` $var attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, gamma: SSAValue, beta: SSAValue, mean: SSAValue, var: SSAValue,
                 eps: float = 1e-5, momentum: float = 0.1):
        props = {"eps": FloatAttr(eps, f64), "momentum": FloatAttr(momentum, f64)}
        super().__init__(operands=[x, gamma, beta, mean, var], result_types=[tensor_type(x)], properties=props)
        self._set_inferred_type()

    def infer(self) -> TensorType:
        x = tensor_type(self.x)
        _check_channels(x, (("gamma", self.gamma), ("beta", self.beta)), scalar_ok=True)
        _check_channels(x, (("mean", self.mean), ("var", self.var)), scalar_ok=False)
        if not 0.0 <= self.momentum.value.data <= 1.0:
            raise ShapeError(f"momentum must be between 0 and 1, got {self.momentum.value.data}")
        return x


@irdl_op_definition
class LayerNormOp(GraphOp):
    """Normalisation over the last `axes` dims (biased variance), scaled and shifted by `gamma` and
    `beta` of those dims' shape (PyTorch's LayerNorm)."""

    name = "nn.layernorm"
    x = operand_def(TensorType)
    gamma = operand_def(TensorType)
    beta = operand_def(TensorType)
    out = result_def(TensorType)
    eps = prop_def(FloatAttr)
    axes = prop_def(IntegerAttr[i64])
    assembly_format = "$x `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, gamma: SSAValue, beta: SSAValue, eps: float = 1e-5, axes: int = 1):
        props = {"eps": FloatAttr(eps, f64), "axes": IntegerAttr(axes, i64)}
        super().__init__(operands=[x, gamma, beta], result_types=[tensor_type(x)], properties=props)
        self._set_inferred_type()

    def infer(self) -> TensorType:
        x, axes = tensor_type(self.x), self.axes.value.data
        if not 1 <= axes <= x.get_num_dims():
            raise ShapeError(f"axes={axes} must be between 1 and the rank of {fmt(x)}")
        normalised = x.get_shape()[x.get_num_dims() - axes:]
        for what, v in (("gamma", self.gamma), ("beta", self.beta)):
            if tensor_type(v).get_shape() != normalised:
                raise ShapeError(f"{what} must be {fmt(normalised)} for input {fmt(x)}, got {fmt(tensor_type(v))}")
        return x
