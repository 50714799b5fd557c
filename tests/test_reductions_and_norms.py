"""max/min over axes, maximum/minimum, layernorm and bce_logits (LANGUAGE.md): forward against
PyTorch's functions (f64 1e-10, f32 1e-5 of the magnitude) and gradients against autograd, with
ties (where the language sends the gradient to the first extreme element, or to `a`), broadcasting,
batch 1 and logits at 0 and far from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import compile_error, assert_close, model, rand, run
from test_gradients import check_against_torch

DTYPES = [np.float64, np.float32]


def tied(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Values on a grid of 0.5 in [-1.5, 1.5]: many ties within every reduced row."""
    return (rng.integers(-3, 4, size=shape) * 0.5).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_forward(dtype):
    x = rand(np.random.default_rng(41), (2, 3, 5), dtype)
    calls = {"max(x)": torch.amax(torch.from_numpy(x), dim=(0, 1, 2)), "min(x, axis=1)": torch.amin(torch.from_numpy(x), 1),
             "max(x, axis=(0, -1))": torch.amax(torch.from_numpy(x), (0, 2)), "min(x, axis=(2, 0))": torch.amin(torch.from_numpy(x), (0, 2))}
    names = [f"o{k}" for k in range(len(calls))]
    out = run(model("\n".join(f"  {n} = {c}" for n, c in zip(names, calls)) + f"\n  output {', '.join(names)}", x=x), x=x)
    for n, ref in zip(names, calls.values()):
        np.testing.assert_array_equal(out[n], ref.numpy())  # a max picks an element: exact


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("call", ["max(x, axis=1)", "min(x, axis=(0, 2))", "max(x)", "min(x, axis=-1)"])
def test_max_min_gradient_goes_to_the_first_extreme(dtype, call):
    x = tied(np.random.default_rng(42), (3, 4, 5), dtype)
    check_against_torch(f"  y = {call} * 2", "y", x=x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_maximum_minimum_with_ties_and_broadcasting(dtype):
    rng = np.random.default_rng(43)
    a, b = tied(rng, (3, 4), dtype), tied(rng, (4,), dtype)
    out = run(model("  u = maximum(a, b)\n  v = minimum(b, a)\n  w = maximum(a, 0.5)\n  output u, v, w", a=a, b=b), a=a, b=b)
    np.testing.assert_array_equal(out["u"], np.maximum(a, b))
    np.testing.assert_array_equal(out["v"], np.minimum(b, a))
    np.testing.assert_array_equal(out["w"], np.maximum(a, dtype(0.5)))
    check_against_torch("  y = maximum(a, b) * 2 + minimum(b, a) * 3 - minimum(a, 0.5)", "y", a=a, b=b)


LAYERNORM_CASES = [((4, 6), 1), ((1, 3, 5), 1), ((2, 3, 5), 2), ((2, 3, 4, 3), 3), ((5,), 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axes", LAYERNORM_CASES)
def test_layernorm(dtype, shape, axes):
    rng = np.random.default_rng(44)
    x = rand(rng, shape, dtype, -2, 3)
    g, b = rand(rng, shape[len(shape) - axes:], dtype, 0.5, 1.5), rand(rng, shape[len(shape) - axes:], dtype)
    call = f"layernorm(x, g, b, eps=0.001, axes={axes})"
    out = run(model(f"  y = {call}\n  output y", x=x, g=g, b=b), x=x, g=g, b=b)
    ref = F.layer_norm(torch.from_numpy(x), shape[len(shape) - axes:], torch.from_numpy(g), torch.from_numpy(b), 0.001)
    assert_close(out["y"], ref)
    check_against_torch(f"  y = {call}", "y", x=x, g=g, b=b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_logits(dtype):
    rng = np.random.default_rng(45)
    z = rand(rng, (4, 6), dtype, -4, 4)
    z.flat[:5] = [0.0, -0.0, 30.0, -30.0, 100.0]  # the kink a naive formula has, and far away
    t = rng.uniform(size=(4, 6)).astype(dtype)
    out = run(model("  l = bce_logits(z, t)\n  output l", z=z, t=t), z=z, t=t)
    ref = F.binary_cross_entropy_with_logits(torch.from_numpy(z), torch.from_numpy(t), reduction="sum") / 4
    assert_close(out["l"], ref)
    check_against_torch("  y = reshape(bce_logits(z, t), (1,))", "y", z=z, t=t)


ERRORS = {
    "layernorm(x, g, g, axes=3)": "layernorm: axes=3 must be between 1 and the rank of f32[2, 3]",
    "layernorm(x, x, x)": "layernorm: gamma must be [3] for input f32[2, 3], got f32[2, 3]",
    "layernorm(x, g, g, axes=0)": "must be a positive int",
    "max(x, axis=2)": "axis 2 is out of range for f32[2, 3]",
    "bce_logits(x, g)": "bce_logits needs equal shapes, got f32[2, 3] and f32[3]",
}


@pytest.mark.parametrize("call", ERRORS)
def test_errors_are_located(call):
    text = compile_error(f"model m {{\n  input x: f32[2, 3]\n  input g: f32[3]\n  y = {call}\n  output y\n}}\n")
    assert text.startswith("<input>:4:") and ERRORS[call] in text, text
