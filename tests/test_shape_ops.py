"""transpose, broadcast_to, slice, pad and upsample2d (LANGUAGE.md): forward against NumPy's and PyTorch's,
gradients against autograd, on awkward cases (negative and clamped bounds, negative and long
steps, padding a dim on one side only, padding with a value, bilinear upsampling at the edges,
of one-cell images and with a scale of 1 on one axis), and their located errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from oracle import assert_close, compile_error, model, nchw, nhwc, rand, run
from test_gradients import check_against_torch


DTYPES = [np.float64, np.float32]
SHAPE = (2, 3, 5)

TRANSPOSES = [(0, 1, 2), (2, 0, 1), (1, 0, 2), (2, 1, 0)]
SLICES = [  # (axis, start, stop, step) as Python's slice
    (2, None, None, 1), (2, 1, 4, 1), (2, -1, None, -2), (-1, None, None, 3), (0, 1, None, 1), (1, -5, 99, 1),
    (2, 4, 0, -1), (2, None, None, 7), (1, -2, -1, 1),
]
PADS = [((1, 0), 0.0), ((0, 0, 2, 1), 0.0), ((1, 1, 0, 2, 3, 0), -1.5)]
BROADCASTS = [  # (x's shape, target): size-1 dims repeated, leading dims added, both, neither
    ((2, 1, 5), (2, 3, 5)), ((1, 3, 1), (4, 2, 3, 7)), ((5,), (2, 3, 5)), ((2, 3, 5), (2, 3, 5)), ((1,), (1, 1)),
]


def slice_call(axis, start, stop, step) -> str:
    keywords = [f"axis={axis}"] + [f"{k}={v}" for k, v in (("start", start), ("stop", stop)) if v is not None]
    return f"slice(x, {', '.join(keywords + ([f'step={step}'] if step != 1 else []))})"


def expected_slice(x, axis, start, stop, step):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop, step)
    return x[tuple(index)]


def expected_pad(x, pads, value):
    pairs = [pads[k:k + 2] for k in range(0, len(pads), 2)] + [(0, 0)] * (x.ndim - len(pads) // 2)
    return np.pad(x, pairs, constant_values=value)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_against_numpy(dtype):
    x = rand(np.random.default_rng(31), SHAPE, dtype)
    calls = [f"transpose(x, {p})" for p in TRANSPOSES] + [slice_call(*s) for s in SLICES]
    calls += [f"pad(x, {pads}, value={value})" for pads, value in PADS]
    expected = [np.transpose(x, p) for p in TRANSPOSES] + [expected_slice(x, *s) for s in SLICES]
    expected += [expected_pad(x, pads, value) for pads, value in PADS]
    names = [f"o{k}" for k in range(len(calls))]
    body = "\n".join(f"  {n} = {c}" for n, c in zip(names, calls)) + f"\n  output {', '.join(names)}"
    out = run(model(body, x=x), x=x)
    for n, call, ref in zip(names, calls, expected):
        assert out[n].shape == ref.shape, call
        np.testing.assert_array_equal(out[n], ref, err_msg=call)  # a copy: exactly the same bits


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "target"), BROADCASTS)
def test_broadcast_to_against_numpy(dtype, shape, target):
    x = rand(np.random.default_rng(34), shape, dtype)
    out = run(model(f"  y = broadcast_to(x, {target})\n  output y", x=x), x=x)
    np.testing.assert_array_equal(out["y"], np.broadcast_to(x, target))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "target"), BROADCASTS)
def test_broadcast_to_gradient_sums_the_repeats(dtype, shape, target):
    x = rand(np.random.default_rng(35), shape, dtype)
    check_against_torch(f"  y = square(broadcast_to(x, {target}))", "y", x=x)


CALLS = [f"transpose(x, {p})" for p in TRANSPOSES[1:]] + [slice_call(*s) for s in SLICES[1:]]
CALLS += [f"pad(x, {pads}, value={value})" for pads, value in PADS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("call", CALLS)
def test_gradient_against_autograd(dtype, call):
    x = rand(np.random.default_rng(32), SHAPE, dtype)
    check_against_torch(f"  y = square({call})", "y", x=x)


def test_composed_with_a_reduction_and_an_activation():
    """A slice of a transpose of a padded tensor, through the schedules a real op gets."""
    x = rand(np.random.default_rng(33), (3, 4, 6), np.float64)
    check_against_torch("  y = sum(silu(slice(transpose(pad(x, (1, 2), value=0.5), (2, 0, 1)), axis=1, step=2)), axis=0)",
                        "y", x=x)


ERRORS = {
    "transpose(x, (0, 0, 1))": "transpose: [0, 0, 1] is not a permutation of the 3 dims of f32[2, 3, 5]",
    "transpose(x, (1, 0))": "transpose: [1, 0] is not a permutation of the 3 dims of f32[2, 3, 5]",
    "slice(x, axis=1, start=2, stop=1)": "start=2 stop=1 step=1 selects nothing of axis 1 (size 3)",
    "slice(x, axis=3)": "axis 3 is out of range for f32[2, 3, 5]",
    "slice(x, axis=0, step=0)": "slice step cannot be 0",
    "pad(x, (1, 2, 3))": "pad: padding [1, 2, 3] is not one (before, after) pair of sizes >= 0 per dim of f32[2, 3, 5]",
    "pad(x, (1, -1))": "pad: padding [1, -1] is not one (before, after) pair of sizes >= 0 per dim of f32[2, 3, 5]",
    "broadcast_to(x, (2, 4, 5))": "broadcast_to: cannot broadcast f32[2, 3, 5] to f32[2, 4, 5]",
    "broadcast_to(x, (3, 5))": "broadcast_to: cannot broadcast f32[2, 3, 5] to f32[3, 5]",
}


@pytest.mark.parametrize("call", ERRORS)
def test_errors_are_located(call):
    text = compile_error(f"model m {{\n  input x: f32[2, 3, 5]\n  y = {call}\n  output y\n}}\n")
    assert text.startswith("<input>:3:") and ERRORS[call] in text, text


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [2, (2, 3), (1, 2), (3, 1)])
def test_upsample2d_nearest(dtype, scale):
    """Against PyTorch's `interpolate(mode="nearest")` (bitwise: a copy), gradients against autograd."""
    x = rand(np.random.default_rng(34), (2, 3, 5, 2), dtype)
    pair = (scale, scale) if isinstance(scale, int) else scale
    out = run(model(f"  y = upsample2d(x, {scale})\n  output y", x=x), x=x)
    expected = nhwc(F.interpolate(nchw(x), scale_factor=tuple(map(float, pair)), mode="nearest"))
    np.testing.assert_array_equal(out["y"], expected.numpy())
    check_against_torch(f"  y = square(upsample2d(x, {scale}, mode=nearest))", "y", x=x)


BILINEAR = [  # (x shape, scale): batch 1, odd sizes, one-cell axes, a scale of 1 on either axis
    ((2, 3, 5, 2), 2), ((1, 4, 3, 1), (1, 3)), ((2, 5, 4, 3), (3, 2)), ((1, 1, 1, 2), 3), ((1, 7, 3, 1), 4),
    ((3, 2, 2, 1), (2, 1)), ((1, 1, 5, 2), (5, 2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,scale", BILINEAR)
def test_upsample2d_bilinear(dtype, shape, scale):
    """Against PyTorch's `interpolate(mode="bilinear", align_corners=False)` (its weights at the
    clamped edges included), gradients against autograd."""
    x = rand(np.random.default_rng(35), shape, dtype)
    pair = (scale, scale) if isinstance(scale, int) else scale
    out = run(model(f"  y = upsample2d(x, {scale}, mode=bilinear)\n  output y", x=x), x=x)
    assert_close(out["y"], nhwc(F.interpolate(nchw(x), scale_factor=tuple(map(float, pair)), mode="bilinear", align_corners=False)))
    check_against_torch(f"  y = square(upsample2d(x, {scale}, mode=bilinear))", "y", x=x)


def test_upsample2d_mode_is_checked():
    text = compile_error("model m {\n  input x: f32[1, 2, 2, 1]\n  y = upsample2d(x, 2, mode=bicubic)\n  output y\n}\n")
    assert text.startswith("<input>:3:") and "mode must be nearest or bilinear, got 'bicubic'" in text, text
