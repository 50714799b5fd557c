"""The PyTorch kernels of the `nn` ops (`NN_KERNELS`, one builder per op class) and the formulas
they share (NHWC convolutions, XNOR-Net, the straight-through sign, the clamped log), with the
kernel types and dtype helpers that `torch_ix` uses too. A test/demo dependency only."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from xdsl.dialects.builtin import Float32Type, Float64Type, TensorType
from xdsl.ir import Attribute, Operation, SSAValue

from mlc.dialects import nn

Tensor = torch.Tensor
Kernel = Callable[..., Tensor]
"""Computes one op's result from its operand tensors (static attributes already read)."""
KernelBuilder = Callable[[Any], Kernel]
"""Reads an op's static attributes once and returns its kernel."""

DTYPES: dict[type[Attribute], torch.dtype] = {Float32Type: torch.float32, Float64Type: torch.float64}


def dtype_of(t: Attribute) -> torch.dtype:
    """The torch dtype of a float type or of a tensor type's elements."""
    elt = t.get_element_type() if isinstance(t, TensorType) else t
    return DTYPES[type(elt)]


def shape_of(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType), v.type
    return tuple(v.type.get_shape())


def _ints(attr: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())


# ---------------------------------------------------------------------------------------------
# Shared formulas (NHWC activations, HWIO filters, paddings [pt, pb, pl, pr])
# ---------------------------------------------------------------------------------------------
class SteSign(torch.autograd.Function):
    """sign(v) = +1 if v >= 0 else -1, with the straight-through gradient `g * (|v| <= 1)`."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        one = torch.ones((), dtype=x.dtype)
        return torch.where(x >= 0, one, -one)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def ste_sign(x: Tensor) -> Tensor:
    return SteSign.apply(x)  # type: ignore[return-value]


def nchw(x: Tensor) -> Tensor:
    return x.permute(0, 3, 1, 2)


def nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


def pad_hw(x: Tensor, pads: Sequence[int], value: float = 0.0) -> Tensor:
    """Pad an NCHW tensor by [pt, pb, pl, pr] (F.pad wants the last dimension first)."""
    pt, pb, pl, pr = pads
    return F.pad(x, (pl, pr, pt, pb), value=value) if any(pads) else x


def conv2d_nhwc(x: Tensor, w: Tensor, stride: Sequence[int], pads: Sequence[int], dilation: Sequence[int], pad_value: float = 0.0,
                groups: int = 1) -> Tensor:
    """y[n,i,j,f] = Σ_{a,b,c} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c] * w[a,b,c,f].

    The OIHW filter is made contiguous: PyTorch's f64 CPU convolution rejects a strided weight
    in its backward pass. So is the NCHW input: given the channels-last strides of a permuted
    NHWC tensor, PyTorch 2.13's f32 oneDNN convolution on an AVX2 CPU (no AVX-512) returns a
    wrong weight gradient (a 1x1 filter at stride 2 over 3 channels: the last channel's row is
    off by up to 100%; the contiguous input, f64 and mkldnn disabled all agree with NumPy)."""
    oihw = w.permute(3, 2, 0, 1).contiguous()
    y = F.conv2d(pad_hw(nchw(x), pads, pad_value).contiguous(), oihw, stride=tuple(stride), dilation=tuple(dilation), groups=groups)
    return nhwc(y)


def conv2d_transpose_nhwc(x: Tensor, w: Tensor, stride: Sequence[int], pads: Sequence[int], dilation: Sequence[int],
                          output_padding: Sequence[int], groups: int = 1) -> Tensor:
    """y[n, i*sh + a*dh - pt, j*sw + b*dw - pl, g*Fg + f] += x[n,i,j,c] * w[a,b,f,c], writes outside
    y dropped: PyTorch's unpadded conv_transpose2d (its [C, Fg, KH, KW] filter is w permuted),
    cropped by [pt, pb, pl, pr] (F.pad with negative pads) and extended by the output padding
    at the bottom and right, where no tap lands after the cropped bottom padding (zeros)."""
    cfhw = w.permute(3, 2, 0, 1).contiguous()
    full = F.conv_transpose2d(nchw(x), cfhw, stride=tuple(stride), dilation=tuple(dilation), groups=groups)
    pt, pb, pl, pr = pads
    oph, opw = output_padding
    return nhwc(F.pad(full, (-pl, opw - pr, -pt, oph - pb)))


def binconv2d_nhwc(
    x: Tensor, w: Tensor, stride: Sequence[int], pads: Sequence[int], dilation: Sequence[int], mode: str, pad_value: int,
    groups: int = 1,
) -> Tensor:
    """XNOR-Net as LANGUAGE.md states it; α and K are differentiated exactly, sign by STE."""
    alpha = w.abs().mean(dim=(0, 1, 2))  # [F]
    sw = ste_sign(w)
    if mode == "bwn":
        return conv2d_nhwc(x, alpha * sw, stride, pads, dilation, groups=groups)
    kh, kw = w.shape[:2]
    core = conv2d_nhwc(ste_sign(x), sw, stride, pads, dilation, pad_value=float(pad_value), groups=groups)  # [N,Ho,Wo,F]
    a = x.abs().mean(dim=3, keepdim=True)  # [N,H,W,1]
    box = torch.full((kh, kw, 1, 1), 1.0 / (kh * kw), dtype=x.dtype)
    k = conv2d_nhwc(a, box, stride, pads, dilation)  # [N,Ho,Wo,1], zero padded
    return core * k * alpha


def bindense(x: Tensor, w: Tensor, mode: str) -> Tensor:
    """XNOR-Net's binary dense layer as LANGUAGE.md states it; α and β exact, sign by STE."""
    alpha = w.abs().mean(dim=0)  # [O]
    if mode == "bwn":
        return (x @ ste_sign(w)) * alpha
    return (ste_sign(x) @ ste_sign(w)) * x.abs().mean(dim=1, keepdim=True) * alpha


def clamped_log(p: Tensor) -> Tensor:
    """max(log p, -100) with its exact derivative: 1/p above the clamp, 0 below (also at p = 0,
    where a plain `clamp(log p)` would give 0 * inf = nan)."""
    with torch.no_grad():
        below = torch.log(p) < -100.0
    safe = torch.where(below, torch.ones_like(p), p)
    return torch.where(below, torch.full_like(p, -100.0), torch.log(safe))


# ---------------------------------------------------------------------------------------------
# nn ops: one kernel builder per op class
# ---------------------------------------------------------------------------------------------
NN_KERNELS: dict[type[Operation], KernelBuilder] = {}
"""nn op class -> builder of its PyTorch kernel."""

B = TypeVar("B", bound=KernelBuilder)


def kernel(*classes: type[Operation]) -> Callable[[B], B]:
    """Register the decorated builder for `classes`."""

    def register(fn: B) -> B:
        for cls in classes:
            NN_KERNELS[cls] = fn
        return fn

    return register


@kernel(nn.Conv2DOp)
def _conv2d(op: nn.Conv2DOp) -> Kernel:
    stride, pads, dilation = _ints(op.stride), _ints(op.padding), _ints(op.dilation)
    groups = op.group_count()
    return lambda x, w: conv2d_nhwc(x, w, stride, pads, dilation, groups=groups)


@kernel(nn.Conv2DTransposeOp)
def _conv2d_transpose(op: nn.Conv2DTransposeOp) -> Kernel:
    stride, pads, dilation, extra = _ints(op.stride), _ints(op.padding), _ints(op.dilation), op.extra_size()
    groups = op.group_count()
    return lambda x, w: conv2d_transpose_nhwc(x, w, stride, pads, dilation, extra, groups=groups)


@kernel(nn.BinConv2DOp)
def _binconv2d(op: nn.BinConv2DOp) -> Kernel:
    stride, pads, dilation = _ints(op.stride), _ints(op.padding), _ints(op.dilation)
    mode, pad_value = op.mode.data, op.pad_value.value.data
    groups = op.group_count()
    return lambda x, w: binconv2d_nhwc(x, w, stride, pads, dilation, mode, pad_value, groups)


@kernel(nn.BinDenseOp)
def _bindense(op: nn.BinDenseOp) -> Kernel:
    mode = op.mode.data
    return lambda x, w: bindense(x, w, mode)


@kernel(nn.DenseOp)
def _dense(op: nn.DenseOp) -> Kernel:
    def dense(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        return x @ w if b is None else x @ w + b

    return dense


@kernel(nn.MatmulOp)
def _matmul(op: nn.MatmulOp) -> Kernel:
    return torch.matmul


def _pool_pads(op: nn.MaxPool2DOp | nn.AvgPool2DOp) -> tuple[list[int], list[int]]:
    """The explicit padding, and the padding that also covers every window of the result (a
    ceil_mode window may reach past the padding): PyTorch then pools without ceil_mode, and the
    result is cropped to the op's size."""
    (kh, kw), (sh, sw), (dh, dw) = _ints(op.size), _ints(op.stride), op.window_dilation()
    pt, pb, pl, pr = pads = _ints(op.padding)
    _, h, w, _ = shape_of(op.x)
    ho, wo = shape_of(op.out)[1:3]
    extra_h = max(0, (ho - 1) * sh + dh * (kh - 1) + 1 - (h + pt + pb))
    extra_w = max(0, (wo - 1) * sw + dw * (kw - 1) + 1 - (w + pl + pr))
    return list(pads), [pt, pb + extra_h, pl, pr + extra_w]


@kernel(nn.MaxPool2DOp)
def _maxpool2d(op: nn.MaxPool2DOp) -> Kernel:
    """Padded cells are -inf, so they never win; PyTorch's max_pool2d keeps the first maximum."""
    size, stride, dilation = _ints(op.size), _ints(op.stride), op.window_dilation()
    _, covering = _pool_pads(op)
    ho, wo = shape_of(op.out)[1:3]
    return lambda x: nhwc(F.max_pool2d(pad_hw(nchw(x), covering, float("-inf")), size, stride, dilation=dilation)[:, :, :ho, :wo])


@kernel(nn.AvgPool2DOp)
def _avgpool2d(op: nn.AvgPool2DOp) -> Kernel:
    """Window sums of the zero-padded input over the count of the cells that count: those of the
    input (TensorFlow), or with count_pad those of the padded input (PyTorch's default)."""
    size, stride = _ints(op.size), _ints(op.stride)
    pads, covering = _pool_pads(op)
    _, h, w, _ = shape_of(op.x)
    ho, wo = shape_of(op.out)[1:3]
    ones = torch.ones((1, 1, h, w), dtype=dtype_of(op.x.type))
    counted = pad_hw(ones, pads, 1.0) if op.count_pad is not None else pad_hw(ones, pads)
    beyond = [0, covering[1] - pads[1], 0, covering[3] - pads[3]]
    count = F.avg_pool2d(pad_hw(counted, beyond), size, stride, divisor_override=1)[:, :, :ho, :wo]

    def avgpool(x: Tensor) -> Tensor:
        return nhwc(F.avg_pool2d(pad_hw(nchw(x), covering), size, stride, divisor_override=1)[:, :, :ho, :wo] / count)

    return avgpool


@kernel(nn.ReshapeOp)
def _reshape(op: nn.ReshapeOp) -> Kernel:
    shape = shape_of(op.results[0])
    return lambda x: x.reshape(shape)


@kernel(nn.ConcatOp)
def _concat(op: nn.ConcatOp) -> Kernel:
    axis = op.axis.value.data
    return lambda *xs: torch.cat(xs, dim=axis)


UNARY: dict[type[Operation], Kernel] = {
    nn.ReluOp: torch.relu, nn.SigmoidOp: torch.sigmoid, nn.TanhOp: torch.tanh, nn.ExpOp: torch.exp,
    nn.LogOp: torch.log, nn.SqrtOp: torch.sqrt, nn.AbsOp: torch.abs, nn.SignOp: ste_sign, nn.NegOp: torch.neg,
    nn.SquareOp: torch.square, nn.SiluOp: F.silu, nn.ErfOp: torch.erf,
}  # fmt: skip
BINARY: dict[type[Operation], Kernel] = {
    nn.AddOp: torch.add, nn.SubOp: torch.sub, nn.MulOp: torch.mul, nn.DivOp: torch.div,
    # The language sends the gradient to the first operand on ties (torch.maximum splits it),
    # and a NaN operand wins, as in torch.maximum.
    nn.MaximumOp: lambda a, b: torch.where((a >= b) | a.isnan(), a, b),
    nn.MinimumOp: lambda a, b: torch.where((a <= b) | a.isnan(), a, b),
    nn.PowOp: torch.pow,
}  # fmt: skip


@kernel(nn.TransposeOp)
def _transpose(op: nn.TransposeOp) -> Kernel:
    perm = [int(v) for v in op.perm.get_values()]
    return lambda x: x.permute(*perm)


@kernel(nn.BroadcastToOp)
def _broadcast_to(op: nn.BroadcastToOp) -> Kernel:
    shape = op.out.type.get_shape()  # pyright: ignore[reportAttributeAccessIssue]
    return lambda x: x.expand(*shape)


@kernel(nn.SliceOp)
def _slice(op: nn.SliceOp) -> Kernel:
    """`index_select` at the indices Python's slicing would take (torch slicing has no negative step)."""
    axis, start, step = op.axis.value.data, op.start.value.data, op.step.value.data
    count = op.out.type.get_shape()[axis]  # pyright: ignore[reportAttributeAccessIssue]
    index = torch.tensor([start + k * step for k in range(count)])
    return lambda x: torch.index_select(x, axis, index)


@kernel(nn.UpsampleOp)
def _upsample(op: nn.UpsampleOp) -> Kernel:
    """`interpolate` with the op's mode (bilinear with `align_corners=False`, PyTorch's default)."""
    scale = tuple(float(v) for v in op.scale.get_values())
    if op.interpolation() == "bilinear":
        return lambda x: nhwc(F.interpolate(nchw(x), scale_factor=scale, mode="bilinear", align_corners=False))
    return lambda x: nhwc(F.interpolate(nchw(x), scale_factor=scale, mode="nearest"))


@kernel(nn.GeluOp)
def _gelu(op: nn.GeluOp) -> Kernel:
    approximate = op.approximation()
    return lambda x: F.gelu(x, approximate=approximate)


@kernel(nn.ClampTensorOp)
def _clamp_tensor(op: nn.ClampTensorOp) -> Kernel:
    """torch.clamp with tensor bounds, its own gradients (a number bound is a 0-d constant here).
    `x` is first expanded to the broadcast shape: PyTorch's backward of a clamp whose bounds
    broadcast `x` to a larger result fails ("output with shape ... doesn't match the broadcast
    shape"); the expand's own backward sums the gradient back, as the broadcast means."""
    def clamp(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        return torch.clamp(x.expand(torch.broadcast_shapes(x.shape, lo.shape, hi.shape)), lo, hi)
    return clamp


@kernel(nn.PadOp)
def _pad(op: nn.PadOp) -> Kernel:
    """`F.pad` takes its pairs from the last dim backwards."""
    pads, value = [int(v) for v in op.pads.get_values()], op.value.value.data
    pairs = [pads[k:k + 2] for k in range(0, len(pads), 2)]
    flat = [p for pair in reversed(pairs) for p in pair]
    return lambda x: F.pad(x, [0, 0] * (x.dim() - len(pairs)) + flat, value=value)


ACTIVATIONS: dict[type[Operation], Callable[..., Tensor]] = {
    nn.LeakyReluOp: F.leaky_relu, nn.EluOp: F.elu, nn.HardtanhOp: F.hardtanh, nn.ClampOp: torch.clamp,
    nn.SoftplusOp: F.softplus,
}  # fmt: skip
"""PyTorch's own functions (with their own gradients at the kinks); each takes the op's options in
its `OPTIONS` order, positionally."""


@kernel(*ACTIVATIONS)
def _activation(op: nn.ActivationOp) -> Kernel:
    function, options = ACTIVATIONS[type(op)], op.options()
    return lambda x: function(x, *options)


@kernel(*UNARY, *BINARY)
def _elementwise(op: Operation) -> Kernel:
    """PyTorch broadcasting is NumPy's, as the language's."""
    return {**UNARY, **BINARY}[type(op)]


@kernel(nn.ConstantOp)
def _constant(op: nn.ConstantOp) -> Kernel:
    value = torch.tensor(op.value.value.data, dtype=dtype_of(op.out.type))
    return lambda: value


@kernel(nn.SumOp, nn.MeanOp)
def _reduce(op: nn.SumOp | nn.MeanOp) -> Kernel:
    """No axes (a rank-0 operand) is the identity; torch would read `dim=()` as "all"."""
    axes = _ints(op.axes)
    fn = torch.sum if isinstance(op, nn.SumOp) else torch.mean
    return (lambda x: fn(x, dim=axes)) if axes else (lambda x: x)


@kernel(nn.MaxOp, nn.MinOp)
def _max_min(op: nn.MaxOp | nn.MinOp) -> Kernel:
    """The reduced axes moved last and flattened (row-major), then `torch.max`/`min` along them,
    whose gradient goes to the index it returns: the first extreme one (PyTorch's documented choice)."""
    axes = _ints(op.axes)
    fn = torch.max if isinstance(op, nn.MaxOp) else torch.min

    def extreme(x: Tensor) -> Tensor:
        if not axes:
            return x
        kept = [k for k in range(x.dim()) if k not in axes]
        moved = x.permute(*kept, *axes).reshape(*(x.shape[k] for k in kept), -1)
        return fn(moved, dim=-1).values

    return extreme


@kernel(nn.LayerNormOp)
def _layernorm(op: nn.LayerNormOp) -> Kernel:
    eps, axes = op.eps.value.data, op.axes.value.data
    return lambda x, gamma, beta: F.layer_norm(x, x.shape[x.dim() - axes:], gamma, beta, eps)


@kernel(nn.BCELogitsOp)
def _bce_logits(op: nn.BCELogitsOp) -> Kernel:
    return lambda z, t: F.binary_cross_entropy_with_logits(z, t, reduction="sum") / z.shape[0]


@kernel(nn.SoftmaxOp)
def _softmax(op: nn.SoftmaxOp) -> Kernel:
    return lambda x: torch.softmax(x, dim=-1)


@kernel(nn.LogSoftmaxOp)
def _log_softmax(op: nn.LogSoftmaxOp) -> Kernel:
    return lambda x: torch.log_softmax(x, dim=-1)


@kernel(nn.BatchNormOp)
def _batchnorm(op: nn.BatchNormOp) -> Kernel:
    """Training mode: batch statistics over every axis but the last, biased variance."""
    eps = op.eps.value.data
    leading = tuple(range(len(shape_of(op.x)) - 1))

    def batchnorm(x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        xc = x - x.mean(dim=leading)
        var = (xc * xc).mean(dim=leading)
        return xc / torch.sqrt(var + eps) * gamma + beta

    return batchnorm


@kernel(nn.RunningBatchNormOp)
def _running_batchnorm(op: nn.RunningBatchNormOp) -> Kernel:
    """Inference mode: the running statistics (PyTorch's `eval()`)."""
    eps = op.eps.value.data

    def batchnorm(x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        return (x - mean) / torch.sqrt(var + eps) * gamma + beta

    return batchnorm


def running_batchnorm_training(op: nn.RunningBatchNormOp) -> Kernel:
    """Training mode (PyTorch's `train()`): the batch's statistics, and the state tensors updated
    in place with the momentum and the unbiased variance (what `torch.nn.BatchNorm2d` does)."""
    normalise, momentum = _batchnorm(op), op.momentum.value.data  # type: ignore[arg-type]
    leading = tuple(range(len(shape_of(op.x)) - 1))

    def batchnorm(x: Tensor, gamma: Tensor, beta: Tensor, mean: Tensor, var: Tensor) -> Tensor:
        with torch.no_grad():
            mean.copy_(momentum * x.mean(dim=leading) + (1 - momentum) * mean)
            var.copy_(momentum * x.var(dim=leading, correction=1) + (1 - momentum) * var)
        return normalise(x, gamma, beta)

    return batchnorm


TRAINING_KERNELS: dict[type[Operation], KernelBuilder] = {nn.RunningBatchNormOp: running_batchnorm_training}
"""nn op class -> builder of its kernel in training mode, where that differs from inference."""


@kernel(nn.MSEOp)
def _mse(op: nn.MSEOp) -> Kernel:
    def mse(pred: Tensor, target: Tensor) -> Tensor:
        d = target - pred
        return (d * d).mean()

    return mse


@kernel(nn.BCEOp)
def _bce(op: nn.BCEOp) -> Kernel:
    def bce(p: Tensor, t: Tensor) -> Tensor:
        return -(t * clamped_log(p) + (1 - t) * clamped_log(1 - p)).sum() / p.shape[0]

    return bce


@kernel(nn.SoftmaxCrossEntropyOp)
def _softmax_cross_entropy(op: nn.SoftmaxCrossEntropyOp) -> Kernel:
    return lambda logits, t: -(t * torch.log_softmax(logits, dim=-1)).sum() / logits.shape[0]


@kernel(nn.KLNormalOp)
def _kl_normal(op: nn.KLNormalOp) -> Kernel:
    def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
        return 0.5 * (mu * mu + torch.exp(logvar) - logvar - 1).sum() / mu.shape[0]

    return kl_normal
