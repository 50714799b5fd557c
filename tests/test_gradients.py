"""Gradients of every built-in and of custom ops, compiled to C, against outside oracles.

Built-ins are checked against PyTorch autograd through `mlc.testing.torch_reference` (f64 to
1e-9 and f32 to 1e-4, relative to the reference's magnitude); custom ops against float64 central
finite differences. Each model's loss is `sum(y * r)` for a random `r`, so every output element
gets a different weight.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import model, rand, type_of

import mlc
from mlc.testing.torch_reference import TorchModel

GRAD_TOL = {np.float64: 1e-9, np.float32: 1e-4}


def _assert_grad_close(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    tol = GRAD_TOL[got.dtype.type]
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-30)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale, err_msg=what)


def check_against_torch(body: str, out: str, **arrays: np.ndarray) -> None:
    """Compile `body` + `loss = sum(out * r)` with every array an input; compare all gradients."""
    prog0 = mlc.compile(model(body + f"\n  output {out}", **arrays))
    shape = prog0.run({}, arrays)[out].shape
    dtype = next(iter(arrays.values())).dtype
    r = np.random.default_rng(99).uniform(-1, 1, size=shape).astype(dtype)
    src = model(f"{body}\n  loss = sum({out} * r)\n  output loss", **arrays, r=r)
    prog = mlc.compile(src)
    inputs = {**arrays, "r": r}
    outs, grads = prog.grad({}, inputs, wrt="all")
    ref_model = TorchModel.from_source(src)
    targs = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
    loss = ref_model(targs)["loss"]
    _assert_grad_close(outs["loss"], loss.detach().numpy(), "loss")
    refs = torch.autograd.grad(loss, list(targs.values()), allow_unused=True)
    for name, ref in zip(targs, refs):
        expected = np.zeros_like(inputs[name]) if ref is None else ref.numpy()
        _assert_grad_close(grads[name], expected, f"d loss / d {name}")


DTYPES = [np.float64, np.float32]

CONV_CASES = [  # (x shape, w shape, keywords)
    ((2, 7, 7, 3), (3, 3, 3, 4), "stride=1, padding=same"),
    ((1, 7, 9, 2), (4, 4, 2, 3), "stride=2, padding=same"),
    ((2, 8, 8, 3), (1, 1, 3, 2), "stride=2, padding=valid"),
    ((1, 10, 9, 2), (3, 3, 2, 3), "stride=3, padding=same"),
    ((2, 9, 9, 2), (3, 3, 2, 3), "stride=1, padding=same, dilation=2"),
    ((1, 11, 10, 2), (3, 2, 2, 2), "stride=(2, 1), padding=(1, 0, 2, 1), dilation=(2, 1)"),
    ((1, 9, 9, 2), (3, 3, 2, 2), "stride=2, padding=1, dilation=2"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients(case, dtype):
    xs, ws, kws = case
    rng = np.random.default_rng(1)
    check_against_torch(f"  y = conv2d(x, w, {kws})", "y", x=rand(rng, xs, dtype), w=rand(rng, ws, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode,pad_value", [("xnor", 0), ("xnor", 1), ("xnor", -1), ("bwn", 0)])
@pytest.mark.parametrize("kws", ["stride=1, padding=same", "stride=2, padding=same, dilation=1", "stride=1, padding=valid, dilation=2"])
def test_binconv2d_gradients(kws, mode, pad_value, dtype):
    """Exact derivative of alpha and K; straight-through sign (LANGUAGE.md, "Gradients")."""
    rng = np.random.default_rng(2)
    x, w = rand(rng, (2, 7, 7, 3), dtype, -1.5, 1.5), rand(rng, (3, 3, 3, 2), dtype, -1.5, 1.5)
    check_against_torch(f"  y = binconv2d(x, w, {kws}, mode={mode}, pad_value={pad_value})", "y", x=x, w=w)


POOLS = ["size=2", "size=3, stride=2, padding=same", "size=3, stride=1, padding=same", "size=2, stride=3",
         "size=(2, 3), stride=(1, 2), padding=(1, 0, 0, 1)"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("kws", POOLS)
def test_pool_gradients(kws, kind, dtype):
    rng = np.random.default_rng(3)
    check_against_torch(f"  y = {kind}pool2d(x, {kws})", "y", x=rand(rng, (2, 7, 8, 3), dtype))


def test_maxpool_routes_ties_to_the_first_maximum():
    """All cells equal: each window's gradient goes to its first cell in row-major order."""
    x = np.ones((1, 4, 4, 1))
    src = model("  y = maxpool2d(x, size=2)\n  loss = sum(y)\n  output loss", x=x)
    _, grads = mlc.compile(src).grad({}, {"x": x}, wrt="inputs")
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0
    np.testing.assert_array_equal(grads["x"][0, :, :, 0], expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_matmul_shape_ops(dtype):
    rng = np.random.default_rng(4)
    arrays = dict(x=rand(rng, (3, 2, 2, 2), dtype), w=rand(rng, (8, 5), dtype), b=rand(rng, (5,), dtype),
                  z=rand(rng, (3, 4), dtype))
    body = """  f = flatten(x)
  d = dense(f, w, b)
  m = matmul(reshape(x, (3, -1)), w)
  c = concat(d, m, z, axis=-1) * concat(d, m, z, axis=1)"""
    check_against_torch(body, "c", **arrays)


@pytest.mark.parametrize("dtype", DTYPES)
def test_elementwise_gradients(dtype):
    rng = np.random.default_rng(5)
    x = rand(rng, (3, 4), dtype, -2, 2)
    x[0, :2] = 0.0  # relu'(0) = 0, abs'(0) = 0, sign' = 1 there (straight-through)
    p = rand(rng, (3, 4), dtype, 0.2, 2.0)
    b = rand(rng, (4,), dtype, 0.5, 1.5)
    body = """  u = relu(x) + sigmoid(x) * tanh(x) - exp(x) / 4 + abs(x) * sign(x) - neg(x)
  v = log(p) + sqrt(p) + (x - b) / b * 2 + 3 * x * b"""
    check_against_torch(body + "\n  y = u * v", "y", x=x, p=p, b=b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduction_and_normalisation_gradients(dtype):
    rng = np.random.default_rng(6)
    x, g, b = rand(rng, (4, 3, 5), dtype, -2, 2), rand(rng, (5,), dtype), rand(rng, (5,), dtype)
    body = """  s = sum(x, axis=1) + mean(x, axis=(1,)) * 2 + sum(x) - mean(x)
  t = softmax(x) * log_softmax(x)
  n = batchnorm(x, g, b, eps=0.01)
  y = concat(s, sum(t, axis=-1), sum(n, axis=1), axis=-1)"""
    check_against_torch(body, "y", x=x, g=g, b=b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_gradients(dtype):
    rng = np.random.default_rng(7)
    arrays = dict(
        pred=rand(rng, (4, 6), dtype), target=rand(rng, (4, 6), dtype), p=rand(rng, (4, 6), dtype, 0.05, 0.95),
        t=(rng.uniform(size=(4, 6)) > 0.5).astype(dtype), logits=rand(rng, (4, 6), dtype, -3, 3),
        onehot=np.eye(6, dtype=dtype)[rng.integers(0, 6, size=4)], mu=rand(rng, (4, 6), dtype),
        logvar=rand(rng, (4, 6), dtype),
    )
    body = """  a = mse(pred, target) + bce(p, t) * 2 + softmax_cross_entropy(logits, onehot) - kl_normal(mu, logvar)
  y = reshape(a, (1,))"""
    check_against_torch(body, "y", **arrays)


# -- custom ops against central finite differences -------------------------------------------
CUSTOM = """
op box3(x: f64[N, H, W, C]) -> f64[N, H - 2, W - 2, C] {
  out[n, i, j, c] = sum(a: 3, b: 3) x[n, i + a, j + b, c] / 9.0
}
op strided_corr(x: f64[N, H], w: f64[K]) -> f64[N, (H - K) / 2 + 1] {
  out[n, i] = sum(k: K) x[n, 2 * i + k] * w[k]
}
op upsample2(x: f64[N, H]) -> f64[N, 2 * H] {
  out[n, i] = x[n, i / 2]
}
op mix(x: f64[N, N], y: f64[N, N]) -> f64[N, N] {
  out[i, j] = x[i, i] * y[j, i % 2] + select(x[i, j] > y[i, j], exp(x[i, j]), tanh(y[j, i])) * max(k: N) (x[i, k] * y[k, j])
}
"""

CUSTOM_CASES = {
    "box3": ("box3(x)", {"x": (2, 6, 5, 2)}),
    "strided_corr": ("strided_corr(x, w)", {"x": (2, 11), "w": (3,)}),
    "upsample": ("upsample2(x)", {"x": (2, 5)}),
    "diagonal_select_max": ("mix(x, y)", {"x": (4, 4), "y": (4, 4)}),
}


@pytest.mark.parametrize("name", CUSTOM_CASES)
def test_custom_op_gradients_against_finite_differences(name):
    call, shapes = CUSTOM_CASES[name]
    rng = np.random.default_rng(8)
    arrays = {k: rng.uniform(-1, 1, size=s) for k, s in shapes.items()}
    prog0 = mlc.compile(CUSTOM + model(f"  y = {call}\n  output y", **arrays))
    r = rng.uniform(-1, 1, size=prog0.run({}, arrays)["y"].shape)
    src = CUSTOM + model(f"  y = {call}\n  loss = sum(y * r)\n  output loss", **arrays, r=r)
    prog = mlc.compile(src)
    inputs = {**arrays, "r": r}
    _, grads = prog.grad({}, inputs, wrt="inputs")
    eps = 1e-6
    for name_, value in arrays.items():
        fd = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[idx] += eps
            minus[idx] -= eps
            hi = prog.run({}, {**inputs, name_: plus})["loss"]
            lo = prog.run({}, {**inputs, name_: minus})["loss"]
            fd[idx] = (hi - lo) / (2 * eps)
        np.testing.assert_allclose(grads[name_], fd, rtol=1e-6, atol=1e-7, err_msg=name_)


def test_gradient_wrt_params_only_and_unused_param():
    x = np.random.default_rng(9).uniform(size=(2, 3))
    src = """model m {
  input x: f64[2, 3]
  param w: f64[3, 2]
  param unused: f64[4]
  loss = sum(dense(x, w))
  output loss
}"""
    prog = mlc.compile(src)
    params = prog.init_params(0)
    outs, grads = prog.grad(params, {"x": x})
    assert set(grads) == {"w", "unused"}
    np.testing.assert_allclose(grads["w"], np.repeat(x.sum(0)[:, None], 2, axis=1), rtol=1e-12)
    np.testing.assert_array_equal(grads["unused"], np.zeros(4))
    assert "loss" in outs and type_of(x) == "f64[2, 3]"
