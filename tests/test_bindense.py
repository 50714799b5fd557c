"""`bindense`: XNOR-Net's binary dense layer against a formula written here with PyTorch ops (f64
1e-10, f32 1e-5), its gradients against autograd with the straight-through sign, and its xnor
sum on packed words bitwise equal to the float lowering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import assert_close, compile_error, model, rand, run
from test_gradients import check_against_torch

import mlc
from mlc.passes.pipelines import BITPACK, DEFAULT_PIPELINE

DTYPES = [np.float64, np.float32]
SHAPES = [(1, 1, 1), (3, 130, 7), (2, 64, 5), (5, 63, 65)]  # (N, I, O): batch 1, word boundaries


def _sign(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t))


def reference(x: np.ndarray, w: np.ndarray, mode: str) -> torch.Tensor:
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    alpha = wt.abs().mean(dim=0)
    if mode == "bwn":
        return (xt @ _sign(wt)) * alpha
    return (_sign(xt) @ _sign(wt)) * xt.abs().mean(dim=1, keepdim=True) * alpha


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["xnor", "bwn"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_against_the_formula(shape, mode, dtype):
    n, i, o = shape
    rng = np.random.default_rng(i + o)
    x, w = rand(rng, (n, i), dtype), rand(rng, (i, o), dtype)
    x[0, 0] = 0.0  # sign(0) = +1
    got = run(model(f"  y = bindense(x, w, mode={mode})\n  output y", x=x, w=w), x=x, w=w)["y"]
    assert_close(got, reference(x, w, mode))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["xnor", "bwn"])
def test_gradients_against_autograd(mode, dtype):
    rng = np.random.default_rng(4)
    x, w = rand(rng, (3, 70), dtype), rand(rng, (70, 6), dtype)
    x[0, :5] = [1.0, -1.0, 0.5, 1.5, -2.0]  # |v| <= 1 and beyond: the estimator's both sides
    check_against_torch(f"  y = bindense(x, w, mode={mode})", "y", x=x, w=w)


def test_xnor_sum_is_packed_and_bitwise_the_float_one():
    source = model("  y = bindense(x, w)\n  output y", x=np.zeros((4, 200), np.float32), w=np.zeros((200, 9), np.float32))
    packed = mlc.compile(source)
    floats = mlc.compile(source, pipeline=DEFAULT_PIPELINE.replace(f"{BITPACK},", ""))
    assert "popcount" in packed.c_source and "popcount" not in floats.c_source
    rng = np.random.default_rng(8)
    arrays = {"x": rng.standard_normal((4, 200)).astype(np.float32), "w": rng.standard_normal((200, 9)).astype(np.float32)}
    assert packed.run({}, arrays)["y"].tobytes() == floats.run({}, arrays)["y"].tobytes()


def test_shapes_and_mode_are_checked():
    x, w = np.zeros((2, 5)), np.zeros((4, 3))
    assert "has 5 features but the weight" in compile_error(model("  y = bindense(x, w)\n  output y", x=x, w=w))
    assert "mode" in compile_error(model("  y = bindense(x, x, mode=same)\n  output y", x=x))
