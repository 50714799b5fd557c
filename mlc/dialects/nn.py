"""The graph-level dialect `nn`: one op per built-in of the mlc language, on tensors.

Each op knows its own shape rule (`infer`), used twice: by the frontend to type a call (a
`ShapeError` there becomes a located diagnostic) and by the verifier to check IR read from text.
Layouts follow the language: activations NHWC, filters HWIO `[KH, KW, C, F]`. Paddings are
always explicit `[top, bottom, left, right]` here; the frontend resolves `same`/`valid`.
"""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import (
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    StringAttr,
    TensorType,
    f64,
    i64,
)
from xdsl.ir import Attribute, Dialect, SSAValue
from xdsl.irdl import (
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_op_definition,
    opt_operand_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
    operand_def,
)
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


def _ints(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


def _i64s(values: Sequence[int]) -> DenseArrayBase:
    return DenseArrayBase.from_list(i64, list(values))


def _require_rank(what: str, t: TensorType, rank: int) -> None:
    if t.get_num_dims() != rank:
        raise ShapeError(f"{what} must have rank {rank}, got {fmt(t)}")


def window_out(size: int, k: int, stride: int, dilation: int, pad_lo: int, pad_hi: int) -> int:
    """Output length of a strided, dilated window sweep: floor((H + pads - d*(K-1) - 1) / s) + 1."""
    return (size + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1


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


def _t(v: SSAValue) -> TensorType:
    assert isinstance(v.type, TensorType), v.type
    return v.type


FORMAT_1 = "$x attr-dict `:` functional-type(operands, results)"
FORMAT_2 = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)"


# -- convolution ------------------------------------------------------------------------------
class _WindowConv(GraphOp):
    x = operand_def(TensorType)
    w = operand_def(TensorType)
    out = result_def(TensorType)
    stride = prop_def(DenseArrayBase.constr(i64))
    padding = prop_def(DenseArrayBase.constr(i64))
    dilation = prop_def(DenseArrayBase.constr(i64))
    assembly_format = "$x `,` $w attr-dict `:` functional-type(operands, results)"

    def infer(self) -> TensorType:
        x, w = _t(self.x), _t(self.w)
        _require_rank(f"{self.name.split('.')[1]} input", x, 4)
        _require_rank(f"{self.name.split('.')[1]} filter", w, 4)
        (sh, sw), (dh, dw) = _ints(self.stride), _ints(self.dilation)
        pt, pb, pl, pr = _ints(self.padding)
        n, h, wd, c = x.get_shape()
        kh, kw, wc, f = w.get_shape()
        if c != wc:
            raise ShapeError(f"input has {c} channels but the filter expects {wc} (input {fmt(x)}, filter {fmt(w)})")
        if min(sh, sw, dh, dw) < 1 or min(pt, pb, pl, pr) < 0:
            raise ShapeError("stride and dilation must be positive and padding non-negative")
        ho, wo = window_out(h, kh, sh, dh, pt, pb), window_out(wd, kw, sw, dw, pl, pr)
        if ho < 1 or wo < 1:
            raise ShapeError(f"filter {fmt(w)} does not fit the padded input {fmt(x)}")
        return self.tensor((n, ho, wo, f))


def _conv_props(stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int]) -> dict[str, Attribute]:
    return {"stride": _i64s(stride), "padding": _i64s(padding), "dilation": _i64s(dilation)}


@irdl_op_definition
class Conv2DOp(_WindowConv):
    """y[n,i,j,f] = sum_{a,b,c} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c] * w[a,b,c,f]."""

    name = "nn.conv2d"

    def __init__(self, x: SSAValue, w: SSAValue, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), result_type=None):
        super().__init__(operands=[x, w], result_types=[result_type or _t(x)], properties=_conv_props(stride, padding, dilation))
        if result_type is None:
            self._set_inferred_type()


@irdl_op_definition
class BinConv2DOp(_WindowConv):
    """XNOR-Net binary convolution (`mode` xnor or bwn; `pad_value` for sign(x) in xnor mode)."""

    name = "nn.binconv2d"
    mode = prop_def(StringAttr)
    pad_value = prop_def(IntegerAttr[i64])

    def __init__(self, x, w, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), mode="xnor", pad_value=0, result_type=None):
        props = _conv_props(stride, padding, dilation) | {"mode": StringAttr(mode), "pad_value": IntegerAttr(pad_value, i64)}
        super().__init__(operands=[x, w], result_types=[result_type or _t(x)], properties=props)
        if result_type is None:
            self._set_inferred_type()

    def verify_(self) -> None:
        if self.mode.data not in ("xnor", "bwn"):
            raise VerifyException(f"nn.binconv2d: mode must be xnor or bwn, got {self.mode.data}")
        if self.pad_value.value.data not in (0, 1, -1):
            raise VerifyException(f"nn.binconv2d: pad_value must be 0, 1 or -1, got {self.pad_value.value.data}")
        super().verify_()


# -- dense / matmul ---------------------------------------------------------------------------
@irdl_op_definition
class DenseOp(GraphOp):
    """x @ w + b with x [N, I], w [I, O], optional b [O]."""

    name = "nn.dense"
    x = operand_def(TensorType)
    w = operand_def(TensorType)
    b = opt_operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = "$x `,` $w (`,` $b^)? attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, w: SSAValue, b: SSAValue | None = None):
        super().__init__(operands=[x, w, b], result_types=[_t(x)])
        self._set_inferred_type()

    def infer(self) -> TensorType:
        x, w = _t(self.x), _t(self.w)
        _require_rank("dense input", x, 2)
        _require_rank("dense weight", w, 2)
        if x.get_shape()[1] != w.get_shape()[0]:
            raise ShapeError(f"input {fmt(x)} has {x.get_shape()[1]} features but the weight {fmt(w)} expects {w.get_shape()[0]}")
        o = w.get_shape()[1]
        if self.b is not None and _t(self.b).get_shape() != (o,):
            raise ShapeError(f"bias must be [{o}] for weight {fmt(w)}, got {fmt(_t(self.b))}")
        return self.tensor((x.get_shape()[0], o))


@irdl_op_definition
class MatmulOp(GraphOp):
    """[M, K] @ [K, N]."""

    name = "nn.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_2

    def __init__(self, lhs: SSAValue, rhs: SSAValue):
        super().__init__(operands=[lhs, rhs], result_types=[_t(lhs)])
        self._set_inferred_type()

    def infer(self) -> TensorType:
        a, b = _t(self.lhs), _t(self.rhs)
        _require_rank("matmul lhs", a, 2)
        _require_rank("matmul rhs", b, 2)
        if a.get_shape()[1] != b.get_shape()[0]:
            raise ShapeError(f"inner dimensions differ: {fmt(a)} @ {fmt(b)}")
        return self.tensor((a.get_shape()[0], b.get_shape()[1]))


# -- pooling ----------------------------------------------------------------------------------
class _Pool(GraphOp):
    x = operand_def(TensorType)
    out = result_def(TensorType)
    size = prop_def(DenseArrayBase.constr(i64))
    stride = prop_def(DenseArrayBase.constr(i64))
    padding = prop_def(DenseArrayBase.constr(i64))
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, size=(2, 2), stride=None, padding=(0, 0, 0, 0)):
        props = {"size": _i64s(size), "stride": _i64s(stride or size), "padding": _i64s(padding)}
        super().__init__(operands=[x], result_types=[_t(x)], properties=props)
        self._set_inferred_type()

    def infer(self) -> TensorType:
        x = _t(self.x)
        _require_rank(f"{self.name.split('.')[1]} input", x, 4)
        (kh, kw), (sh, sw) = _ints(self.size), _ints(self.stride)
        pt, pb, pl, pr = _ints(self.padding)
        if min(kh, kw, sh, sw) < 1 or min(pt, pb, pl, pr) < 0:
            raise ShapeError("pool size and stride must be positive and padding non-negative")
        if max(pt, pb) >= kh or max(pl, pr) >= kw:
            raise ShapeError(f"pool padding {[pt, pb, pl, pr]} must be smaller than the {kh}x{kw} window on every side")
        n, h, w, c = x.get_shape()
        ho, wo = window_out(h, kh, sh, 1, pt, pb), window_out(w, kw, sw, 1, pl, pr)
        if ho < 1 or wo < 1:
            raise ShapeError(f"window {kh}x{kw} does not fit the input {fmt(x)}")
        return self.tensor((n, ho, wo, c))


@irdl_op_definition
class MaxPool2DOp(_Pool):
    """Window maximum; padded cells are ignored."""

    name = "nn.maxpool2d"


@irdl_op_definition
class AvgPool2DOp(_Pool):
    """Window mean over the in-bounds cells (TensorFlow's rule for padded windows)."""

    name = "nn.avgpool2d"


# -- shape ops --------------------------------------------------------------------------------
@irdl_op_definition
class ReshapeOp(GraphOp):
    """Row-major reinterpretation to the result shape (flatten is a reshape to [N, rest])."""

    name = "nn.reshape"
    x = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, shape: Sequence[int]):
        super().__init__(operands=[x], result_types=[TensorType(_t(x).get_element_type(), list(shape))])

    def infer(self) -> TensorType:
        got = self.results[0].type
        assert isinstance(got, TensorType)
        if _count(_t(self.x).get_shape()) != _count(got.get_shape()):
            raise ShapeError(f"cannot reshape {fmt(_t(self.x))} ({_count(_t(self.x).get_shape())} elements) to {fmt(got)}")
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
        super().__init__(operands=[list(inputs)], result_types=[_t(inputs[0])], properties={"axis": IntegerAttr(axis, i64)})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        types = [_t(v) for v in self.inputs]
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


# -- elementwise ------------------------------------------------------------------------------
class UnaryOp(GraphOp):
    x = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue):
        super().__init__(operands=[x], result_types=[_t(x)])

    def infer(self) -> TensorType:
        return _t(self.x)


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
UNARY: dict[str, type[UnaryOp]] = {
    c.name.split(".")[1]: c for c in (ReluOp, SigmoidOp, TanhOp, ExpOp, LogOp, SqrtOp, AbsOp, SignOp, NegOp)
}


class BinaryOp(GraphOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_2

    def __init__(self, lhs: SSAValue, rhs: SSAValue):
        super().__init__(operands=[lhs, rhs], result_types=[_t(lhs)])
        self._set_inferred_type()

    def infer(self) -> TensorType:
        return self.tensor(broadcast_shapes(_t(self.lhs).get_shape(), _t(self.rhs).get_shape()))


def _binary(op_name: str, doc: str) -> type[BinaryOp]:
    cls = type(f"{op_name.capitalize()}Op", (BinaryOp,), {"name": f"nn.{op_name}", "__doc__": doc})
    return irdl_op_definition(cls)


AddOp = _binary("add", "lhs + rhs with NumPy broadcasting.")
SubOp = _binary("sub", "lhs - rhs with NumPy broadcasting.")
MulOp = _binary("mul", "lhs * rhs with NumPy broadcasting.")
DivOp = _binary("div", "lhs / rhs with NumPy broadcasting.")
BINARY: dict[str, type[BinaryOp]] = {"+": AddOp, "-": SubOp, "*": MulOp, "/": DivOp}


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
        return _t(self.out).get_element_type()

    def infer(self) -> TensorType:
        return _t(self.out) if _t(self.out).get_num_dims() == 0 else self.tensor(())


# -- reductions and normalisations ------------------------------------------------------------
class _AxisReduce(GraphOp):
    x = operand_def(TensorType)
    out = result_def(TensorType)
    axes = prop_def(DenseArrayBase.constr(i64))
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, axes: Sequence[int]):
        super().__init__(operands=[x], result_types=[_t(x)], properties={"axes": _i64s(sorted(set(axes)))})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        shape = _t(self.x).get_shape()
        axes = _ints(self.axes)
        if any(not 0 <= a < len(shape) for a in axes):
            raise ShapeError(f"axis {list(axes)} out of range for {fmt(_t(self.x))}")
        return self.tensor([d for k, d in enumerate(shape) if k not in axes])


@irdl_op_definition
class SumOp(_AxisReduce):
    """Sum over `axes` (dimensions removed)."""

    name = "nn.sum"


@irdl_op_definition
class MeanOp(_AxisReduce):
    """Mean over `axes` (dimensions removed)."""

    name = "nn.mean"


class _LastAxis(UnaryOp):
    def infer(self) -> TensorType:
        if _t(self.x).get_num_dims() < 1:
            raise ShapeError(f"{self.name.split('.')[1]} needs rank >= 1, got {fmt(_t(self.x))}")
        return _t(self.x)


@irdl_op_definition
class SoftmaxOp(_LastAxis):
    """Softmax over the last axis."""

    name = "nn.softmax"


@irdl_op_definition
class LogSoftmaxOp(_LastAxis):
    """Log-softmax over the last axis."""

    name = "nn.log_softmax"


@irdl_op_definition
class BatchNormOp(GraphOp):
    """Training-mode batch norm: statistics over all axes but the last, biased variance."""

    name = "nn.batchnorm"
    x = operand_def(TensorType)
    gamma = operand_def(TensorType)
    beta = operand_def(TensorType)
    out = result_def(TensorType)
    eps = prop_def(FloatAttr)
    assembly_format = "$x `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, gamma: SSAValue, beta: SSAValue, eps: float = 1e-5):
        super().__init__(operands=[x, gamma, beta], result_types=[_t(x)], properties={"eps": FloatAttr(eps, f64)})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        x = _t(self.x)
        if x.get_num_dims() < 2:
            raise ShapeError(f"batchnorm input needs rank >= 2, got {fmt(x)}")
        c = x.get_shape()[-1]
        for what, v in (("gamma", self.gamma), ("beta", self.beta)):
            if _t(v).get_shape() != (c,):
                raise ShapeError(f"{what} must be [{c}] for input {fmt(x)}, got {fmt(_t(v))}")
        return x


class LossOp(GraphOp):
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_2

    def __init__(self, lhs: SSAValue, rhs: SSAValue):
        super().__init__(operands=[lhs, rhs], result_types=[TensorType(_t(lhs).get_element_type(), [])])

    def infer(self) -> TensorType:
        a, b = _t(self.lhs), _t(self.rhs)
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
class SoftmaxCrossEntropyOp(LossOp):
    """-(1/N) sum_n sum_k t[n,k] log_softmax(logits)[n,k]."""

    name = "nn.softmax_cross_entropy"


@irdl_op_definition
class KLNormalOp(LossOp):
    """(1/N) sum_n 0.5 sum_j (mu^2 + exp(logvar) - logvar - 1)."""

    name = "nn.kl_normal"


NN = Dialect(
    "nn",
    [
        Conv2DOp, BinConv2DOp, DenseOp, MatmulOp, MaxPool2DOp, AvgPool2DOp, ReshapeOp, ConcatOp,
        *UNARY.values(), AddOp, SubOp, MulOp, DivOp, ConstantOp, SumOp, MeanOp, SoftmaxOp,
        LogSoftmaxOp, BatchNormOp, MSEOp, BCEOp, SoftmaxCrossEntropyOp, KLNormalOp,
    ],
    [],
)
