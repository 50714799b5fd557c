"""The shape ops of `nn`: reshape and concatenation."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import IntegerAttr, TensorType, i64
from xdsl.ir import SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, prop_def, result_def, var_operand_def

from mlc.dialects.nn.base import FORMAT_1, GraphOp, ShapeError, tensor_type, fmt


# -- shape ops --------------------------------------------------------------------------------
@irdl_op_definition
class ReshapeOp(GraphOp):
    """Row-major reinterpretation to the result shape (flatten is a reshape to [N, rest])."""

    name = "nn.reshape"
    x = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, shape: Sequence[int]):
        super().__init__(operands=[x], result_types=[TensorType(tensor_type(x).get_element_type(), list(shape))])

    def infer(self) -> TensorType:
        got = self.results[0].type
        assert isinstance(got, TensorType)
        if _count(tensor_type(self.x).get_shape()) != _count(got.get_shape()):
            raise ShapeError(f"cannot reshape {fmt(tensor_type(self.x))} ({_count(tensor_type(self.x).get_shape())} elements) to {fmt(got)}")
        return got


def _count(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@irdl_op_definition
class ConcatOp(GraphOp):
    """Concatenation along `axis` (non-negative here)."""

    name = "nn.concat"
    inputs = var_operand_def(TensorType)
    out = result_def(TensorType)
    axis = prop_def(IntegerAttr[i64])
    assembly_format = "$inputs attr-dict `:` functional-type(operands, results)"

    def __init__(self, inputs: Sequence[SSAValue], axis: int):
        super().__init__(operands=[list(inputs)], result_types=[tensor_type(inputs[0])], properties={"axis": IntegerAttr(axis, i64)})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        types = [tensor_type(v) for v in self.inputs]
        axis, rank = self.axis.value.data, types[0].get_num_dims()
        if not 0 <= axis < rank:
            raise ShapeError(f"axis {axis} is out of range for rank {rank}")
        total = 0
        for t in types:
            if t.get_num_dims() != rank or any(
                a != b for k, (a, b) in enumerate(zip(t.get_shape(), types[0].get_shape())) if k != axis
            ):
                raise ShapeError(f"shapes {fmt(types[0])} and {fmt(t)} differ outside axis {axis}")
            total += t.get_shape()[axis]
        shape = list(types[0].get_shape())
        shape[axis] = total
        return self.tensor(shape)
