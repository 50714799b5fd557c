"""The layers of `nn`: convolution (plain and binary), dense (plain and binary) and matmul, max and average pooling."""

from __future__ import annotations

from collections.abc import Sequence

from xdsl.dialects.builtin import DenseArrayBase, IntegerAttr, StringAttr, TensorType, UnitAttr, i64
from xdsl.ir import Attribute, SSAValue
from xdsl.irdl import irdl_op_definition, operand_def, opt_operand_def, opt_prop_def, prop_def, result_def
from xdsl.utils.exceptions import VerifyException

from mlc.dialects.nn.base import (
    FORMAT_1,
    FORMAT_2,
    GraphOp,
    ShapeError,
    i64_array,
    int_tuple,
    require_rank,
    tensor_type,
    fmt,
    transposed_out,
    window_out,
)


# -- convolution ------------------------------------------------------------------------------
class _WindowConv(GraphOp):
    x = operand_def(TensorType)
    w = operand_def(TensorType)
    out = result_def(TensorType)
    stride = prop_def(DenseArrayBase.constr(i64))
    padding = prop_def(DenseArrayBase.constr(i64))
    dilation = prop_def(DenseArrayBase.constr(i64))
    groups = opt_prop_def(IntegerAttr[i64])
    """Absent for 1. Input channels and filters split into this many groups; group g's filters
    read only its C / groups channels (the filter's third dim)."""
    assembly_format = "$x `,` $w attr-dict `:` functional-type(operands, results)"

    def group_count(self) -> int:
        return 1 if self.groups is None else self.groups.value.data

    def kind(self) -> str:
        """The op's name without the dialect, as messages start."""
        return self.name.split(".")[1]

    def checked_window(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(stride, dilation, padding), after checking that they are positive and non-negative."""
        stride, dilation, padding = int_tuple(self.stride), int_tuple(self.dilation), int_tuple(self.padding)
        if min(*stride, *dilation) < 1 or min(padding) < 0:
            raise ShapeError("stride and dilation must be positive and padding non-negative")
        return stride, dilation, padding

    def checked_groups(self, channels: int) -> int:
        """The group count, after checking that it is positive and divides the input's channels."""
        g = self.group_count()
        if g < 1:
            raise ShapeError(f"groups must be positive, got {g}")
        if channels % g:
            raise ShapeError(f"{channels} input channels are not divisible by groups={g}")
        return g

    def infer(self) -> TensorType:
        x, w = tensor_type(self.x), tensor_type(self.w)
        require_rank(f"{self.kind()} input", x, 4)
        require_rank(f"{self.kind()} filter", w, 4)
        n, h, wd, c = x.get_shape()
        kh, kw, wc, f = w.get_shape()
        g = self.checked_groups(c)
        if f % g:
            raise ShapeError(f"{f} filters are not divisible by groups={g}")
        if g == 1 and c != wc:
            raise ShapeError(f"input has {c} channels but the filter expects {wc} (input {fmt(x)}, filter {fmt(w)})")
        if c // g != wc:
            raise ShapeError(f"groups={g} gives {c // g} input channels per group but the filter expects {wc} "
                             f"(input {fmt(x)}, filter {fmt(w)})")
        (sh, sw), (dh, dw), (pt, pb, pl, pr) = self.checked_window()
        ho, wo = window_out(h, kh, sh, dh, pt, pb), window_out(wd, kw, sw, dw, pl, pr)
        if ho < 1 or wo < 1:
            raise ShapeError(f"filter {fmt(w)} does not fit the padded input {fmt(x)}")
        return self.tensor((n, ho, wo, f))


def _conv_props(stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int = 1) -> dict[str, Attribute]:
    props: dict[str, Attribute] = {"stride": i64_array(stride), "padding": i64_array(padding), "dilation": i64_array(dilation)}
    return props if groups == 1 else props | {"groups": IntegerAttr(groups, i64)}


@irdl_op_definition
class Conv2DOp(_WindowConv):
    """y[n,i,j,f] = sum_{a,b,c} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, g*Cg + c] * w[a,b,c,f], with
    Cg = C / groups and g = f / (F / groups) the group of filter f."""

    name = "nn.conv2d"

    def __init__(self, x: SSAValue, w: SSAValue, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), result_type=None,
                 groups: int = 1):
        props = _conv_props(stride, padding, dilation, groups)
        super().__init__(operands=[x, w], result_types=[result_type or tensor_type(x)], properties=props)
        if result_type is None:
            self._set_inferred_type()


@irdl_op_definition
class BinConv2DOp(_WindowConv):
    """XNOR-Net binary convolution (`mode` xnor or bwn; `pad_value` for sign(x) in xnor mode)."""

    name = "nn.binconv2d"
    mode = prop_def(StringAttr)
    pad_value = prop_def(IntegerAttr[i64])

    def __init__(self, x, w, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), mode="xnor", pad_value=0, result_type=None,
                 groups: int = 1):
        props = _conv_props(stride, padding, dilation, groups) | {"mode": StringAttr(mode), "pad_value": IntegerAttr(pad_value, i64)}
        super().__init__(operands=[x, w], result_types=[result_type or tensor_type(x)], properties=props)
        if result_type is None:
            self._set_inferred_type()

    def verify_(self) -> None:
        _check_binary_mode(self)
        if self.pad_value.value.data not in (0, 1, -1):
            raise VerifyException(f"nn.binconv2d: pad_value must be 0, 1 or -1, got {self.pad_value.value.data}")
        super().verify_()


@irdl_op_definition
class Conv2DTransposeOp(_WindowConv):
    """The adjoint of conv2d with respect to its input (PyTorch's conv_transpose2d):
    y[n, i*sh + a*dh - pt, j*sw + b*dw - pl, g*Fg + f] += x[n,i,j,c] * w[a,b,f,c], summed over
    i, j, a, b and the channels c of group g = c / (C / groups); writes outside y are dropped.
    The filter is [KH, KW, Fg, C] (Fg outputs per group): conv2d's filter from y back to x."""

    name = "nn.conv2d_transpose"
    output_padding = opt_prop_def(DenseArrayBase.constr(i64))
    """Absent for (0, 0). Extra rows and columns at the bottom and right of y; each < max(stride, dilation)."""

    def __init__(self, x: SSAValue, w: SSAValue, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), output_padding=(0, 0),
                 groups: int = 1, result_type=None):
        props = _conv_props(stride, padding, dilation, groups)
        props |= {} if tuple(output_padding) == (0, 0) else {"output_padding": i64_array(output_padding)}
        super().__init__(operands=[x, w], result_types=[result_type or tensor_type(x)], properties=props)
        if result_type is None:
            self._set_inferred_type()

    def extra_size(self) -> tuple[int, int]:
        """(oph, opw): the output padding."""
        return (0, 0) if self.output_padding is None else int_tuple(self.output_padding)  # pyright: ignore[reportReturnType]

    def infer(self) -> TensorType:
        x, w = tensor_type(self.x), tensor_type(self.w)
        require_rank(f"{self.kind()} input", x, 4)
        require_rank(f"{self.kind()} filter", w, 4)
        n, h, wd, c = x.get_shape()
        kh, kw, fg, wc = w.get_shape()
        g = self.checked_groups(c)
        if c != wc:
            raise ShapeError(f"input has {c} channels but the filter [KH, KW, Fg, C] expects {wc} (input {fmt(x)}, filter {fmt(w)})")
        (sh, sw), (dh, dw), (pt, pb, pl, pr) = self.checked_window()
        oph, opw = self.extra_size()
        for extra, s, d, where in ((oph, sh, dh, "height"), (opw, sw, dw, "width")):
            if not 0 <= extra < max(s, d):
                raise ShapeError(f"output_padding {extra} ({where}) must be non-negative and smaller than "
                                 f"max(stride={s}, dilation={d}) = {max(s, d)}")
        ho, wo = transposed_out(h, kh, sh, dh, pt, pb, oph), transposed_out(wd, kw, sw, dw, pl, pr, opw)
        if ho < 1 or wo < 1:
            raise ShapeError(f"output size {ho}x{wo} is not positive: padding {[pt, pb, pl, pr]} crops more than "
                             f"the filter {fmt(w)} spreads the input {fmt(x)} over")
        return self.tensor((n, ho, wo, g * fg))


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
        super().__init__(operands=[x, w, b], result_types=[tensor_type(x)])
        self._set_inferred_type()

    def infer(self) -> TensorType:
        n, o = _dense_shape("dense", self.x, self.w)
        if self.b is not None and tensor_type(self.b).get_shape() != (o,):
            raise ShapeError(f"bias must be [{o}] for weight {fmt(tensor_type(self.w))}, got {fmt(tensor_type(self.b))}")
        return self.tensor((n, o))


def _dense_shape(kind: str, x: SSAValue, w: SSAValue) -> tuple[int, int]:
    """(N, O) of a dense layer `kind` on x [N, I] and w [I, O], after checking those shapes."""
    xt, wt = tensor_type(x), tensor_type(w)
    require_rank(f"{kind} input", xt, 2)
    require_rank(f"{kind} weight", wt, 2)
    if xt.get_shape()[1] != wt.get_shape()[0]:
        raise ShapeError(f"input {fmt(xt)} has {xt.get_shape()[1]} features but the weight {fmt(wt)} expects {wt.get_shape()[0]}")
    return xt.get_shape()[0], wt.get_shape()[1]


def _check_binary_mode(op: BinConv2DOp | BinDenseOp) -> None:
    if op.mode.data not in ("xnor", "bwn"):
        raise VerifyException(f"{op.name}: mode must be xnor or bwn, got {op.mode.data}")


@irdl_op_definition
class BinDenseOp(GraphOp):
    """XNOR-Net's binary dense layer, x [N, I], w [I, O] (`mode` xnor or bwn, as binconv2d's)."""

    name = "nn.bindense"
    x = operand_def(TensorType)
    w = operand_def(TensorType)
    out = result_def(TensorType)
    mode = prop_def(StringAttr)
    assembly_format = "$x `,` $w attr-dict `:` functional-type(operands, results)"

    def __init__(self, x: SSAValue, w: SSAValue, mode: str = "xnor"):
        super().__init__(operands=[x, w], result_types=[tensor_type(x)], properties={"mode": StringAttr(mode)})
        self._set_inferred_type()

    def infer(self) -> TensorType:
        return self.tensor(_dense_shape("bindense", self.x, self.w))

    def verify_(self) -> None:
        _check_binary_mode(self)
        super().verify_()


@irdl_op_definition
class MatmulOp(GraphOp):
    """[M, K] @ [K, N]."""

    name = "nn.matmul"
    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    out = result_def(TensorType)
    assembly_format = FORMAT_2

    def __init__(self, lhs: SSAValue, rhs: SSAValue):
        super().__init__(operands=[lhs, rhs], result_types=[tensor_type(lhs)])
        self._set_inferred_type()

    def infer(self) -> TensorType:
        a, b = tensor_type(self.lhs), tensor_type(self.rhs)
        require_rank("matmul lhs", a, 2)
        require_rank("matmul rhs", b, 2)
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
    ceil_mode = opt_prop_def(UnitAttr)
    """Present for PyTorch's ceil_mode (see `window_out`); cells of an extra last window beyond
    the padding are ignored by max and never counted by avg."""
    assembly_format = FORMAT_1

    def __init__(self, x: SSAValue, size=(2, 2), stride=None, padding=(0, 0, 0, 0), ceil_mode: bool = False, **extra: Attribute):
        props: dict[str, Attribute] = {"size": i64_array(size), "stride": i64_array(stride or size), "padding": i64_array(padding)}
        props |= ({"ceil_mode": UnitAttr()} if ceil_mode else {}) | extra
        super().__init__(operands=[x], result_types=[tensor_type(x)], properties=props)
        self._set_inferred_type()

    def window_dilation(self) -> tuple[int, int]:
        return (1, 1)

    def infer(self) -> TensorType:
        x = tensor_type(self.x)
        require_rank(f"{self.name.split('.')[1]} input", x, 4)
        (kh, kw), (sh, sw) = int_tuple(self.size), int_tuple(self.stride)
        pt, pb, pl, pr = int_tuple(self.padding)
        if min(kh, kw, sh, sw) < 1 or min(pt, pb, pl, pr) < 0:
            raise ShapeError("pool size and stride must be positive and padding non-negative")
        if max(pt, pb) >= kh or max(pl, pr) >= kw:
            raise ShapeError(f"pool padding {[pt, pb, pl, pr]} must be smaller than the {kh}x{kw} window on every side")
        n, h, w, c = x.get_shape()
        (dh, dw), ceil = self.window_dilation(), self.ceil_mode is not None
        if min(dh, dw) < 1:
            raise ShapeError("pool dilation must be positive")
        ho, wo = window_out(h, kh, sh, dh, pt, pb, ceil), window_out(w, kw, sw, dw, pl, pr, ceil)
        if ho < 1 or wo < 1:
            raise ShapeError(f"window {kh}x{kw} does not fit the input {fmt(x)}")
        return self.tensor((n, ho, wo, c))


@irdl_op_definition
class MaxPool2DOp(_Pool):
    """Window maximum (taps `dilation` apart); padded cells are ignored."""

    name = "nn.maxpool2d"
    dilation = opt_prop_def(DenseArrayBase.constr(i64))
    """Absent for (1, 1)."""

    def __init__(self, x: SSAValue, size=(2, 2), stride=None, padding=(0, 0, 0, 0), ceil_mode: bool = False,
                 dilation=(1, 1)):
        extra = {} if tuple(dilation) == (1, 1) else {"dilation": i64_array(dilation)}
        super().__init__(x, size, stride, padding, ceil_mode, **extra)

    def window_dilation(self) -> tuple[int, int]:
        return (1, 1) if self.dilation is None else int_tuple(self.dilation)  # pyright: ignore[reportReturnType]


@irdl_op_definition
class AvgPool2DOp(_Pool):
    """Window mean over the in-bounds cells (TensorFlow's rule for padded windows, PyTorch's
    count_include_pad=False), or with `count_pad` over the window's cells inside the padded input
    (PyTorch's default count_include_pad=True)."""

    name = "nn.avgpool2d"
    count_pad = opt_prop_def(UnitAttr)

    def __init__(self, x: SSAValue, size=(2, 2), stride=None, padding=(0, 0, 0, 0), ceil_mode: bool = False,
                 count_pad: bool = False):
        super().__init__(x, size, stride, padding, ceil_mode, **({"count_pad": UnitAttr()} if count_pad else {}))
