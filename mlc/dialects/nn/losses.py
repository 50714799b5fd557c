"""The losses of `nn`: two tensors of one shape in, a scalar out."""

from __future__ import annotations

from xdsl.dialects.builtin import TensorType
from xdsl.ir import SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, result_def

from mlc.dialects.nn.base import FORMAT_2, GraphOp, ShapeError, tensor_type, fmt


class LossOp(GraphOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_2

    def __init__(self, lhs: SSAValue, rhs: SSAValue):
        super().__init__(operands=[lhs, rhs], result_types=[TensorType(tensor_type(lhs).get_element_type(), [])])

    def infer(self) -> TensorType:
        a, b = tensor_type(self.lhs), tensor_type(self.rhs)
        if a.get_shape() != b.get_shape():
            raise ShapeError(f"{self.name.split('.')[1]} needs equal shapes, got {fmt(a)} and {fmt(b)}")
        if a.get_num_dims() < 1:
            raise ShapeError(f"{self.name.split('.')[1]} needs tensors of rank >= 1, got {fmt(a)}")
        return self.tensor(())


@irdl_op_definition
class MSEOp(LossOp):
    """mean((target - pred)^2) over all elements."""

    name = "nn.mse"


@irdl_op_definition
class BCEOp(LossOp):
    """-(1/N) sum [t log p + (1-t) log(1-p)], logs clamped below at -100, N = first dimension."""

    name = "nn.bce"


@irdl_op_definition
class BCELogitsOp(LossOp):
    """bce(sigmoid(z), t) computed stably: (1/N) sum [max(z, 0) - z t + log(1 + exp(-|z|))]."""

    name = "nn.bce_logits"


@irdl_op_definition
class SoftmaxCrossEntropyOp(LossOp):
    """-(1/N) sum_n sum_k t[n,k] log_softmax(logits)[n,k]."""

    name = "nn.softmax_cross_entropy"


@irdl_op_definition
class KLNormalOp(LossOp):
    """(1/N) sum_n 0.5 sum_j (mu^2 + exp(logvar) - logvar - 1)."""

    name = "nn.kl_normal"
