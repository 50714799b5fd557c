"""Graph-level mlc IR evaluated eagerly in PyTorch: an independent second implementation.

Why it exists: it shares nothing with mlc's lowering (one PyTorch formula per `nn` op, written
from LANGUAGE.md, and a vectorised gather for `ix.compute`), so it can serve as
  1. the oracle of the random-program tests (forward values),
  2. the PyTorch-eager baseline of training-step timings (it is ordinary autograd-able PyTorch),
  3. the reference of gradient tests (`torch.autograd.grad` through it).

    model = TorchModel.from_source(text)             # or TorchModel(func_op)
    outs = model({"x": x, "w1": w1, ...})            # torch tensors in and out, by name
    outs = model.run(params, inputs)                 # NumPy in and out, like `Program.run`

Gradient conventions (LANGUAGE.md, "Gradients"): `sign` uses the straight-through estimator
`1 if |v| <= 1 else 0`; `relu'(0) = abs'(0) = 0` (PyTorch's own); `sqrt'(0) = inf`; a `max`
reduction and `maxpool2d` route the gradient to the first maximum in row-major order; a scalar
`max(a, b)` / `min(a, b)` in an op body gives a tie to its first operand.

PyTorch is a test/demo dependency only: nothing in the compiler imports this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from xdsl.dialects import arith, func, math
from xdsl.dialects.builtin import (
    Float32Type,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    ModuleOp,
    TensorType,
)
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
)

from mlc.dialects import ix, nn
from mlc.graph.signature import ModelSignature, TensorSpec

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
# The model
# ---------------------------------------------------------------------------------------------
class TorchModel:
    """A graph-level model function (`nn` ops and `ix.compute` ops) as eager PyTorch.

    The function is translated once into a list of kernels over value slots, so a call costs
    only the PyTorch work (no IR walking): fair as an eager baseline.
    """

    def __init__(self, func_op: func.FuncOp) -> None:
        self.signature = ModelSignature.of(func_op)
        slots: dict[SSAValue, int] = {arg: k for k, arg in enumerate(func_op.body.block.args)}
        self._steps: list[tuple[Kernel, tuple[int, ...]]] = []
        self._outputs: list[int] = []
        for op in func_op.body.block.ops:
            if isinstance(op, func.ReturnOp):
                self._outputs = [slots[v] for v in op.arguments]
                break
            self._steps.append((kernel_for(op), tuple(slots[v] for v in op.operands)))
            slots[op.results[0]] = len(slots)

    @staticmethod
    def from_source(source: str | ModuleOp, model: str | None = None) -> TorchModel:
        """Parse mlc text (or take a parsed module) and wrap the model `model` (or the only one)."""
        from mlc.runtime.program import select_model
        from mlc.frontend import parse_mlc

        module = source if isinstance(source, ModuleOp) else parse_mlc(source)
        return TorchModel(select_model(module, model))

    def __call__(self, args: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Evaluate with `args` (every input and parameter, by name); outputs by name."""
        env = [self._argument(spec, args) for spec in self.signature.args]
        for kernel, operands in self._steps:
            env.append(kernel(*(env[k] for k in operands)))
        return {spec.name: env[k] for spec, k in zip(self.signature.outputs, self._outputs, strict=True)}

    def run(self, params: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`Program.run`'s interface: NumPy in, NumPy out, no autograd."""
        with torch.no_grad():
            outs = self({k: torch.from_numpy(np.asarray(v)) for k, v in {**params, **inputs}.items()})
        return {k: np.array(v.numpy()) for k, v in outs.items()}  # fresh arrays, as Program.run

    @staticmethod
    def _argument(spec: TensorSpec, args: Mapping[str, Tensor]) -> Tensor:
        if spec.name not in args:
            raise ValueError(f"missing {spec.kind} '{spec.name}'")
        value = args[spec.name]
        if tuple(value.shape) != spec.shape:
            raise ValueError(f"{spec.kind} '{spec.name}' must have shape {list(spec.shape)}, got {list(value.shape)}")
        return value


def kernel_for(op: Operation) -> Kernel:
    """The kernel of one graph-level op: from the `nn` table, or a compute op's gather plan."""
    if isinstance(op, ix.ComputeOp):
        return compute_kernel(op)
    builder = NN_KERNELS.get(type(op))
    if builder is None:
        raise NotImplementedError(f"torch reference: unsupported op {op.name}")
    return builder(op)


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


def conv2d_nhwc(x: Tensor, w: Tensor, stride: Sequence[int], pads: Sequence[int], dilation: Sequence[int], pad_value: float = 0.0) -> Tensor:
    """y[n,i,j,f] = Σ_{a,b,c} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c] * w[a,b,c,f].

    The OIHW filter is made contiguous: PyTorch's f64 CPU convolution rejects a strided weight
    in its backward pass."""
    oihw = w.permute(3, 2, 0, 1).contiguous()
    y = F.conv2d(pad_hw(nchw(x), pads, pad_value), oihw, stride=tuple(stride), dilation=tuple(dilation))
    return nhwc(y)


def binconv2d_nhwc(
    x: Tensor, w: Tensor, stride: Sequence[int], pads: Sequence[int], dilation: Sequence[int], mode: str, pad_value: int
) -> Tensor:
    """XNOR-Net as LANGUAGE.md states it; α and K are differentiated exactly, sign by STE."""
    alpha = w.abs().mean(dim=(0, 1, 2))  # [F]
    sw = ste_sign(w)
    if mode == "bwn":
        return conv2d_nhwc(x, alpha * sw, stride, pads, dilation)
    kh, kw = w.shape[:2]
    core = conv2d_nhwc(ste_sign(x), sw, stride, pads, dilation, pad_value=float(pad_value))  # [N,Ho,Wo,F]
    a = x.abs().mean(dim=3, keepdim=True)  # [N,H,W,1]
    box = torch.full((kh, kw, 1, 1), 1.0 / (kh * kw), dtype=x.dtype)
    k = conv2d_nhwc(a, box, stride, pads, dilation)  # [N,Ho,Wo,1], zero padded
    return core * k * alpha


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
    return lambda x, w: conv2d_nhwc(x, w, stride, pads, dilation)


@kernel(nn.BinConv2DOp)
def _binconv2d(op: nn.BinConv2DOp) -> Kernel:
    stride, pads, dilation = _ints(op.stride), _ints(op.padding), _ints(op.dilation)
    mode, pad_value = op.mode.data, op.pad_value.value.data
    return lambda x, w: binconv2d_nhwc(x, w, stride, pads, dilation, mode, pad_value)


@kernel(nn.DenseOp)
def _dense(op: nn.DenseOp) -> Kernel:
    def dense(x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
        return x @ w if b is None else x @ w + b

    return dense


@kernel(nn.MatmulOp)
def _matmul(op: nn.MatmulOp) -> Kernel:
    return torch.matmul


@kernel(nn.MaxPool2DOp)
def _maxpool2d(op: nn.MaxPool2DOp) -> Kernel:
    """Padded cells are -inf, so they never win; PyTorch's max_pool2d keeps the first maximum."""
    size, stride, pads = _ints(op.size), _ints(op.stride), _ints(op.padding)
    return lambda x: nhwc(F.max_pool2d(pad_hw(nchw(x), pads, float("-inf")), size, stride))


@kernel(nn.AvgPool2DOp)
def _avgpool2d(op: nn.AvgPool2DOp) -> Kernel:
    """Window sums of the zero-padded input over the count of in-bounds cells (TensorFlow)."""
    size, stride, pads = _ints(op.size), _ints(op.stride), _ints(op.padding)
    _, h, w, _ = shape_of(op.x)
    ones = torch.ones((1, 1, h, w), dtype=dtype_of(op.x.type))
    count = F.avg_pool2d(pad_hw(ones, pads), size, stride, divisor_override=1)  # [1,1,Ho,Wo]

    def avgpool(x: Tensor) -> Tensor:
        return nhwc(F.avg_pool2d(pad_hw(nchw(x), pads), size, stride, divisor_override=1) / count)

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
}  # fmt: skip
BINARY: dict[type[Operation], Kernel] = {nn.AddOp: torch.add, nn.SubOp: torch.sub, nn.MulOp: torch.mul, nn.DivOp: torch.div}


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


# ---------------------------------------------------------------------------------------------
# ix.compute: the whole iteration space at once
# ---------------------------------------------------------------------------------------------
def compute_kernel(op: ix.ComputeOp) -> Kernel:
    """Evaluate a compute op vectorised over its iteration space (output dims, then reduction
    variables): gather every read through its quasi-affine map (fill out of bounds), run the
    scalar body once on those tensors, then fold the reduction axes."""
    space = tuple(op.iteration_extents)
    grid = [torch.arange(n).reshape([n if k == j else 1 for j in range(len(space))]) for k, n in enumerate(space)]
    gathers = [gather_plan(read, grid) for read in op.reads]
    body = body_kernel(op, grid)
    fold = REDUCTIONS[op.reduction.data](op.rank, space)

    def run(*inputs: Tensor) -> Tensor:
        return fold(body(*(g(x) for g, x in zip(gathers, inputs, strict=True))))

    return run


def affine(expr: AffineExpr, grid: Sequence[Tensor]) -> Tensor | int:
    """An index expression at every point of the space (floor semantics for `floordiv`/`mod`)."""
    if isinstance(expr, AffineDimExpr):
        return grid[expr.position]
    if isinstance(expr, AffineConstantExpr):
        return expr.value
    assert isinstance(expr, AffineBinaryOpExpr), expr
    lhs, rhs = affine(expr.lhs, grid), affine(expr.rhs, grid)
    if expr.kind == AffineBinaryOpKind.Add:
        return lhs + rhs
    if expr.kind == AffineBinaryOpKind.Mul:
        return lhs * rhs
    lhs_t = torch.as_tensor(lhs)
    if expr.kind == AffineBinaryOpKind.FloorDiv:
        return torch.div(lhs_t, rhs, rounding_mode="floor")
    if expr.kind == AffineBinaryOpKind.CeilDiv:
        return -torch.div(-lhs_t, rhs, rounding_mode="floor")
    assert expr.kind == AffineBinaryOpKind.Mod, expr.kind
    return torch.remainder(lhs_t, rhs)


def gather_plan(read: ix.Read, grid: Sequence[Tensor]) -> Callable[[Tensor], Tensor]:
    """x[map(point)] at every point, `fill` where the map leaves x; indices computed once.

    Out-of-bounds points read a clamped (valid) index and are then masked, so the gradient of
    a masked point is 0 and repeated reads of one element accumulate (advanced indexing)."""
    shape = shape_of(read.value)
    coords = [torch.as_tensor(affine(e, grid), dtype=torch.int64) for e in read.map.results]
    inside = torch.ones((), dtype=torch.bool)
    for c, n in zip(coords, shape, strict=True):
        inside = inside & (c >= 0) & (c < n)
    clamped = tuple(c.clamp(0, n - 1) for c, n in zip(coords, shape))
    if bool(inside.all()):
        return lambda x: x[clamped]
    fill = read.fill

    def gather(x: Tensor) -> Tensor:
        return torch.where(inside, x[clamped], torch.tensor(fill, dtype=x.dtype))

    return gather


def _fold_none(rank: int, space: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    return lambda v: v.broadcast_to(space)


def _fold_sum(rank: int, space: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    axes = tuple(range(rank, len(space)))
    return lambda v: v.broadcast_to(space).sum(dim=axes)


def _fold_max(rank: int, space: tuple[int, ...]) -> Callable[[Tensor], Tensor]:
    """The first maximum in row-major order of the reduction variables, picked by `argmax` and
    gathered, so its gradient goes to that element alone (`amax` would split ties)."""

    def fold(v: Tensor) -> Tensor:
        flat = v.broadcast_to(space).reshape(*space[:rank], -1)
        first = flat.argmax(dim=-1, keepdim=True)
        return torch.take_along_dim(flat, first, dim=-1).squeeze(-1)

    return fold


REDUCTIONS: dict[str, Callable[[int, tuple[int, ...]], Callable[[Tensor], Tensor]]] = {
    "none": _fold_none, "sum": _fold_sum, "max": _fold_max,
}  # fmt: skip


# -- scalar bodies ----------------------------------------------------------------------------
def body_kernel(op: ix.ComputeOp, grid: Sequence[Tensor]) -> Kernel:
    """The body as straight-line tensor code: read scalars in (as block arguments), yield out."""
    block = op.body.block
    slots: dict[SSAValue, int] = {arg: k for k, arg in enumerate(block.args)}
    steps: list[tuple[Kernel, tuple[int, ...]]] = []
    for body_op in block.ops:
        if isinstance(body_op, ix.YieldOp):
            break
        steps.append((scalar_kernel(body_op, grid), tuple(slots[v] for v in body_op.operands)))
        slots[body_op.results[0]] = len(slots)
    result = slots[op.yield_op.value]

    def body(*reads: Tensor) -> Tensor:
        env = list(reads)
        for fn, operands in steps:
            env.append(fn(*(env[k] for k in operands)))
        return env[result]

    return body


def _first_max(a: Tensor, b: Tensor) -> Tensor:
    """arith.maximumf (NaN propagates); a tie goes to `a`, the first maximum."""
    return torch.where((a >= b) | torch.isnan(a), a, b)


def _first_min(a: Tensor, b: Tensor) -> Tensor:
    """arith.minimumf (NaN propagates); a tie goes to `a`."""
    return torch.where((a <= b) | torch.isnan(a), a, b)


def _ordered(cmp: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda a, b: cmp(a, b) & ~(torch.isnan(a) | torch.isnan(b))


def _unordered(cmp: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda a, b: cmp(a, b) | torch.isnan(a) | torch.isnan(b)


_COMPARISONS = (torch.eq, torch.gt, torch.ge, torch.lt, torch.le, torch.ne)
CMPF: dict[int, Callable[[Tensor, Tensor], Tensor]] = {
    0: lambda a, b: torch.zeros(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool),
    **{1 + k: _ordered(c) for k, c in enumerate(_COMPARISONS)},  # oeq ogt oge olt ole one
    7: lambda a, b: ~(torch.isnan(a) | torch.isnan(b)),
    **{8 + k: _unordered(c) for k, c in enumerate(_COMPARISONS)},  # ueq ugt uge ult ule une
    14: lambda a, b: torch.isnan(a) | torch.isnan(b),
    15: lambda a, b: torch.ones(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool),
}
"""arith.cmpf by predicate number (xDSL's order: false oeq ogt oge olt ole one ord ueq .. uno true)."""
CMPI: dict[int, Callable[[Tensor, Tensor], Tensor]] = {0: torch.eq, 1: torch.ne, 2: torch.lt, 3: torch.le, 4: torch.gt, 5: torch.ge}
"""arith.cmpi by predicate number (eq ne slt sle sgt sge; indices are never negative here)."""

SCALAR_OPS: dict[type[Operation], Kernel] = {
    arith.AddfOp: torch.add, arith.SubfOp: torch.sub, arith.MulfOp: torch.mul, arith.DivfOp: torch.div,
    arith.NegfOp: torch.neg, arith.MaximumfOp: _first_max, arith.MinimumfOp: _first_min,
    arith.SelectOp: torch.where,
    arith.AddiOp: torch.add, arith.SubiOp: torch.sub, arith.MuliOp: torch.mul,
    arith.FloorDivSIOp: lambda a, b: torch.div(a, b, rounding_mode="floor"), arith.RemSIOp: torch.fmod,
    arith.MaxSIOp: torch.maximum, arith.MinSIOp: torch.minimum,
    arith.IndexCastOp: lambda i: i,  # indices are int64 tensors throughout
    math.ExpOp: torch.exp, math.LogOp: torch.log, math.SqrtOp: torch.sqrt, math.AbsFOp: torch.abs,
    math.TanhOp: torch.tanh,
}  # fmt: skip
"""Scalar ops whose kernel needs nothing from the op but its operands."""


def scalar_kernel(op: Operation, grid: Sequence[Tensor]) -> Kernel:
    """The tensor kernel of one scalar body op."""
    if isinstance(op, ix.IndexOp):
        value = grid[op.dim.value.data]
        return lambda: value
    if isinstance(op, arith.ConstantOp):
        attr = op.value
        if isinstance(attr, FloatAttr):
            c = torch.tensor(attr.value.data, dtype=dtype_of(attr.type))
        else:
            assert isinstance(attr, IntegerAttr), attr
            c = torch.tensor(attr.value.data, dtype=torch.int64)
        return lambda: c
    if isinstance(op, arith.CmpfOp):
        return CMPF[op.predicate.value.data]
    if isinstance(op, arith.CmpiOp):
        return CMPI[op.predicate.value.data]
    if isinstance(op, arith.SIToFPOp):
        dtype = dtype_of(op.result.type)
        return lambda i: i.to(dtype)
    fn = SCALAR_OPS.get(type(op))
    if fn is None:
        raise NotImplementedError(f"torch reference: unsupported scalar op {op.name}")
    return fn


__all__ = [
    "NN_KERNELS", "SCALAR_OPS", "SteSign", "TorchModel", "binconv2d_nhwc", "clamped_log", "compute_kernel",
    "conv2d_nhwc", "kernel_for", "ste_sign",
]  # fmt: skip

