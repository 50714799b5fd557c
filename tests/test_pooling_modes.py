"""PyTorch's pooling modes (LANGUAGE.md): maxpool2d with dilation and ceil_mode, avgpool2d with
ceil_mode and count_pad, forward and gradients against PyTorch's own `max_pool2d`/`avg_pool2d`
(its output sizes and divisors byte for byte), on windows that start in the padding, stride >
kernel, odd sizes and batch 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import assert_close, model, nhwc, rand
from test_gradients import check_against_torch

import mlc

DTYPES = [np.float64, np.float32]

# (x shape NHWC, size, stride, padding (ph, pw) symmetric, dilation)
MAX_CASES = [
    ((1, 5, 6, 2), (2, 2), (2, 2), (0, 0), (1, 1)),
    ((2, 7, 7, 3), (3, 3), (2, 2), (1, 1), (1, 1)),  # ceil windows start in the bottom padding
    ((1, 6, 9, 2), (2, 3), (3, 2), (1, 1), (1, 1)),  # stride > kernel
    ((1, 9, 8, 2), (3, 2), (2, 1), (1, 1), (2, 2)),  # dilated
    ((2, 4, 5, 1), (2, 2), (1, 1), (1, 0), (2, 1)),
]
AVG_CASES = [
    ((1, 5, 6, 2), (2, 2), (2, 2), (0, 0)),
    ((2, 7, 7, 3), (3, 3), (2, 2), (1, 1)),
    ((1, 6, 9, 2), (2, 3), (3, 2), (1, 1)),
    ((1, 8, 5, 2), (3, 3), (2, 3), (1, 1)),
    ((2, 5, 5, 1), (4, 4), (3, 3), (2, 2)),
]


def pool_call(name, size, stride, padding, extra) -> str:
    return f"{name}(x, {size}, stride={stride}, padding={padding}{extra})"


def check(call: str, reference, x: np.ndarray) -> None:
    """Forward equal to PyTorch's; d sum(y * r) / dx equal to PyTorch's autograd."""
    program = mlc.compile(model(f"  y = {call}\n  output y", x=x))
    xt = torch.tensor(x, requires_grad=True)
    expected = nhwc(reference(nchw_of(xt)))
    out = program.run({}, {"x": x})["y"]
    assert out.shape == tuple(expected.shape), call
    assert_close(out, expected)
    r = np.random.default_rng(7).uniform(-1, 1, size=out.shape).astype(x.dtype)
    grad_program = mlc.compile(model(f"  y = {call}\n  loss = sum(y * r)\n  output loss", x=x, r=r))
    _, grads = grad_program.grad({}, {"x": x, "r": r}, wrt="inputs")
    (expected * torch.from_numpy(r)).sum().backward()
    assert_close(grads["x"], xt.grad)


def nchw_of(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 3, 1, 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("case", range(len(MAX_CASES)))
def test_maxpool2d(dtype, ceil, case):
    shape, size, stride, padding, dilation = MAX_CASES[case]
    x = rand(np.random.default_rng(61 + case), shape, dtype)
    extra = f", dilation={dilation}" + (", ceil_mode=true" if ceil else "")
    call = pool_call("maxpool2d", size, stride, padding, extra)
    check(call, lambda t: F.max_pool2d(t, size, stride, padding, dilation, ceil_mode=ceil), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ceil", [False, True])
@pytest.mark.parametrize("count_pad", [False, True])
@pytest.mark.parametrize("case", range(len(AVG_CASES)))
def test_avgpool2d(dtype, ceil, count_pad, case):
    shape, size, stride, padding = AVG_CASES[case]
    x = rand(np.random.default_rng(71 + case), shape, dtype)
    extra = (", ceil_mode=true" if ceil else "") + (", count_pad=true" if count_pad else "")
    call = pool_call("avgpool2d", size, stride, padding, extra)
    check(call, lambda t: F.avg_pool2d(t, size, stride, padding, ceil_mode=ceil, count_include_pad=count_pad), x)


def test_same_padding_with_dilation_and_the_reference():
    """`same` for a dilated max pool uses the dilation; the graph-level reference agrees."""
    x = rand(np.random.default_rng(81), (1, 7, 6, 2), np.float64)
    check_against_torch("  y = maxpool2d(x, 3, stride=1, padding=same, dilation=2, ceil_mode=true)", "y", x=x)
    check_against_torch("  y = avgpool2d(x, 3, stride=2, padding=1, ceil_mode=true, count_pad=true)", "y", x=x)


def test_options_are_checked():
    source = "model m {{\n  input x: f32[1, 5, 5, 2]\n  y = {}\n  output y\n}}\n"
    with pytest.raises(mlc.CompileError, match="ceil_mode must be true or false, got '1'"):
        mlc.compile(source.format("maxpool2d(x, 2, ceil_mode=1)"))
    with pytest.raises(mlc.CompileError, match="avgpool2d has no keyword 'dilation'"):
        mlc.compile(source.format("avgpool2d(x, 2, dilation=2)"))
