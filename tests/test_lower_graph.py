"""`mlc-lower-graph` against PyTorch: every built-in, lowered to `ix.compute` and run by the NumPy
interpreter, in float64 (to 1e-10) and float32 (to 1e-5, against a float64 reference computed
from the same float32 inputs). Layouts: mlc is NHWC / HWIO, PyTorch NCHW / OIHW."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, func, math
from xdsl.dialects.builtin import Builtin, ModuleOp, TensorType, f32, f64
from xdsl.ir import Block, Operation, Region, SSAValue
from xdsl.parser import Parser

from mlc.affine import map_from
from mlc.dialects import ix, nn
from mlc.interpreter import evaluate
from mlc.passes.lower_graph import LOWERINGS, LowerGraphPass

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-10, np.float32: 1e-5}
ELEMENT = {np.float64: f64, np.float32: f32}

Built = Operation | SSAValue | Sequence[Operation | SSAValue]


# -- harness ----------------------------------------------------------------------------------
def lower_and_run(args: Sequence[np.ndarray], build: Callable[..., Built]) -> list[np.ndarray]:
    """func(args) { return build(args) } from nn ops; lower; check; evaluate."""
    types = [TensorType(ELEMENT[a.dtype.type], list(a.shape)) for a in args]
    block = Block(arg_types=types)
    with ImplicitBuilder(block):
        built = build(*block.args)
        results = [SSAValue.get(r) for r in (built if isinstance(built, Sequence) else [built])]
        func.ReturnOp(*results)
    f = func.FuncOp("f", (types, [r.type for r in results]), Region(block))
    module = ModuleOp([f])
    module.verify()

    LowerGraphPass().apply(Context(), module)
    module.verify()
    assert all(isinstance(op, ix.ComputeOp | func.ReturnOp) for op in f.body.block.ops), str(module)
    assert_round_trips(module)
    return evaluate(f, args)


def assert_round_trips(module: ModuleOp) -> None:
    ctx = Context()
    for dialect in (Builtin, func.Func, arith.Arith, math.Math, ix.IX, nn.NN):
        ctx.load_dialect(dialect)
    text = str(module)
    assert str(Parser(ctx, text).parse_module()) == text


def check(got: np.ndarray, ref: torch.Tensor | np.ndarray, dtype: type) -> None:
    """Elementwise within `TOL` relative. float32 results near 0 from cancellation (a conv sum,
    log_softmax of the largest logit) are held to `TOL` relative to the tensor's largest
    magnitude instead; float64 passes elementwise."""
    ref = np.asarray(ref, dtype=np.float64)
    assert got.dtype == dtype and got.shape == ref.shape
    tol = TOL[dtype]
    scale = float(np.abs(ref).max(initial=0.0)) if dtype == np.float32 else 0.0
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale)


def data(rng: np.random.Generator, shape: Sequence[int], dtype: type) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


def T(a: np.ndarray) -> torch.Tensor:
    """The float64 reference input (exactly the values mlc sees)."""
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def nchw(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def resolve_padding(spec, hw: tuple[int, int], k: tuple[int, int], stride, dilation) -> tuple[int, int, int, int]:
    """`valid`, `same` (TensorFlow's) or explicit `(pt, pb, pl, pr)`."""
    if spec == "valid":
        return (0, 0, 0, 0)
    if spec == "same":
        return (*nn.same_padding(hw[0], k[0], stride[0], dilation[0]), *nn.same_padding(hw[1], k[1], stride[1], dilation[1]))
    return tuple(spec)


def torch_pad(x: torch.Tensor, pads: Sequence[int], value: float = 0.0) -> torch.Tensor:
    pt, pb, pl, pr = pads
    return F.pad(nchw(x), (pl, pr, pt, pb), value=value)


def torch_conv(x: torch.Tensor, w: torch.Tensor, stride, pads, dilation, pad_value: float = 0.0) -> torch.Tensor:
    return nhwc(F.conv2d(torch_pad(x, pads, pad_value), w.permute(3, 2, 0, 1), stride=stride, dilation=dilation))


# -- convolution ------------------------------------------------------------------------------
# (x shape NHWC, w shape HWIO, stride, padding, dilation)
CONV_CASES = [
    ((1, 7, 9, 3), (3, 3, 3, 4), (1, 1), "valid", (1, 1)),  # batch 1, odd sizes
    ((2, 8, 8, 2), (4, 4, 2, 3), (1, 1), "same", (1, 1)),  # asymmetric same: (1, 2)
    ((2, 9, 7, 3), (2, 2, 3, 2), (3, 3), "valid", (1, 1)),  # stride > kernel
    ((2, 10, 11, 2), (3, 3, 2, 2), (2, 2), "same", (2, 2)),  # dilation 2, same
    ((1, 6, 8, 1), (1, 3, 1, 5), (1, 2), (2, 0, 1, 3), (1, 2)),  # explicit padding
    ((2, 7, 7, 3), (2, 3, 3, 2), (3, 2), "same", (2, 1)),  # stride > kernel with same
]


def random_conv_cases(count: int, seed: int) -> list[tuple]:
    """Random geometries (seeded) in the same form as CONV_CASES, keeping those with an output."""
    rng = np.random.default_rng(seed)

    def ints(lo: int, hi: int, k: int = 2) -> tuple[int, ...]:
        return tuple(int(v) for v in rng.integers(lo, hi, size=k))

    cases: list[tuple] = []
    while len(cases) < count:
        (h, w), (kh, kw), stride, dilation = ints(4, 12), ints(1, 5), ints(1, 4), ints(1, 3)
        padding = ["valid", "same", ints(0, 3, 4)][int(rng.integers(3))]
        pt, pb, pl, pr = resolve_padding(padding, (h, w), (kh, kw), stride, dilation)
        if min(nn.window_out(h, kh, stride[0], dilation[0], pt, pb), nn.window_out(w, kw, stride[1], dilation[1], pl, pr)) < 1:
            continue
        (n,), (c, f) = ints(1, 3, 1), ints(1, 4)
        cases.append(((n, h, w, c), (kh, kw, c, f), stride, padding, dilation))
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, ws, stride, padding, dilation", CONV_CASES + random_conv_cases(6, seed=7))
def test_conv2d(xs, ws, stride, padding, dilation, dtype):
    rng = np.random.default_rng(1)
    x, w = data(rng, xs, dtype), data(rng, ws, dtype)
    pads = resolve_padding(padding, xs[1:3], ws[:2], stride, dilation)
    (got,) = lower_and_run([x, w], lambda a, b: nn.Conv2DOp(a, b, stride, pads, dilation))
    check(got, torch_conv(T(x), T(w), stride, pads, dilation), dtype)


def binconv_reference(x, w, stride, pads, dilation, mode: str, pad_value: int) -> torch.Tensor:
    """LANGUAGE.md's formula, literally, with PyTorch ops."""
    sign = lambda v: torch.where(v >= 0, 1.0, -1.0).to(torch.float64)  # noqa: E731
    kh, kw = w.shape[:2]
    alpha = w.abs().mean(dim=(0, 1, 2))
    if mode == "bwn":
        return torch_conv(x, alpha * sign(w), stride, pads, dilation)
    p = torch_conv(sign(x), sign(w), stride, pads, dilation, pad_value=float(pad_value))
    a = x.abs().mean(dim=3, keepdim=True)
    k = torch_conv(a, torch.full((kh, kw, 1, 1), 1.0 / (kh * kw), dtype=torch.float64), stride, pads, dilation)
    return p * k * alpha


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["xnor", "bwn"])
@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("case", [1, 2, 3, 5])
def test_binconv2d(case, pad_value, mode, dtype):
    xs, ws, stride, padding, dilation = CONV_CASES[case]
    rng = np.random.default_rng(2)
    x, w = data(rng, xs, dtype), data(rng, ws, dtype)
    x.reshape(-1)[::5] = 0.0  # sign(0) = +1
    w.reshape(-1)[::7] = 0.0
    pads = resolve_padding(padding, xs[1:3], ws[:2], stride, dilation)
    (got,) = lower_and_run(
        [x, w], lambda a, b: nn.BinConv2DOp(a, b, stride, pads, dilation, mode=mode, pad_value=pad_value)
    )
    check(got, binconv_reference(T(x), T(w), stride, pads, dilation, mode, pad_value), dtype)


# -- dense / matmul ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, i, o, bias", [(3, 5, 4, True), (1, 7, 3, True), (4, 6, 2, False)])
def test_dense(n, i, o, bias, dtype):
    rng = np.random.default_rng(3)
    x, w, b = data(rng, (n, i), dtype), data(rng, (i, o), dtype), data(rng, (o,), dtype)
    if bias:
        (got,) = lower_and_run([x, w, b], lambda a, c, d: nn.DenseOp(a, c, d))
        check(got, F.linear(T(x), T(w).T, T(b)), dtype)
    else:
        (got,) = lower_and_run([x, w], lambda a, c: nn.DenseOp(a, c))
        check(got, T(x) @ T(w), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", [(3, 5, 4), (1, 1, 6), (7, 2, 1)])
def test_matmul(m, k, n, dtype):
    rng = np.random.default_rng(4)
    a, b = data(rng, (m, k), dtype), data(rng, (k, n), dtype)
    (got,) = lower_and_run([a, b], lambda x, y: nn.MatmulOp(x, y))
    check(got, T(a) @ T(b), dtype)


# -- pooling ----------------------------------------------------------------------------------
# (x shape, size, stride, padding)
POOL_CASES = [
    ((2, 7, 7, 3), (3, 3), (2, 2), "same"),  # pads (1, 1, 1, 1)
    ((1, 8, 9, 2), (3, 3), (2, 2), "same"),  # pads (0, 1, 1, 1)
    ((2, 9, 8, 2), (2, 2), (3, 3), "valid"),  # stride > size
    ((1, 6, 6, 1), (2, 3), (2, 1), "same"),  # pads (0, 0, 1, 1)
    ((2, 5, 7, 2), (4, 4), (1, 1), "same"),  # pads (1, 2, 1, 2)
    ((1, 5, 6, 2), (2, 2), (2, 2), (1, 0, 0, 1)),  # explicit
    ((1, 4, 4, 1), (4, 4), (4, 4), "valid"),  # one window
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, size, stride, padding", POOL_CASES)
def test_maxpool2d(xs, size, stride, padding, dtype):
    x = data(np.random.default_rng(5), xs, dtype)
    pads = resolve_padding(padding, xs[1:3], size, stride, (1, 1))
    (got,) = lower_and_run([x], lambda a: nn.MaxPool2DOp(a, size, stride, pads))
    check(got, nhwc(F.max_pool2d(torch_pad(T(x), pads, float("-inf")), size, stride)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("xs, size, stride, padding", POOL_CASES)
def test_avgpool2d(xs, size, stride, padding, dtype):
    """TensorFlow's average: window sum over the in-bounds cells / their number."""
    x = data(np.random.default_rng(6), xs, dtype)
    pads = resolve_padding(padding, xs[1:3], size, stride, (1, 1))
    (got,) = lower_and_run([x], lambda a: nn.AvgPool2DOp(a, size, stride, pads))

    def window_sum(t: torch.Tensor) -> torch.Tensor:
        return nhwc(F.avg_pool2d(torch_pad(t, pads), size, stride, divisor_override=1))

    check(got, window_sum(T(x)) / window_sum(torch.ones_like(T(x))), dtype)


# -- shape ops --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "src, dst",
    [
        ((2, 3, 4, 5), (2, 60)),  # flatten
        ((6, 4), (2, 3, 4)),
        ((2, 1, 6), (3, 4)),
        ((4, 6), (24,)),
        ((3, 4, 5), (5, 12)),
        ((2, 3, 4, 5), (2, 12, 5)),
        ((1, 1), ()),
        ((6,), (6, 1)),
        ((2, 9), (3, 2, 3)),
    ],
)
def test_reshape(src, dst, dtype):
    x = data(np.random.default_rng(7), src, dtype)
    (got,) = lower_and_run([x], lambda a: nn.ReshapeOp(a, dst))
    check(got, T(x).reshape(dst), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shapes, axis",
    [
        ([(2, 3), (2, 4)], 1),
        ([(1, 3), (4, 3), (2, 3)], 0),
        ([(2, 3, 1, 2), (2, 3, 4, 2), (2, 3, 2, 2)], 2),
        ([(2, 2, 3), (2, 2, 1)], 2),
        ([(5,)], 0),
    ],
)
def test_concat(shapes, axis, dtype):
    rng = np.random.default_rng(8)
    xs = [data(rng, s, dtype) for s in shapes]
    (got,) = lower_and_run(xs, lambda *vs: nn.ConcatOp(vs, axis))
    check(got, torch.cat([T(x) for x in xs], dim=axis), dtype)


# -- elementwise ------------------------------------------------------------------------------
UNARY_REFERENCE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "sign": lambda v: torch.where(v >= 0, 1.0, -1.0).to(torch.float64),
    "neg": torch.neg,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(UNARY_REFERENCE))
def test_unary(name, dtype):
    x = data(np.random.default_rng(9), (3, 4, 5), dtype) * 3
    x.reshape(-1)[::6] = 0.0
    if name in ("log", "sqrt"):
        x = np.abs(x) + dtype(0.1)
    (got,) = lower_and_run([x], lambda a: nn.UNARY[name](a))
    check(got, UNARY_REFERENCE[name](T(x)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("symbol", ["+", "-", "*", "/"])
@pytest.mark.parametrize("a_shape, b_shape", [((2, 3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3)), ((2, 3), (2, 3)), ((3, 1), ())])
def test_binary(symbol, a_shape, b_shape, dtype):
    rng = np.random.default_rng(10)
    a, b = data(rng, a_shape, dtype), data(rng, b_shape, dtype) + dtype(3)
    reference = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div}[symbol]
    (got,) = lower_and_run([a, b], lambda x, y: nn.BINARY[symbol](x, y))
    check(got, reference(T(a), T(b)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [2.5, -0.1, 0.0])
def test_constant(value, dtype):
    x = data(np.random.default_rng(11), (2,), dtype)
    got, _ = lower_and_run([x], lambda a: [nn.ConstantOp(value, ELEMENT[dtype]), a])
    check(got, np.array(dtype(value)), dtype)


# -- reductions and normalisations ------------------------------------------------------------
REDUCE_CASES = [((3, 4, 5), (0,)), ((3, 4, 5), (1, 2)), ((3, 4, 5), (0, 1, 2)), ((4, 6), (1,)), ((3, 2), ())]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axes", REDUCE_CASES)
def test_sum(shape, axes, dtype):
    x = data(np.random.default_rng(12), shape, dtype)
    (got,) = lower_and_run([x], lambda a: nn.SumOp(a, axes))
    check(got, T(x).sum(dim=axes) if axes else T(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axes", REDUCE_CASES)
def test_mean(shape, axes, dtype):
    x = data(np.random.default_rng(13), shape, dtype)
    (got,) = lower_and_run([x], lambda a: nn.MeanOp(a, axes))
    check(got, T(x).mean(dim=axes) if axes else T(x), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, reference", [(nn.SoftmaxOp, F.softmax), (nn.LogSoftmaxOp, F.log_softmax)])
@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 3, 4)])
def test_softmax(op, reference, shape, dtype):
    x = data(np.random.default_rng(14), shape, dtype) * 20  # large logits: needs the max shift
    (got,) = lower_and_run([x], lambda a: op(a))
    check(got, reference(T(x), dim=-1), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, eps", [((6, 4), 1e-5), ((2, 3, 5, 3), 1e-3), ((1, 2, 2, 1), 1e-5)])
def test_batchnorm(shape, eps, dtype):
    rng = np.random.default_rng(15)
    x, g, b = data(rng, shape, dtype) * 2 + dtype(1), data(rng, shape[-1:], dtype), data(rng, shape[-1:], dtype)
    (got,) = lower_and_run([x, g, b], lambda a, c, d: nn.BatchNormOp(a, c, d, eps))
    channels_first = T(x) if len(shape) == 2 else nchw(T(x))
    ref = F.batch_norm(channels_first, None, None, T(g), T(b), training=True, eps=eps)
    check(got, ref if len(shape) == 2 else nhwc(ref), dtype)


# -- losses -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 2)])
def test_mse(shape, dtype):
    rng = np.random.default_rng(16)
    p, t = data(rng, shape, dtype), data(rng, shape, dtype)
    (got,) = lower_and_run([p, t], lambda a, b: nn.MSEOp(a, b))
    check(got, F.mse_loss(T(p), T(t)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4,)])
def test_bce(shape, dtype):
    rng = np.random.default_rng(17)
    p = rng.uniform(0.01, 0.99, shape).astype(dtype)
    t = rng.uniform(0, 1, shape).astype(dtype)
    p.reshape(-1)[:2] = [0.0, 1.0]  # log clamped at -100
    (got,) = lower_and_run([p, t], lambda a, b: nn.BCEOp(a, b))
    check(got, F.binary_cross_entropy(T(p), T(t), reduction="sum") / shape[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k", [(4, 6), (1, 3)])
def test_softmax_cross_entropy(n, k, dtype):
    rng = np.random.default_rng(18)
    logits = data(rng, (n, k), dtype) * 5
    onehot = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    (got,) = lower_and_run([logits, onehot], lambda a, b: nn.SoftmaxCrossEntropyOp(a, b))
    check(got, F.cross_entropy(T(logits), T(onehot)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (1, 5)])
def test_kl_normal(shape, dtype):
    rng = np.random.default_rng(19)
    mu, logvar = data(rng, shape, dtype), data(rng, shape, dtype)
    (got,) = lower_and_run([mu, logvar], lambda a, b: nn.KLNormalOp(a, b))
    ref = 0.5 * (T(mu) ** 2 + T(logvar).exp() - T(logvar) - 1).sum() / shape[0]
    check(got, ref, dtype)


# -- the pass as a whole ----------------------------------------------------------------------
def test_every_nn_op_has_a_lowering():
    assert set(nn.NN.operations) <= set(LOWERINGS)
    assert LowerGraphPass.name == "mlc-lower-graph"


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_cnn(dtype):
    """conv -> +bias -> relu -> maxpool -> flatten -> dense -> softmax_cross_entropy, in one function."""
    rng = np.random.default_rng(20)
    x, w1, b1 = data(rng, (2, 6, 6, 1), dtype), data(rng, (3, 3, 1, 4), dtype), data(rng, (4,), dtype)
    w2, b2 = data(rng, (36, 3), dtype), data(rng, (3,), dtype)
    y = np.eye(3, dtype=dtype)[[0, 2]]

    def model(x, w1, b1, w2, b2, y):
        h = nn.Conv2DOp(x, w1, (1, 1), (1, 1, 1, 1), (1, 1)).out
        h = nn.ReluOp(nn.AddOp(h, b1).out).out
        h = nn.MaxPool2DOp(h, (2, 2)).out
        logits = nn.DenseOp(nn.ReshapeOp(h, (2, 36)).out, w2, b2).out
        return [nn.SoftmaxCrossEntropyOp(logits, y), logits]

    loss, logits = lower_and_run([x, w1, b1, w2, b2, y], model)
    h = torch.relu(torch_conv(T(x), T(w1), (1, 1), (1, 1, 1, 1), (1, 1)) + T(b1))
    h = nhwc(F.max_pool2d(nchw(h), 2))
    ref_logits = h.reshape(2, 36) @ T(w2) + T(b2)
    check(logits, ref_logits, dtype)
    check(loss, F.cross_entropy(ref_logits, T(y)), dtype)


def test_existing_compute_ops_are_left_alone():
    t = TensorType(f64, [3])
    block = Block(arg_types=[t])
    with ImplicitBuilder(block):
        kept = ix.ComputeOp.build(t, [ix.Read(block.args[0], map_from(1, lambda d: [d]))], lambda xs: xs[0])
        func.ReturnOp(nn.NegOp(kept.result))
    module = ModuleOp([func.FuncOp("f", ([t], [t]), Region(block))])
    LowerGraphPass().apply(Context(), module)
    module.verify()
    assert block.first_op is kept
    assert sum(isinstance(op, ix.ComputeOp) for op in block.ops) == 2


# -- the interpreter itself (the oracle must be right on its own) -----------------------------
INTERPRETER_CASE = """
func.func @f(%x: tensor<5xf64>) -> (tensor<7xf64>, tensor<f64>, tensor<3xf64>) {
  %y = ix.compute (%x[(d0 - 3) floordiv 2 + d0 mod 3] fill 9.0) : (tensor<5xf64>) -> tensor<7xf64> {
  ^bb0(%a: f64):
    ix.yield %a : f64
  }
  %m = ix.compute max(r0: 5) (%x[r0 - 1] fill -inf) : (tensor<5xf64>) -> tensor<f64> {
  ^bb0(%a: f64):
    ix.yield %a : f64
  }
  %s = ix.compute sum(r0: 2) (%x[d0 + r0]) : (tensor<5xf64>) -> tensor<3xf64> {
  ^bb0(%a: f64):
    %i = ix.index 0
    %two = arith.constant 2 : index
    %t = arith.subi %i, %two : index
    %q = arith.floordivsi %t, %two : index
    %w = arith.index_cast %q : index to i64
    %f = arith.sitofp %w : i64 to f64
    %nan = arith.cmpf uno, %a, %a : f64
    %big = arith.cmpf ugt, %a, %f : f64
    %z = arith.constant 0.0 : f64
    %k = arith.select %big, %a, %z : f64
    %r = arith.select %nan, %f, %k : f64
    ix.yield %r : f64
  }
  func.return %y, %m, %s : tensor<7xf64>, tensor<f64>, tensor<3xf64>
}
"""


def test_interpreter_semantics():
    """Floor division and modulo of negatives, fills, a max over -inf-filled cells, ix.index with
    index arithmetic, and NaN under ordered/unordered comparisons, against values by hand."""
    ctx = Context()
    for dialect in (Builtin, func.Func, arith.Arith, math.Math, ix.IX):
        ctx.load_dialect(dialect)
    f = next(iter(Parser(ctx, INTERPRETER_CASE).parse_module().body.block.ops))
    x = np.array([0.0, -10.0, np.nan, 30.0, 5.0])
    y, m, s = evaluate(f, [x])
    # y[d] = x[(d - 3) // 2 + d % 3] or 9 outside: indices -2, 0, 1, 0, 1, 3, 1
    np.testing.assert_array_equal(y, [9.0, 0.0, -10.0, 0.0, -10.0, 30.0, -10.0])
    assert np.isnan(m)  # max is over real values (NaN included), the filled -inf never wins
    # s[d] = Σ_r g(x[d + r], (d - 2) // 2), g(a, f) = f if a is NaN else (a if a > f else 0)
    np.testing.assert_array_equal(s, [0.0 + 0.0, 0.0 + -1.0, 0.0 + 30.0])
