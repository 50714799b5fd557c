"""The shape ops of `nn`: reshape, concatenation, transposition, broadcasting, slicing, constant
padding and upsampling (nearest-neighbour and bilinear)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from xdsl.dialects.builtin import DenseArrayBase, FloatAttr, IntegerAttr, StringAttr, TensorType, f64, i64
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, opt_prop_def, prop_def, result_def, var_operand_def

from mlc.dialects.nn.base import FORMAT_1, GraphOp, ShapeError, fmt, i64_array, int_tuple, tensor_type


# -- shape ops --------------------------------------------------------------------------------
class _ToShapeOp(GraphOp):
    """An op of one tensor whose result shape is given (its `infer` checks it against x's)."""

    x = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, shape: Sequence[int]):
        super().__init__(operands=[x], result_types=[TensorType(tensor_type(x).get_element_type(), list(shape))])


@irdl_op_definition
class ReshapeOp(_ToShapeOp):
    """Row-major reinterpretation to the result shape (flatten is a reshape to [N, rest])."""

    name = "nn.reshape"

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


@irdl_op_definition
class TransposeOp(GraphOp):
    """Dims permuted as NumPy's `transpose(x, perm)`: `y.shape[d] = x.shape[perm[d]]`."""

    name = "nn.transpose"
    x = operand_def(TensorType)
    out = result_def(TensorType)
    perm = prop_def(DenseArrayBase)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, perm: Sequence[int]):
        super().__init__(operands=[x], result_types=[tensor_type(x)], properties={"perm": i64_array(perm)})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        shape, perm = tensor_type(self.x).get_shape(), int_tuple(self.perm)
        if sorted(perm) != list(range(len(shape))):
            raise ShapeError(f"{list(perm)} is not a permutation of the {len(shape)} dims of {fmt(tensor_type(self.x))}")
        return self.tensor([shape[p] for p in perm])


@irdl_op_definition
class BroadcastToOp(_ToShapeOp):
    """NumPy's `broadcast_to(x, shape)`: x's dims aligned with the trailing dims of `shape`, each
    equal to its target or 1 (repeated along it); the leading dims of `shape` repeat all of x."""

    name = "nn.broadcast_to"

    def infer(self) -> TensorType:
        got = tensor_type(self.out)
        source, target = tensor_type(self.x).get_shape(), got.get_shape()
        lead = len(target) - len(source)
        if lead < 0 or any(d not in (1, t) for d, t in zip(source, target[lead:])) or 0 in target:
            raise ShapeError(f"cannot broadcast {fmt(tensor_type(self.x))} to {fmt(got)}")
        return got


@irdl_op_definition
class SliceOp(GraphOp):
    """`y[.., k, ..] = x[.., start + k * step, ..]` along `axis`, for k < the result's size there
    (the frontend turns Python's start/stop/step into these; `step` may be negative)."""

    name = "nn.slice"
    x = operand_def(TensorType)
    out = result_def(TensorType)
    axis = prop_def(IntegerAttr[i64])
    start = prop_def(IntegerAttr[i64])
    step = prop_def(IntegerAttr[i64])
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, axis: int, start: int, step: int, count: int):
        shape = list(tensor_type(x).get_shape())
        shape[axis] = count
        props = {"axis": IntegerAttr(axis, i64), "start": IntegerAttr(start, i64), "step": IntegerAttr(step, i64)}
        super().__init__(operands=[x], result_types=[TensorType(tensor_type(x).get_element_type(), shape)], properties=props)

    def infer(self) -> TensorType:
        x, got = tensor_type(self.x), tensor_type(self.out)
        axis, start, step = self.axis.value.data, self.start.value.data, self.step.value.data
        if not 0 <= axis < x.get_num_dims():
            raise ShapeError(f"axis {axis} is out of range for {fmt(x)}")
        count, size = got.get_shape()[axis], x.get_shape()[axis]
        last = start + (count - 1) * step
        if step == 0 or not (0 <= start < size and 0 <= last < size):
            raise ShapeError(f"{count} elements from {start} by {step} leave axis {axis} of {fmt(x)}")
        shape = list(x.get_shape())
        shape[axis] = count
        return self.tensor(shape)


@irdl_op_definition
class PadOp(GraphOp):
    """Constant padding: `pads` holds (before, after) for each of the first len(pads) / 2 dims;
    `y[i] = x[i - before]` inside `x`, `value` outside."""

    name = "nn.pad"
    x = operand_def(TensorType)
    out = result_def(TensorType)
    pads = prop_def(DenseArrayBase)
    value = prop_def(FloatAttr)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, pads: Sequence[int], value: float = 0.0):
        props = {"pads": i64_array(pads), "value": FloatAttr(float(value), f64)}
        super().__init__(operands=[x], result_types=[tensor_type(x)], properties=props)
        self._set_inferred_type()

    def before(self) -> list[int]:
        """The padding before each dim (0 for those without a pair)."""
        pads = int_tuple(self.pads)
        return [pads[2 * k] if 2 * k < len(pads) else 0 for k in range(tensor_type(self.x).get_num_dims())]

    def infer(self) -> TensorType:
        x, pads = tensor_type(self.x), int_tuple(self.pads)
        if len(pads) % 2 or len(pads) > 2 * x.get_num_dims() or min(pads, default=0) < 0:
            raise ShapeError(f"padding {list(pads)} is not one (before, after) pair of sizes >= 0 per dim of {fmt(x)}")
        shape = list(x.get_shape())
        for k in range(len(pads) // 2):
            shape[k] += pads[2 * k] + pads[2 * k + 1]
        return self.tensor(shape)


@irdl_op_definition
class UpsampleOp(GraphOp):
    """Upsampling of NHWC images by integer factors: nearest-neighbour, `y[n, i, j, c] = x[n, i / sh,
    j / sw, c]`, or with `mode = "bilinear"` PyTorch's bilinear interpolation with
    `align_corners=False`. `mode` is absent for nearest."""

    name = "nn.upsample2d"
    MODES: ClassVar[tuple[str, ...]] = ("nearest", "bilinear")
    x = operand_def(TensorType)
    out = result_def(TensorType)
    scale = prop_def(DenseArrayBase)
    mode = opt_prop_def(StringAttr)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, scale: Sequence[int], mode: str = "nearest"):
        props: dict[str, Attribute] = {"scale": i64_array(scale)}
        if mode != "nearest":
            props["mode"] = StringAttr(mode)
        super().__init__(operands=[x], result_types=[tensor_type(x)], properties=props)
        self._set_inferred_type()

    def interpolation(self) -> str:
        return "nearest" if self.mode is None else self.mode.data

    def infer(self) -> TensorType:
        x, (sh, sw) = tensor_type(self.x), int_tuple(self.scale)
        if self.interpolation() not in self.MODES:
            raise ShapeError(f"mode must be nearest or bilinear, got {self.interpolation()}")
        if x.get_num_dims() != 4:
            raise ShapeError(f"upsample2d input must have rank 4 (NHWC), got {fmt(x)}")
        if min(sh, sw) < 1:
            raise ShapeError(f"scale must be positive, got {[sh, sw]}")
        n, h, w, c = x.get_shape()
        return self.tensor((n, h * sh, w * sw, c))
