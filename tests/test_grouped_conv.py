"""conv2d and binconv2d with `groups` (depthwise included) and the `(ph, pw)` padding form, against
PyTorch's `conv2d(groups=G)` (f64 1e-10, f32 1e-5 of the magnitude) and its autograd, on the
awkward shapes: stride > kernel, asymmetric `same` padding, dilation, batch 1, odd sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import compile_error, assert_close, model, nchw, nhwc, oihw, rand, run, tf_same
from test_gradients import check_against_torch

import mlc

DTYPES = [np.float64, np.float32]

# (x shape NHWC, (KH, KW, F), groups, keywords, explicit (pt, pb, pl, pr) padding, stride, dilation)
CASES = [
    ((2, 7, 7, 4), (3, 3, 4), 4, "padding=1", (1, 1, 1, 1), (1, 1), (1, 1)),  # depthwise
    ((1, 8, 9, 3), (3, 3, 6), 3, "padding=same, stride=2", (*tf_same(8, 3, 2), *tf_same(9, 3, 2)), (2, 2), (1, 1)),  # multiplier 2
    ((2, 9, 8, 6), (3, 2, 4), 2, "padding=(1, 0)", (1, 1, 0, 0), (1, 1), (1, 1)),  # 1 < G < C, (ph, pw)
    ((1, 10, 10, 6), (2, 2, 9), 3, "stride=3", (0, 0, 0, 0), (3, 3), (1, 1)),  # stride > kernel
    ((2, 9, 9, 4), (3, 3, 8), 4, "padding=same, dilation=2", (*tf_same(9, 3, 1, 2), *tf_same(9, 3, 1, 2)), (1, 1), (2, 2)),
    ((1, 5, 6, 8), (1, 1, 4), 4, "", (0, 0, 0, 0), (1, 1), (1, 1)),  # pointwise grouped, 2 channels -> 1 filter
    # Groups wide enough for vectors, whose lanes stay inside one group (the channel read through
    # `f floordiv Fg` is one block per vector): 4 filters per group, 4-lane vectors; 16 filters
    # and channels per group, full vectors, the input gradient one gather over `c mod Cg`;
    # 12 filters per group from 4 channels.
    ((2, 6, 7, 16), (3, 3, 16), 4, "padding=same", (1, 1, 1, 1), (1, 1), (1, 1)),
    ((1, 7, 5, 32), (3, 3, 32), 2, "padding=same, stride=2", (*tf_same(7, 3, 2), *tf_same(5, 3, 2)), (2, 2), (1, 1)),
    ((2, 5, 5, 8), (3, 3, 24), 2, "padding=1", (1, 1, 1, 1), (1, 1), (1, 1)),
]


def reference(x, w, groups, pads, stride, dilation) -> torch.Tensor:
    pt, pb, pl, pr = pads
    xt = F.pad(nchw(x), (pl, pr, pt, pb))
    return nhwc(F.conv2d(xt, oihw(w).contiguous(), stride=stride, dilation=dilation, groups=groups))


def arrays(dtype, x_shape, kernel, groups, seed=51):
    rng = np.random.default_rng(seed)
    kh, kw, f = kernel
    return rand(rng, x_shape, dtype), rand(rng, (kh, kw, x_shape[3] // groups, f), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_against_pytorch(dtype, case):
    x_shape, kernel, groups, keywords, pads, stride, dilation = CASES[case]
    x, w = arrays(dtype, x_shape, kernel, groups)
    call = f"conv2d(x, w, groups={groups}{', ' + keywords if keywords else ''})"
    out = run(model(f"  y = {call}\n  output y", x=x, w=w), x=x, w=w)
    assert_close(out["y"], reference(x, w, groups, pads, stride, dilation))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [0, 1, 2, 3, 4, 6, 7, 8])
def test_gradients_against_autograd(dtype, case):
    x_shape, kernel, groups, keywords, *_ = CASES[case]
    x, w = arrays(dtype, x_shape, kernel, groups)
    check_against_torch(f"  y = conv2d(x, w, groups={groups}{', ' + keywords if keywords else ''})", "y", x=x, w=w)


@pytest.mark.parametrize("mode, pad_value", [("xnor", 0), ("xnor", -1), ("bwn", 0)])
def test_binconv2d_with_groups(mode, pad_value):
    """Against the reference's XNOR-Net (signs and α per filter, K over all channels), which uses
    PyTorch's grouped convolution; gradients with the straight-through sign."""
    x, w = arrays(np.float64, (2, 7, 7, 6), (3, 3, 4), 2, seed=52)
    check_against_torch(f"  y = binconv2d(x, w, groups=2, padding=same, mode={mode}, pad_value={pad_value})", "y", x=x, w=w)


def test_groups_are_checked():
    source = "model m {{\n  input x: f32[1, 5, 5, 6]\n  input w: f32[3, 3, {c}, {f}]\n  y = conv2d(x, w, groups={g})\n  output y\n}}\n"
    expected = {
        (2, 4, 4): "conv2d: 6 input channels are not divisible by groups=4",
        (3, 5, 2): "conv2d: 5 filters are not divisible by groups=2",
        (2, 4, 2): "conv2d: groups=2 gives 3 input channels per group but the filter expects 2",
    }
    for (c, f, g), message in expected.items():
        text = compile_error(source.format(c=c, f=f, g=g))
        assert text.startswith(f"<input>:4:7: error: {message}"), text
    with pytest.raises(mlc.CompileError, match="groups must be a positive int"):
        mlc.compile(source.format(c=6, f=4, g=0))
