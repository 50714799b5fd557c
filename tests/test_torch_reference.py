"""The PyTorch reference (`mlc.testing.torch_reference`) checked against direct formulas.

It is the oracle of the random-program tests and of gradient tests, so it must be trustworthy
on its own: windows are checked against a NumPy patch extraction written from LANGUAGE.md's
index formulas (not against PyTorch's conv/pool, which the reference itself uses), gradients
against the conventions of LANGUAGE.md's "Gradients" section.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import model, rand, tf_same
from random_programs import generate

from mlc.api import make_context, run_pipeline
from mlc.dialects import nn
from mlc.frontend import parse_mlc
from mlc.testing.torch_reference import NN_KERNELS, TorchModel


def _eval(body: str, **arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate a model taking `arrays` as inputs with the reference (no compiler involved)."""
    return TorchModel.from_source(model(body, **arrays)).run({}, arrays)


def _grads(source: str, wrt: str, **arrays: np.ndarray) -> np.ndarray:
    """d(first output)/d(`wrt`) through the reference."""
    args = {k: torch.tensor(v, requires_grad=(k == wrt)) for k, v in arrays.items()}
    loss = next(iter(TorchModel.from_source(source)(args).values()))
    (g,) = torch.autograd.grad(loss, args[wrt])
    return g.numpy()


# -- independent NumPy window formulas ---------------------------------------------------------
def patches(x: np.ndarray, k: tuple[int, int], stride, pads, dilation, fill: float) -> np.ndarray:
    """P[n,i,j,a,b,c] = x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c], `fill` outside x."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw), (pt, pb, pl, pr) = k, stride, dilation, pads
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    out = np.full((n, ho, wo, kh, kw, c), fill, dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for b in range(kw):
                    r, s = i * sh + a * dh - pt, j * sw + b * dw - pl
                    if 0 <= r < h and 0 <= s < w:
                        out[:, i, j, a, b, :] = x[:, r, s, :]
    return out


def conv_np(x, w, stride, pads, dilation, fill=0.0) -> np.ndarray:
    return np.einsum("nijabc,abcf->nijf", patches(x, w.shape[:2], stride, pads, dilation, fill), w)


def sign_np(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 0, 1.0, -1.0).astype(v.dtype)


def binconv_np(x, w, stride, pads, dilation, mode, pad_value) -> np.ndarray:
    kh, kw = w.shape[:2]
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    if mode == "bwn":
        return conv_np(x, alpha * sign_np(w), stride, pads, dilation)
    core = conv_np(sign_np(x), sign_np(w), stride, pads, dilation, fill=float(pad_value))
    a = np.abs(x).mean(axis=3, keepdims=True)
    k = patches(a, (kh, kw), stride, pads, dilation, 0.0).sum(axis=(3, 4)) / (kh * kw)
    return core * k * alpha


# -- the table --------------------------------------------------------------------------------
def test_every_nn_op_has_a_kernel():
    missing = [op.name for op in nn.NN.operations if op not in NN_KERNELS]
    assert not missing, f"no torch kernel for {missing}"


# -- convolutions -----------------------------------------------------------------------------
CONV_CASES = [  # (x shape, filter shape, stride, dilation, padding keyword, explicit pads or None)
    ((2, 7, 7, 3), (3, 3, 3, 4), (1, 1), (1, 1), "same", None),
    ((1, 7, 9, 2), (4, 4, 2, 3), (2, 2), (1, 1), "same", None),  # asymmetric: 1 top, 2 bottom
    ((1, 9, 8, 2), (3, 2, 2, 2), (2, 3), (2, 1), "valid", (0, 0, 0, 0)),
    ((1, 6, 7, 2), (3, 3, 2, 2), (1, 2), (1, 1), "(0, 2, 1, 0)", (0, 2, 1, 0)),
    ((1, 5, 5, 1), (2, 2, 1, 1), (3, 3), (1, 1), "1", (1, 1, 1, 1)),  # stride > kernel
]


def _pads(keyword, explicit, xs, ws, stride, dilation):
    if explicit is not None:
        return explicit
    return (*tf_same(xs[1], ws[0], stride[0], dilation[0]), *tf_same(xs[2], ws[1], stride[1], dilation[1]))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d(case):
    xs, ws, stride, dilation, padding, explicit = case
    rng = np.random.default_rng(1)
    x, w = rand(rng, xs), rand(rng, ws)
    got = _eval(f"  y = conv2d(x, w, stride={stride}, padding={padding}, dilation={dilation})\n  output y", x=x, w=w)["y"]
    ref = conv_np(x, w, stride, _pads(padding, explicit, xs, ws, stride, dilation), dilation)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode,pad_value", [("xnor", 0), ("xnor", 1), ("xnor", -1), ("bwn", 0)])
@pytest.mark.parametrize("case", CONV_CASES[:3])
def test_binconv2d(case, mode, pad_value):
    xs, ws, stride, dilation, padding, explicit = case
    rng = np.random.default_rng(2)
    x, w = rand(rng, xs), rand(rng, ws)
    x[0, 0, 0, 0] = 0.0  # sign(0) = +1
    call = f"binconv2d(x, w, stride={stride}, padding={padding}, dilation={dilation}, mode={mode}, pad_value={pad_value})"
    got = _eval(f"  y = {call}\n  output y", x=x, w=w)["y"]
    ref = binconv_np(x, w, stride, _pads(padding, explicit, xs, ws, stride, dilation), dilation, mode, pad_value)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_binconv2d_weight_gradient_is_exact_except_sign():
    """bwn: y = conv(x, mean|w| * ste_sign(w)); d/dw is the exact derivative of that product."""
    rng = np.random.default_rng(3)
    x, w, u = rand(rng, (1, 4, 4, 2)), rand(rng, (2, 2, 2, 3), lo=-1.5, hi=1.5), rand(rng, (1, 3, 3, 3))
    w[0, 0, 0, 0] = 0.0
    src = model("  l = sum(binconv2d(x, w, mode=bwn) * u)\n  output l", x=x, w=w, u=u)
    got = _grads(src, "w", x=x, w=w, u=u)
    gw = np.einsum("nijabc,nijf->abcf", patches(x, (2, 2), (1, 1), (0, 0, 0, 0), (1, 1), 0.0), u)  # dl/d(wb)
    m = w[..., 0].size
    alpha, s = np.abs(w).mean(axis=(0, 1, 2)), sign_np(w)
    ste = (np.abs(w) <= 1).astype(w.dtype)
    # wb = α s: dwb/dw via α is sign'(|w|) / M = (sign(w), 0 at 0) / M, via s is the STE
    ref = np.sign(w) / m * (gw * s).sum(axis=(0, 1, 2)) + alpha * ste * gw
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


# -- pools ------------------------------------------------------------------------------------
POOL_CASES = [  # (x shape, size, stride, padding keyword, explicit pads or None)
    ((1, 7, 9, 2), (3, 3), (2, 2), "same", None),
    ((2, 5, 6, 1), (2, 3), (1, 2), "same", None),
    ((1, 6, 7, 2), (3, 3), (2, 2), "1", (1, 1, 1, 1)),
    ((1, 6, 6, 1), (3, 2), (3, 1), "(2, 0, 0, 1)", (2, 0, 0, 1)),
    ((2, 8, 8, 3), (2, 2), (2, 2), "valid", (0, 0, 0, 0)),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_pools(case):
    xs, size, stride, padding, explicit = case
    rng = np.random.default_rng(4)
    x = rand(rng, xs, lo=-3, hi=-1)  # all negative: a padded 0 would win a max or drag a mean
    kws = f"size={size}, stride={stride}, padding={padding}"
    out = _eval(f"  a = maxpool2d(x, {kws})\n  b = avgpool2d(x, {kws})\n  output a, b", x=x)
    pads = explicit if explicit is not None else (*tf_same(xs[1], size[0], stride[0]), *tf_same(xs[2], size[1], stride[1]))
    p = patches(x, size, stride, pads, (1, 1), np.nan)
    np.testing.assert_allclose(out["a"], np.nanmax(p, axis=(3, 4)), rtol=1e-12)
    np.testing.assert_allclose(out["b"], np.nanmean(p, axis=(3, 4)), rtol=1e-12)


@pytest.mark.parametrize("size,stride,pads", [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 2), (1, 1), (1, 1, 0, 1))])
def test_maxpool_gradient_goes_to_the_first_maximum(size, stride, pads):
    """Many ties (values from {0, 1, 2}); each output's gradient goes to the first maximum of its
    window in row-major (a, b) order. Both PyTorch layouts: a padded (NCHW-contiguous) input and
    an unpadded (channels-last view) one."""
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, size=(2, 4, 5, 3)).astype(np.float64)
    src = model(f"  l = sum(maxpool2d(x, size={size}, stride={stride}, padding={pads}))\n  output l", x=x)
    got = _grads(src, "x", x=x)
    p = patches(x, size, stride, pads, (1, 1), -np.inf)  # [n, i, j, a, b, c]
    ref = np.zeros_like(x)
    for n, i, j, c in np.ndindex(p.shape[0], p.shape[1], p.shape[2], p.shape[5]):
        a, b = divmod(int(np.argmax(p[n, i, j, :, :, c])), size[1])  # argmax: the first maximum
        ref[n, i * stride[0] + a - pads[0], j * stride[1] + b - pads[2], c] += 1.0
    np.testing.assert_array_equal(got, ref)


def test_tie_jitter_reranks_ties_and_leaves_everything_else():
    """With `tie_jitter`, the tied windows of a max pool send their gradient to other cells on
    other calls, the values move by no more than the jitter, and a model without a max, min or
    clamp gives the same numbers bit for bit."""
    x = np.random.default_rng(3).integers(0, 2, size=(1, 6, 6, 2)).astype(np.float64)
    pooled, smooth = "  l = sum(maxpool2d(x, size=2))\n  output l", "  l = sum(tanh(x) * x)\n  output l"
    jittered = TorchModel.from_source(model(pooled, x=x), tie_jitter=1e-9)
    args = {"x": torch.tensor(x, requires_grad=True)}
    grads = {tuple(torch.autograd.grad(jittered(args)["l"], args["x"])[0].numpy().ravel()) for _ in range(8)}
    assert len(grads) > 1
    np.testing.assert_allclose(jittered.run({}, {"x": x})["l"], _eval(pooled, x=x)["l"], rtol=1e-8)
    assert TorchModel.from_source(model(smooth, x=x), tie_jitter=1e-9).run({}, {"x": x})["l"] == _eval(smooth, x=x)["l"]


# -- custom ops -------------------------------------------------------------------------------
CUSTOM = """
op rowmax(x: f64[N, H]) -> f64[N] {
  out[n] = max(k: H) x[n, k]
}
op window_max(x: f64[N, H]) -> f64[N, H / 2] {
  out[n, i] = max(a: 2, b: 2) x[n, 2 * i + a + b - 1]
}
op scalar_max(x: f64[N], y: f64[N]) -> f64[N] {
  out[i] = max(x[i], y[i]) + 2.0 * min(y[i], x[i])
}
op indexing(x: f64[N, H]) -> f64[N, 2 * H] {
  out[n, i] = x[n, i / 2] + x[n, i % 3] * 10.0 + x[n, i - 1] * 100.0 + x[i, i] * 1000.0 + i
}
"""


def _custom(call: str, **arrays: np.ndarray) -> str:
    return CUSTOM + model(f"  y = {call}\n  l = sum(y)\n  output l, y", **arrays)


def test_custom_op_values():
    rng = np.random.default_rng(5)
    x = rand(rng, (3, 5))
    y = TorchModel.from_source(_custom("indexing(x)", x=x)).run({}, {"x": x})["y"]

    def at(r: int, c: int) -> float:
        return float(x[r, c]) if 0 <= r < 3 and 0 <= c < 5 else 0.0

    ref = np.array([[at(n, i // 2) + 10 * at(n, i % 3) + 100 * at(n, i - 1) + 1000 * at(i, i) + i for i in range(10)] for n in range(3)])
    np.testing.assert_allclose(y, ref, rtol=1e-13)


def test_custom_max_reduction_gradient_goes_to_the_first_maximum():
    x = np.array([[1.0, 3.0, 3.0, 2.0], [4.0, 4.0, 4.0, 4.0], [0.0, -1.0, 0.0, 0.0]])
    out = TorchModel.from_source(_custom("rowmax(x)", x=x)).run({}, {"x": x})
    np.testing.assert_array_equal(out["y"], [3.0, 4.0, 0.0])
    got = _grads(_custom("rowmax(x)", x=x), "x", x=x)
    np.testing.assert_array_equal(got, [[0, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]])


def test_custom_max_over_two_variables_is_first_in_row_major_order():
    """x[2i + a + b - 1] for (a, b) = (0,0) (0,1) (1,0) (1,1): the tie between (0,1) and (1,0)
    (the same element) and a tie between distinct elements both go to the first point."""
    x = np.array([[7.0, 7.0, 1.0, 2.0, 5.0, 5.0]])
    out = TorchModel.from_source(_custom("window_max(x)", x=x)).run({}, {"x": x})
    # i=0 reads x[-1] (0), x[0], x[0], x[1]; i=1: x[1], x[2], x[2], x[3]; i=2: x[3], x[4], x[4], x[5]
    np.testing.assert_array_equal(out["y"], [[7.0, 7.0, 5.0]])
    got = _grads(_custom("window_max(x)", x=x), "x", x=x)
    np.testing.assert_array_equal(got, [[1.0, 1.0, 0.0, 0.0, 1.0, 0.0]])


def test_scalar_max_and_min_give_a_tie_to_the_first_operand():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    src = _custom("scalar_max(x, y)", x=x, y=y)
    np.testing.assert_array_equal(_grads(src, "x", x=x, y=y), [1.0, 2.0, 1.0])  # max(x, y): x wins the tie
    np.testing.assert_array_equal(_grads(src, "y", x=x, y=y), [2.0, 1.0, 2.0])  # min(y, x): y wins the tie


# -- elementwise gradients and losses ---------------------------------------------------------
def test_unary_gradient_conventions():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    grad = {name: _grads(model(f"  l = sum({name}(x))\n  output l", x=x), "x", x=x) for name in ("relu", "abs", "sign")}
    np.testing.assert_array_equal(grad["relu"], [0, 0, 0, 0, 1, 1, 1])  # relu'(0) = 0
    np.testing.assert_array_equal(grad["abs"], [-1, -1, -1, 0, 1, 1, 1])  # abs'(0) = 0
    np.testing.assert_array_equal(grad["sign"], [0, 1, 1, 1, 1, 1, 0])  # STE: |v| <= 1
    p = np.array([0.0, 4.0])
    np.testing.assert_array_equal(_grads(model("  l = sum(sqrt(p))\n  output l", p=p), "p", p=p), [np.inf, 0.25])


def test_losses_against_torch_functional():
    rng = np.random.default_rng(6)
    p = rand(rng, (4, 5), lo=0.01, hi=0.99)
    p[0, 0], p[0, 1] = 0.0, 1.0  # both logs clamped at -100
    t = (rng.uniform(size=(4, 5)) > 0.5).astype(np.float64)
    a, b = rand(rng, (4, 5)), rand(rng, (4, 5))
    body = "  m = mse(a, b)\n  c = bce(p, t)\n  s = softmax_cross_entropy(a, softmax(b))\n  k = kl_normal(a, b)\n  output c, m, s, k"
    out = _eval(body, p=p, t=t, a=a, b=b)
    T = {k: torch.from_numpy(v) for k, v in {"p": p, "t": t, "a": a, "b": b}.items()}
    np.testing.assert_allclose(out["m"], F.mse_loss(T["a"], T["b"]).numpy(), rtol=1e-13)
    np.testing.assert_allclose(out["c"], (F.binary_cross_entropy(T["p"], T["t"], reduction="sum") / 4).numpy(), rtol=1e-13)
    sce = F.cross_entropy(T["a"], torch.softmax(T["b"], -1), reduction="sum") / 4
    np.testing.assert_allclose(out["s"], sce.numpy(), rtol=1e-13)
    kl = -0.5 * (1 + T["b"] - T["a"] ** 2 - T["b"].exp()).sum() / 4
    np.testing.assert_allclose(out["k"], kl.numpy(), rtol=1e-13)
    g = _grads(model(body, p=p, t=t, a=a, b=b), "p", p=p, t=t, a=a, b=b)
    assert np.all(np.isfinite(g)) and g[0, 0] == 0.0 and g[0, 1] == 0.0  # clamped: derivative 0


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 4, 2)])
def test_batchnorm_and_softmax_against_torch_functional(shape):
    rng = np.random.default_rng(7)
    x, g, b = rand(rng, shape, lo=-2, hi=3), rand(rng, shape[-1:]), rand(rng, shape[-1:])
    out = _eval("  y = batchnorm(x, g, b, eps=0.001)\n  s = softmax(x)\n  z = log_softmax(x)\n  output y, s, z", x=x, g=g, b=b)
    t = torch.from_numpy(x)
    flat = t.reshape(-1, shape[-1])
    ref = F.batch_norm(flat, None, None, torch.from_numpy(g), torch.from_numpy(b), training=True, eps=0.001)
    np.testing.assert_allclose(out["y"], ref.reshape(shape).numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out["s"], torch.softmax(t, -1).numpy(), rtol=1e-13)
    np.testing.assert_allclose(out["z"], torch.log_softmax(t, -1).numpy(), rtol=1e-13)


def test_shape_ops_and_broadcasting():
    rng = np.random.default_rng(8)
    x, c, v = rand(rng, (2, 3, 4)), rand(rng, (3, 1)), rand(rng, (4,))
    body = "  r = reshape(x, (4, -1))\n  k = concat(x, x * 2, axis=1)\n  e = x * c - v / 2 + 1\n  s = sum(x, axis=(0, -1))\n  m = mean(x)\n  output r, k, e, s, m"
    out = _eval(body, x=x, c=c, v=v)
    np.testing.assert_allclose(out["r"], x.reshape(4, -1))
    np.testing.assert_allclose(out["k"], np.concatenate([x, 2 * x], axis=1))
    np.testing.assert_allclose(out["e"], x * c - v / 2 + 1, rtol=1e-14)
    np.testing.assert_allclose(out["s"], x.sum(axis=(0, 2)), rtol=1e-14)
    np.testing.assert_allclose(out["m"], x.mean(), rtol=1e-14)


# -- the compute-op evaluator against the nn kernels, on mlc's own lowering ---------------------
EVERY_OP = """model every_op {
  input x: f64[2, 5, 6, 2]
  input t: f64[2, 3]
  param w: f64[3, 3, 2, 3]
  param v: f64[2, 2, 3, 2]
  param d: f64[24, 3]
  param m: f64[3, 3]
  param b: f64[3] = normal(0.1)
  param g: f64[4] = uniform(0.5, 1.5)
  h = relu(conv2d(x, w, stride=(2, 1), padding=same, dilation=(1, 2)) + b)
  k = binconv2d(h, v, padding=(1, 0, 0, 1), pad_value=-1) + binconv2d(h, v, padding=same, mode=bwn)
  p = concat(maxpool2d(k, size=3, stride=2, padding=same), avgpool2d(k, size=(3, 2), stride=2, padding=same), axis=-1)
  q = batchnorm(sign(p) * sqrt(abs(p) + 1) - exp(neg(p)) / 2 + log(sigmoid(p)) + tanh(-p), g, g * 0.5)
  f = dense(reshape(q, (2, -1)), d, b)
  s = softmax(matmul(f, m))
  loss = mse(f, t) + bce(sigmoid(f), softmax(t)) + softmax_cross_entropy(f, softmax(t)) + kl_normal(f, tanh(f))
  loss = loss + mean(s) + sum(sum(q, axis=(1, 2)) * 0.01) + mean(log_softmax(f))
  output loss, f, q, p
}
"""


@pytest.mark.parametrize("seed", [-1, *range(30)])
def test_compute_evaluator_agrees_with_nn_kernels_on_mlc_lowering(seed):
    """The same model evaluated twice by the reference: through its `nn` kernels, and through its
    `ix.compute` evaluator after mlc's `mlc-lower-graph` (which uses -inf fills, index arithmetic,
    quasi-affine reshapes, selects). Agreement checks both evaluators (and that lowering)."""
    text = EVERY_OP if seed < 0 else generate(seed).text
    module = parse_mlc(text)
    graph = TorchModel.from_source(module)
    run_pipeline(module, "mlc-lower-graph", make_context())
    assert not any(op.name.startswith("nn.") for op in module.walk())
    lowered = TorchModel.from_source(module)
    rng = np.random.default_rng(seed + 1)
    args = {s.name: rng.uniform(-1, 1, size=s.shape) for s in graph.signature.args}
    a, b = graph.run({}, args), lowered.run({}, args)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-11, atol=1e-11 * max(1.0, float(np.abs(a[name]).max())))


SMOOTH = """op shift_mix(x: f64[N, H], w: f64[K]) -> f64[N, H] {
  out[n, i] = sum(k: K) x[n, i + k - 1] * w[k] + x[n, i / 2] * 0.5 + select(x[n, i] > 0.0, x[n, i], exp(x[n, i]) - 1.0)
}
model smooth {
  input x: f64[2, 5, 5, 2]
  input t: f64[2, 3]
  param w: f64[3, 3, 2, 3]
  param d: f64[27, 3]
  param k: f64[3] = normal(0.5)
  param g: f64[3] = uniform(0.5, 1.5)
  h = tanh(conv2d(x, w, stride=2, padding=same, dilation=1))
  p = batchnorm(avgpool2d(h, size=2, stride=1, padding=same), g, g * 0.1)
  f = shift_mix(dense(flatten(p), d), k)
  loss = mse(f, t) + bce(sigmoid(f), softmax(t)) + softmax_cross_entropy(f, softmax(t)) + kl_normal(f, tanh(f))
  output loss
}
"""


def test_reference_gradients_match_finite_differences():
    """Autograd through the reference agrees with central differences of its own forward pass
    on a smooth model (so its gathers, custom-op bodies and loss formulas differentiate right)."""
    reference = TorchModel.from_source(SMOOTH)
    rng = np.random.default_rng(10)
    fixed = {s.name: torch.from_numpy(rng.uniform(-1, 1, size=s.shape)) for s in reference.signature.args}
    names = [s.name for s in reference.signature.args]

    def loss(*values: torch.Tensor) -> torch.Tensor:
        return reference(dict(zip(names, values)))["loss"]

    args = tuple(fixed[n].clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(loss, args, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)
