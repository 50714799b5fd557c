"""Every built-in, compiled from .mlc text to C and run, against PyTorch.

f64 to 1e-10 and f32 to 1e-5 (relative to the reference's magnitude), on shapes chosen to hit
the awkward cases: stride > kernel, asymmetric TensorFlow `same` padding, dilation 2, batch 1,
odd sizes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import assert_close, conv_ref, model, nchw, nhwc, rand, run, tf_same

DTYPES = [np.float64, np.float32]


def _pads(padding, h, w, kh, kw, stride, dilation):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        return (*tf_same(h, kh, stride[0], dilation[0]), *tf_same(w, kw, stride[1], dilation[1]))
    if isinstance(padding, int):
        return (padding,) * 4
    return padding


def _kw(value) -> str:
    return str(tuple(value)) if isinstance(value, tuple) else str(value)


# (N, H, W, C, F, KH, KW, stride, dilation, padding)
CONV_CASES = [
    (2, 7, 7, 3, 4, 3, 3, (1, 1), (1, 1), "same"),
    (1, 7, 9, 2, 3, 4, 4, (2, 2), (1, 1), "same"),  # asymmetric same padding (1 top, 2 bottom)
    (2, 8, 8, 3, 2, 1, 1, (2, 2), (1, 1), "valid"),  # stride > kernel
    (1, 9, 10, 2, 3, 2, 2, (3, 3), (1, 1), "valid"),  # stride > kernel, odd sizes
    (2, 9, 9, 2, 3, 3, 3, (1, 1), (2, 2), "same"),  # dilation 2
    (1, 11, 8, 3, 2, 3, 2, (2, 1), (2, 1), "valid"),  # mixed stride/dilation
    (1, 6, 7, 1, 2, 3, 3, (2, 2), (1, 1), 1),
    (1, 6, 7, 2, 2, 3, 3, (1, 2), (1, 1), (0, 2, 1, 0)),
    (3, 5, 5, 4, 1, 5, 5, (1, 1), (1, 1), "same"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d(case, dtype):
    n, h, w, c, f, kh, kw, stride, dilation, padding = case
    rng = np.random.default_rng(1)
    x, wt = rand(rng, (n, h, w, c), dtype), rand(rng, (kh, kw, c, f), dtype)
    pad_kw = padding if isinstance(padding, str) else _kw(padding)
    src = model(
        f"  y = conv2d(x, w, stride={_kw(stride)}, padding={pad_kw}, dilation={_kw(dilation)})\n  output y", x=x, w=wt
    )
    got = run(src, x=x, w=wt)["y"]
    assert_close(got, conv_ref(x, wt, stride, _pads(padding, h, w, kh, kw, stride, dilation), dilation))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(3, 9), w=st.integers(3, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
    sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2),
    padding=st.sampled_from(["valid", "same", 1, (1, 0, 0, 2)]), n=st.integers(1, 2),
)
def test_conv2d_property(h, w, kh, kw, sh, sw, dh, dw, padding, n):
    """Any hyper-parameters whose output is non-empty agree with PyTorch."""
    pads = _pads(padding, h, w, kh, kw, (sh, sw), (dh, dw))
    if h + pads[0] + pads[1] < dh * (kh - 1) + 1 or w + pads[2] + pads[3] < dw * (kw - 1) + 1:
        return
    rng = np.random.default_rng(h * 100 + w)
    x, wt = rand(rng, (n, h, w, 2)), rand(rng, (kh, kw, 2, 3))
    pad_kw = padding if isinstance(padding, str) else _kw(padding)
    src = model(f"  y = conv2d(x, w, stride=({sh}, {sw}), padding={pad_kw}, dilation=({dh}, {dw}))\n  output y", x=x, w=wt)
    assert_close(run(src, x=x, w=wt)["y"], conv_ref(x, wt, (sh, sw), pads, (dh, dw)))


# -- binconv2d: a reference written from LANGUAGE.md's formula with PyTorch ops ----------------
def _sign(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t))


def binconv_ref(x, w, stride, pads, dilation, mode, pad_value):
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    alpha = wt.abs().mean(dim=(0, 1, 2))  # [F]
    pt, pb, pl, pr = pads
    if mode == "bwn":
        return conv_ref(x, (alpha * _sign(wt)).numpy(), stride, pads, dilation)
    xs = F.pad(_sign(xt).permute(0, 3, 1, 2), (pl, pr, pt, pb), value=float(pad_value))
    core = nhwc(F.conv2d(xs, _sign(wt).permute(3, 2, 0, 1), stride=stride, dilation=dilation))
    a = xt.abs().mean(dim=3, keepdim=True).permute(0, 3, 1, 2)  # [N, 1, H, W]
    kh, kw = w.shape[:2]
    k = torch.full((1, 1, kh, kw), 1.0 / (kh * kw), dtype=xt.dtype)
    big_k = nhwc(F.conv2d(F.pad(a, (pl, pr, pt, pb)), k, stride=stride, dilation=dilation))  # [N, Ho, Wo, 1]
    return core * big_k * alpha


BINCONV_CASES = [
    ((2, 7, 7, 3), (3, 3, 3, 4), (1, 1), (1, 1), "same"),
    ((1, 8, 9, 2), (4, 4, 2, 3), (2, 2), (1, 1), "same"),
    ((1, 9, 9, 2), (3, 3, 2, 2), (1, 1), (2, 2), "same"),
    ((2, 8, 8, 3), (2, 2, 3, 2), (3, 3), (1, 1), "valid"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode,pad_value", [("xnor", 0), ("xnor", 1), ("xnor", -1), ("bwn", 0)])
@pytest.mark.parametrize("case", BINCONV_CASES)
def test_binconv2d(case, mode, pad_value, dtype):
    xs, ws, stride, dilation, padding = case
    rng = np.random.default_rng(7)
    x, w = rand(rng, xs, dtype), rand(rng, ws, dtype)
    src = model(
        f"  y = binconv2d(x, w, stride={_kw(stride)}, padding={padding}, dilation={_kw(dilation)}, "
        f"mode={mode}, pad_value={pad_value})\n  output y",
        x=x, w=w,
    )
    pads = _pads(padding, xs[1], xs[2], ws[0], ws[1], stride, dilation)
    assert_close(run(src, x=x, w=w)["y"], binconv_ref(x, w, stride, pads, dilation, mode, pad_value))


# -- dense, matmul, pools ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_and_matmul(dtype, bias):
    rng = np.random.default_rng(3)
    x, w, b = rand(rng, (5, 7), dtype), rand(rng, (7, 3), dtype), rand(rng, (3,), dtype)
    arrays = {"x": x, "w": w, "b": b} if bias else {"x": x, "w": w}
    call = "dense(x, w, b)" if bias else "dense(x, w)"
    out = run(model(f"  y = {call}\n  z = matmul(x, w)\n  output y, z", **arrays), **arrays)
    ref = torch.from_numpy(x) @ torch.from_numpy(w)
    assert_close(out["y"], ref + torch.from_numpy(b) if bias else ref)
    assert_close(out["z"], ref)


POOL_CASES = [  # (shape, size, stride, padding)
    ((2, 8, 8, 3), 2, None, "valid"),
    ((1, 7, 9, 2), 3, 2, "same"),
    ((1, 7, 7, 2), 2, 3, "valid"),  # stride > size
    ((2, 5, 6, 1), (2, 3), (1, 2), "same"),
    ((1, 6, 6, 2), 3, 1, "same"),  # overlapping windows
    ((1, 6, 7, 2), 3, 2, 1),
]


def _pool_ref(x, size, stride, pads, kind):
    kh, kw = size
    pt, pb, pl, pr = pads
    xt = nchw(x)
    if kind == "max":
        return nhwc(F.max_pool2d(F.pad(xt, (pl, pr, pt, pb), value=float("-inf")), (kh, kw), stride))
    total = F.avg_pool2d(F.pad(xt, (pl, pr, pt, pb)), (kh, kw), stride) * (kh * kw)
    count = F.avg_pool2d(F.pad(torch.ones_like(xt), (pl, pr, pt, pb)), (kh, kw), stride) * (kh * kw)
    return nhwc(total / count)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pool(case, kind, dtype):
    shape, size, stride, padding = case
    size2 = size if isinstance(size, tuple) else (size, size)
    stride2 = size2 if stride is None else (stride if isinstance(stride, tuple) else (stride, stride))
    rng = np.random.default_rng(5)
    x = rand(rng, shape, dtype)
    kws = f"size={_kw(size)}" + ("" if stride is None else f", stride={_kw(stride)}")
    kws += f", padding={padding if isinstance(padding, str) else _kw(padding)}"
    got = run(model(f"  y = {kind}pool2d(x, {kws})\n  output y", x=x), x=x)["y"]
    pads = _pads(padding, shape[1], shape[2], *size2, stride2, (1, 1))
    assert_close(got, _pool_ref(x, size2, stride2, pads, kind))


# -- shape ops --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_flatten_reshape_concat(dtype):
    rng = np.random.default_rng(11)
    x, y, z = rand(rng, (2, 3, 5, 4), dtype), rand(rng, (2, 3, 5, 1), dtype), rand(rng, (2, 3, 5, 2), dtype)
    body = """  f = flatten(x)
  r = reshape(x, (6, -1, 2))
  c = concat(x, y, z, axis=-1)
  d = concat(x, x, axis=1)
  output f, r, c, d"""
    out = run(model(body, x=x, y=y, z=z), x=x, y=y, z=z)
    assert_close(out["f"], x.reshape(2, -1))
    assert_close(out["r"], x.reshape(6, -1, 2))
    assert_close(out["c"], np.concatenate([x, y, z], axis=-1))
    assert_close(out["d"], np.concatenate([x, x], axis=1))


# -- elementwise and broadcasting -------------------------------------------------------------
UNARY_REFS = {
    "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "exp": torch.exp,
    "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs, "sign": _sign, "neg": torch.neg,
}


@pytest.mark.parametrize("dtype", DTYPES)
def test_unary(dtype):
    rng = np.random.default_rng(13)
    x = rand(rng, (3, 5, 7), dtype, -3, 3)
    x[0, 0, :3] = 0.0  # relu'(0), sign(0) = +1, abs(0)
    p = np.abs(x) + dtype(0.1)
    body = "\n".join(f"  o_{name} = {name}({'p' if name in ('log', 'sqrt') else 'x'})" for name in UNARY_REFS)
    out = run(model(body + f"\n  output {', '.join('o_' + n for n in UNARY_REFS)}", x=x, p=p), x=x, p=p)
    for name, ref in UNARY_REFS.items():
        assert_close(out[f"o_{name}"], ref(torch.from_numpy(p if name in ("log", "sqrt") else x)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_broadcasting(dtype):
    rng = np.random.default_rng(17)
    a, b, c = rand(rng, (2, 3, 4), dtype), rand(rng, (4,), dtype), rand(rng, (3, 1), dtype)
    d = rand(rng, (2, 1, 4), dtype, 0.5, 2.0)
    body = """  s = a + b
  t = a - c
  u = a * d
  v = a / d
  w = 2 * a - 0.5 + -c / 4
  z = c * b
  output s, t, u, v, w, z"""
    out = run(model(body, a=a, b=b, c=c, d=d), a=a, b=b, c=c, d=d)
    assert_close(out["s"], a + b)
    assert_close(out["t"], a - c)
    assert_close(out["u"], a * d)
    assert_close(out["v"], a / d)
    assert_close(out["w"], 2 * a - dtype(0.5) + -c / 4)
    assert_close(out["z"], c * b)


# -- reductions and normalisation -------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_mean_softmax(dtype):
    rng = np.random.default_rng(19)
    x = rand(rng, (3, 4, 5), dtype, -4, 4)
    body = """  s0 = sum(x)
  s1 = sum(x, axis=1)
  s2 = sum(x, axis=(0, -1))
  m0 = mean(x)
  m1 = mean(x, axis=-1)
  sm = softmax(x)
  lsm = log_softmax(x)
  output s0, s1, s2, m0, m1, sm, lsm"""
    out = run(model(body, x=x), x=x)
    t = torch.from_numpy(x)
    assert_close(out["s0"], t.sum())
    assert_close(out["s1"], t.sum(1))
    assert_close(out["s2"], t.sum((0, 2)))
    assert_close(out["m0"], t.mean())
    assert_close(out["m1"], t.mean(-1))
    assert_close(out["sm"], torch.softmax(t, -1))
    assert_close(out["lsm"], torch.log_softmax(t, -1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 5, 3), (1, 3, 4, 2)])
def test_batchnorm(shape, dtype):
    rng = np.random.default_rng(23)
    x, g, b = rand(rng, shape, dtype, -2, 3), rand(rng, shape[-1:], dtype), rand(rng, shape[-1:], dtype)
    out = run(model("  y = batchnorm(x, g, b, eps=0.001)\n  output y", x=x, g=g, b=b), x=x, g=g, b=b)
    t = torch.from_numpy(x).reshape(-1, shape[-1])
    ref = F.batch_norm(t, None, None, torch.from_numpy(g), torch.from_numpy(b), training=True, eps=0.001)
    assert_close(out["y"], ref.reshape(shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses(dtype):
    rng = np.random.default_rng(29)
    pred, target = rand(rng, (4, 6), dtype), rand(rng, (4, 6), dtype)
    p = rand(rng, (4, 6), dtype, 0.01, 0.99)
    p[0, 0], p[0, 1] = 0.0, 1.0  # the -100 clamp on both logs
    t = (rng.uniform(size=(4, 6)) > 0.5).astype(dtype)
    logits = rand(rng, (4, 6), dtype, -3, 3)
    onehot = np.eye(6, dtype=dtype)[rng.integers(0, 6, size=4)]
    mu, logvar = rand(rng, (4, 6), dtype), rand(rng, (4, 6), dtype)
    arrays = dict(pred=pred, target=target, p=p, t=t, logits=logits, onehot=onehot, mu=mu, logvar=logvar)
    body = """  a = mse(pred, target)
  b = bce(p, t)
  c = softmax_cross_entropy(logits, onehot)
  d = kl_normal(mu, logvar)
  output a, b, c, d"""
    out = run(model(body, **arrays), **arrays)
    T = {k: torch.from_numpy(v) for k, v in arrays.items()}
    assert_close(out["a"], F.mse_loss(T["pred"], T["target"]))
    assert_close(out["b"], F.binary_cross_entropy(T["p"], T["t"], reduction="sum") / 4)
    assert_close(out["c"], -(T["onehot"] * torch.log_softmax(T["logits"], -1)).sum() / 4)
    kl = 0.5 * (T["mu"] ** 2 + T["logvar"].exp() - T["logvar"] - 1).sum() / 4
    assert_close(out["d"], kl)
