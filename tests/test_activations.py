"""The activations with PyTorch's definitions (LANGUAGE.md): square, silu, softplus (with beta and
threshold), erf, gelu (both forms), leaky_relu, elu, hardtanh and clamp (number and tensor bounds), forward against
PyTorch's own functions (f64 1e-10, f32 1e-5 of the magnitude) and gradients against autograd,
at their kinks too (0, lo, hi exactly, softplus's threshold and an input whose exp overflows),
erf and gelu over a wide range, clamp at ties of x with its bounds and of the bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import assert_close, compile_error, model, rand, run
from test_gradients import check_against_torch

import mlc

DTYPES = [np.float64, np.float32]

CALLS = {  # mlc call -> the PyTorch function it must equal
    "square(x)": torch.square,
    "silu(x)": F.silu,
    "softplus(x)": F.softplus,
    "softplus(x, beta=3, threshold=0.75)": lambda t: F.softplus(t, 3.0, 0.75),
    "softplus(x, beta=-0.5)": lambda t: F.softplus(t, -0.5),
    "erf(x)": torch.erf,
    "gelu(x)": F.gelu,
    "gelu(x, approximate=tanh)": lambda t: F.gelu(t, approximate="tanh"),
    "gelu(x, approximate=none)": F.gelu,
    "leaky_relu(x)": F.leaky_relu,
    "leaky_relu(x, alpha=0.3)": lambda t: F.leaky_relu(t, 0.3),
    "leaky_relu(x, alpha=-2)": lambda t: F.leaky_relu(t, -2.0),
    "elu(x)": F.elu,
    "elu(x, alpha=0.5)": lambda t: F.elu(t, 0.5),
    "hardtanh(x)": F.hardtanh,
    "hardtanh(x, lo=-0.5, hi=2)": lambda t: F.hardtanh(t, -0.5, 2.0),
    "clamp(x, -0.5, 0.75)": lambda t: torch.clamp(t, -0.5, 0.75),
    "clamp(x, lo=0, hi=0)": lambda t: torch.clamp(t, 0.0, 0.0),
}


def inputs(dtype, shape=(3, 5, 7)) -> np.ndarray:
    x = rand(np.random.default_rng(21), shape, dtype, -3, 3)
    # The kinks: 0, every lo and hi above, softplus's threshold and beyond, exp overflowing.
    x.flat[:12] = [0.0, -0.5, 0.75, 2.0, -1.0, 1.0, 20.0, 20.5, 100.0, -100.0, 19.5, -0.0]
    return x


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_against_pytorch(dtype):
    x = inputs(dtype)
    names = [f"o{k}" for k in range(len(CALLS))]
    body = "\n".join(f"  {n} = {call}" for n, call in zip(names, CALLS)) + f"\n  output {', '.join(names)}"
    out = run(model(body, x=x), x=x)
    for n, (call, reference) in zip(names, CALLS.items()):
        expected = reference(torch.from_numpy(x))
        assert np.all(np.isfinite(out[n])), call
        assert_close(out[n], expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("call", CALLS)
def test_gradient_against_autograd(dtype, call):
    """d/dx at the kinks is PyTorch's convention: leaky_relu and elu take alpha at 0, hardtanh
    0 on its edges, clamp 1 on its edges."""
    x = inputs(dtype, (4, 6))
    check_against_torch(f"  y = {call} * 3", "y", x=x)


def test_options_are_checked() -> None:
    source = "model m {{\n  input x: f32[2]\n  y = {}\n  output y\n}}\n"
    with pytest.raises(mlc.CompileError, match=r"<input>:3:7: error: clamp: lo=2 is greater than hi=1"):
        mlc.compile(source.format("clamp(x, 2, 1)"))
    with pytest.raises(mlc.CompileError, match=r"<input>:3:.*alpha.*a number"):
        mlc.compile(source.format("leaky_relu(x, alpha=x)"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_pow_against_pytorch(dtype):
    """torch.pow with broadcasting: a > 0 with a varying exponent (d/db = log(a) a^b), and a of
    either sign with integer literal exponents (d/da = b a^(b-1), exact at a = 0)."""
    rng = np.random.default_rng(23)
    a, b, s = rand(rng, (3, 4), dtype, 0.2, 2.0), rand(rng, (4,), dtype, -1.5, 2.5), rand(rng, (3, 4), dtype, -2, 2)
    s[0, 0] = 0.0
    out = run(model("  y = pow(a, b)\n  z = pow(s, 3) + pow(s, 2)\n  output y, z", a=a, b=b, s=s), a=a, b=b, s=s)
    assert_close(out["y"], torch.pow(torch.from_numpy(a), torch.from_numpy(b)))
    assert_close(out["z"], torch.pow(torch.from_numpy(s), 3) + torch.pow(torch.from_numpy(s), 2))
    check_against_torch("  y = pow(a, b) * 2", "y", a=a, b=b)
    check_against_torch("  y = pow(s, 3) - pow(s, 2)", "y", s=s)


def wide(dtype, count: int = 400) -> np.ndarray:
    """erf/gelu inputs: uniform on [-10, 10] (erf is ±1 to f64 precision beyond 6), magnitudes from
    1e-30 to 30 of either sign, ±0, the pieces' ends of mlc's f32 erf (0.75, 1.5, 4)."""
    rng = np.random.default_rng(22)
    magnitudes = np.exp(rng.uniform(np.log(1e-30), np.log(30.0), count)) * rng.choice([-1.0, 1.0], count)
    special = [0.0, -0.0, 0.75, -0.75, 1.5, -1.5, 4.0, -4.0, 6.5, -6.5, 3.9, -27.0, 1e-30, -1e-30]
    return np.concatenate([rng.uniform(-10, 10, count), magnitudes, special]).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_erf_and_gelu_over_a_wide_range(dtype):
    x = wide(dtype)
    out = run(model("  a = erf(x)\n  b = gelu(x)\n  c = gelu(x, approximate=tanh)\n  output a, b, c", x=x), x=x)
    t = torch.from_numpy(x)
    for name, expected in (("a", torch.erf(t)), ("b", F.gelu(t)), ("c", F.gelu(t, approximate="tanh"))):
        assert_close(out[name], expected)
    tiny = np.abs(x) < 1e-20  # erf(v) = 2 v / sqrt(pi) there: relative, not only of the magnitude
    np.testing.assert_allclose(out["a"][tiny], torch.erf(t).numpy()[tiny], rtol=TOL_OF[dtype])
    assert np.array_equal(np.signbit(out["a"]), np.signbit(x))  # odd, with erf(-0) = -0


TOL_OF = {np.float64: 1e-10, np.float32: 1e-5}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("call", ["erf(x)", "gelu(x)", "gelu(x, approximate=tanh)"])
def test_erf_and_gelu_gradients_over_a_wide_range(dtype, call):
    """erf' = 2/sqrt(pi) exp(-v^2), 0 once that underflows; gelu's through it (or tanh)."""
    check_against_torch(f"  y = {call} * 3", "y", x=wide(dtype, 60).reshape(2, -1))


def test_gelu_approximation_is_checked() -> None:
    text = compile_error("model m {\n  input x: f32[2]\n  y = gelu(x, approximate=sigmoid)\n  output y\n}\n")
    assert text.startswith("<input>:3:") and "approximate must be none or tanh, got 'sigmoid'" in text, text


def test_softplus_beta_zero_is_an_error() -> None:
    text = compile_error("model m {\n  input x: f32[2]\n  y = softplus(x, beta=0)\n  output y\n}\n")
    assert text.startswith("<input>:3:") and "softplus: beta must not be 0" in text, text


def clamp_inputs(dtype) -> dict[str, np.ndarray]:
    """x [3, 4, 5] between bounds lo [4, 1] and hi [5] that broadcast, with every tie: x on lo, on
    hi, below, on and above lo == hi, and bounds with lo > hi."""
    rng = np.random.default_rng(24)
    x, lo, hi = rand(rng, (3, 4, 5), dtype, -2, 2), rand(rng, (4, 1), dtype, -1, 0), rand(rng, (5,), dtype, 0, 1)
    hi[0] = lo[0, 0]  # lo == hi at [., 0, 0]
    lo[3, 0] = 1.5  # lo > hi on row 3
    x[:, 0, 0] = lo[0, 0] - 0.5, lo[0, 0], lo[0, 0] + 0.3
    x[0, 1, 1], x[1, 1, 2], x[2, 3, 4] = lo[1, 0], hi[2], hi[4]
    return {"x": x, "lo": lo, "hi": hi}


@pytest.mark.parametrize("dtype", DTYPES)
def test_clamp_with_tensor_bounds(dtype):
    """torch.clamp with tensor bounds: all three broadcast; with a number for one bound too."""
    a = clamp_inputs(dtype)
    body = "  y = clamp(x, lo, hi)\n  u = clamp(x, -0.5, hi)\n  v = clamp(x, lo=lo, hi=0.25)\n  w = clamp(hi, lo, 0.5)"
    out = run(model(body + "\n  output y, u, v, w", **a), **a)
    x, lo, hi = (torch.from_numpy(a[k]) for k in ("x", "lo", "hi"))
    half = torch.tensor(0.5, dtype=x.dtype)
    expected = {"y": torch.clamp(x, lo, hi), "u": torch.clamp(x, torch.tensor(-0.5, dtype=x.dtype), hi),
                "v": torch.clamp(x, lo, torch.tensor(0.25, dtype=x.dtype)), "w": torch.clamp(hi, lo, half)}
    for name, ref in expected.items():
        assert out[name].shape == tuple(ref.shape), name
        np.testing.assert_array_equal(out[name], ref.numpy(), err_msg=name)  # a choice of elements: exact


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("call", ["clamp(x, lo, hi)", "clamp(x, -0.5, hi)", "clamp(x, lo=lo, hi=0.25)"])
def test_clamp_with_tensor_bounds_gradients(dtype, call):
    """At the ties torch.clamp's autograd: x on [lo, hi] with its edges, lo below it when lo < hi,
    hi above it or when hi < lo, and nobody below lo == hi."""
    check_against_torch(f"  y = {call} * 3", "y", **clamp_inputs(dtype))


def test_clamp_bound_errors() -> None:
    source = "model m {{\n  input x: f32[2, 3]\n  input t: f32[4]\n  input d: f64[3]\n  y = {}\n  output y\n}}\n"
    assert "<input>:5:7: error: clamp: x f32[2, 3], lo f32[4] and hi f32[] do not broadcast" in compile_error(source.format("clamp(x, t, 1)"))
    assert "different element types" in compile_error(source.format("clamp(x, 0, d)"))
    assert "clamp got 'lo' twice" in compile_error(source.format("clamp(x, t, lo=t)"))
    assert "clamp needs the argument 'hi'" in compile_error(source.format("clamp(x, lo=t)"))
