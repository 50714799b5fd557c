"""What every `nn` op shares: the `GraphOp` base (element types, the verifier that checks the
result type against the op's shape rule), `ShapeError`, the type text of messages and the shape
arithmetic of windows, padding and broadcasting."""

from __future__ import annotations

from typing import ClassVar

from collections.abc import Sequence

from xdsl.dialects.builtin import DenseArrayBase, TensorType, i64
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import IRDLOperation, ParsePropInAttrDict, traits_def
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException

Shape = tuple[int, ...]


class ShapeError(Exception):
    """A call whose operand shapes or attributes do not fit the op; the message says why."""


def fmt(t: TensorType | Shape) -> str:
    """`f32[2, 3]` style, as the user wrote types."""
    if isinstance(t, TensorType):
        dtype = str(t.get_element_type())
        return f"{dtype}[{', '.join(map(str, t.get_shape()))}]"
    return f"[{', '.join(map(str, t))}]"


def int_tuple(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


def i64_array(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, list(values))


def require_rank(what: str, t: TensorType, rank: int) -> None:
    if t.get_num_dims() != rank:
        raise ShapeError(f"{what} must have rank {rank}, got {fmt(t)}")


def window_out(size: int, k: int, stride: int, dilation: int, pad_lo: int, pad_hi: int, ceil: bool = False) -> int:
    """Output length of a strided, dilated window sweep: floor((H + pads - d*(K-1) - 1) / s) + 1.

    `ceil` is PyTorch's `ceil_mode`: ceil instead of floor, less one when the last window would
    start in the padding after the input (so every window starts inside the input or before it)."""
    span = size + pad_lo + pad_hi - dilation * (k - 1) - 1
    if not ceil:
        return span // stride + 1
    out = -(-span // stride) + 1
    return out - 1 if (out - 1) * stride >= size + pad_lo else out


def transposed_out(size: int, k: int, stride: int, dilation: int, pad_lo: int, pad_hi: int, extra: int) -> int:
    """Output length of a transposed convolution: (H-1)*s - pads + d*(K-1) + 1 + output_padding, the
    shortest input that conv2d with these parameters maps to H, `extra` cells longer."""
    return (size - 1) * stride - pad_lo - pad_hi + dilation * (k - 1) + 1 + extra


def same_padding(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow `same`: Ho = ceil(H / s); total pad split with the extra cell at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def broadcast_shapes(a: Shape, b: Shape) -> Shape:
    """NumPy broadcasting, shapes aligned at the trailing dimension."""
    rank = max(len(a), len(b))
    pa, pb = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    out: list[int] = []
    for x, y in zip(pa, pb):
        if x != y and 1 not in (x, y):
            raise ShapeError(f"shapes {fmt(a)} and {fmt(b)} do not broadcast")
        out.append(max(x, y) if min(x, y) != 0 else 0)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
class GraphOp(IRDLOperation):
    """Base of graph ops: same element type everywhere, result type given by `infer`."""

    irdl_options = (ParsePropInAttrDict(),)
    traits = traits_def(Pure())
    KEEPS_LOCATION: ClassVar[bool] = False
    """Whether the frontend records the call's location on the op (`mlc.loc`), for an op that a
    later pass may reject (a training-mode batch norm on one value per channel)."""

    def infer(self) -> TensorType:
        raise NotImplementedError

    def element_type(self) -> Attribute:
        t = self.operands[0].type
        assert isinstance(t, TensorType)
        return t.get_element_type()

    def verify_(self) -> None:
        elt = self.element_type()
        for k, v in enumerate(self.operands):
            assert isinstance(v.type, TensorType)
            if v.type.get_element_type() != elt:
                raise VerifyException(f"{self.name}: operand {k} has element type {v.type.get_element_type()}, expected {elt}")
        try:
            expected = self.infer()
        except ShapeError as e:
            raise VerifyException(f"{self.name}: {e}") from e
        got = self.results[0].type
        assert isinstance(got, TensorType)
        if got != expected:
            dims = [
                str(i)
                for i, (g, x) in enumerate(zip(got.get_shape(), expected.get_shape()))
                if g != x
            ]
            where = f" (dimension {', '.join(dims)})" if dims and got.get_num_dims() == expected.get_num_dims() else ""
            raise VerifyException(f"{self.name}: result type {fmt(got)} is wrong{where}, expected {fmt(expected)}")

    def tensor(self, shape: Sequence[int]) -> TensorType:
        return TensorType(self.element_type(), list(shape))

    def _set_inferred_type(self) -> None:
        """Give a freshly built op (no uses yet) the result type of its shape rule."""
        self.results[0]._type = self.infer()  # pyright: ignore[reportPrivateUsage]


def tensor_type(v: SSAValue) -> TensorType:
    assert isinstance(v.type, TensorType), v.type
    return v.type


FORMAT_1 = "$x attr-dict `:` functional-type(operands, results)"
FORMAT_2 = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"
