"""conv2d_transpose against PyTorch's `conv_transpose2d` (f64 1e-10, f32 1e-5 of the magnitude) and
its autograd (f64 1e-9, f32 1e-4), on the awkward cases: stride > kernel, dilation > stride with
output padding, depthwise and 1 < groups < C, asymmetric `same` on odd sizes, the quadruple
padding form, padding that crops more than the taps spread, batch 1; the verifier's located
errors; the gathers the lowering builds (one per stride phase, no tap wasted)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import assert_close, compile_error, model, nhwc, rand, tf_same
from test_gradients import GRAD_TOL, check_against_torch

import mlc
from mlc.dialects import ix
from mlc.frontend import parse_mlc
from mlc.runtime.program import make_context, run_pipeline

DTYPES = [np.float64, np.float32]

# (x shape NHWC, (KH, KW, Fg), groups, keywords, stride, dilation, explicit (pt, pb, pl, pr) or
# None for `same`, output padding (for `same`: what Ho = H * sh needs, worked out below))
CASES = [
    ((2, 5, 7, 3), (3, 3, 2), 1, "stride=2, padding=same", (2, 2), (1, 1), None),  # pads (0, 1): asymmetric
    ((1, 4, 5, 2), (2, 2, 3), 1, "stride=3", (3, 3), (1, 1), (0, 0, 0, 0)),  # stride > kernel: gaps of zeros
    ((2, 3, 4, 2), (2, 1, 3), 1, "stride=(3, 2), padding=same", (3, 2), (1, 1), None),  # same with stride > kernel
    ((1, 5, 4, 2), (3, 3, 2), 1, "stride=2, dilation=3, output_padding=2", (2, 2), (3, 3), (0, 0, 0, 0)),
    ((2, 6, 5, 4), (3, 3, 1), 4, "stride=2, padding=1, output_padding=1", (2, 2), (1, 1), (1, 1, 1, 1)),  # depthwise
    ((1, 5, 4, 6), (3, 2, 2), 3, "stride=(1, 2), padding=(1, 0)", (1, 2), (1, 1), (1, 1, 0, 0)),  # 1 < G < C
    ((2, 4, 5, 3), (3, 3, 2), 1, "stride=2, padding=(1, 2, 0, 3), output_padding=(1, 0)", (2, 2), (1, 1), (1, 2, 0, 3)),
    ((1, 7, 5, 2), (3, 3, 3), 1, "padding=same", (1, 1), (1, 1), None),
    ((1, 4, 3, 2), (3, 3, 2), 1, "stride=2, dilation=2, padding=same", (2, 2), (2, 2), None),  # pads (1, 2)
    ((1, 6, 6, 2), (3, 3, 2), 1, "stride=3, padding=3", (3, 3), (1, 1), (3, 3, 3, 3)),  # crops past the taps
    ((2, 5, 5, 4), (3, 3, 2), 2, "stride=2, dilation=2, padding=2, output_padding=1", (2, 2), (2, 2), (2, 2, 2, 2)),
]


def explicit(case) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """(pads, output padding) of a case; `same` from LANGUAGE.md: Ho = H * sh with the padding
    conv2d(same) has on an input of size Ho."""
    x_shape, (kh, kw, _), _, keywords, stride, dilation, pads = case
    extra = _output_padding(keywords)
    if pads is not None:
        return pads, extra
    sizes = [x_shape[1] * stride[0], x_shape[2] * stride[1]]
    pads = (*tf_same(sizes[0], kh, stride[0], dilation[0]), *tf_same(sizes[1], kw, stride[1], dilation[1]))
    spread = [(x_shape[1 + k] - 1) * stride[k] - pads[2 * k] - pads[2 * k + 1] + dilation[k] * ((kh, kw)[k] - 1) + 1
              for k in (0, 1)]
    return pads, (sizes[0] - spread[0], sizes[1] - spread[1])


def _output_padding(keywords: str) -> tuple[int, int]:
    if "output_padding=" not in keywords:
        return 0, 0
    text = keywords.split("output_padding=")[1]
    if text.startswith("("):
        a, b = text[1:text.index(")")].split(",")
        return int(a), int(b)
    value = int(text.split(",")[0])
    return value, value


def reference(x: torch.Tensor, w: torch.Tensor, groups, stride, dilation, pads, extra) -> torch.Tensor:
    """NHWC x, [KH, KW, Fg, C] w. Symmetric pads go to PyTorch as they are; others crop its
    unpadded output (and the output padding extends it with the zeros no tap reaches)."""
    pt, pb, pl, pr = pads
    cfhw = w.permute(3, 2, 0, 1)  # PyTorch's [C, Fg, KH, KW]
    if pt == pb and pl == pr:
        y = F.conv_transpose2d(x.permute(0, 3, 1, 2), cfhw, stride=stride, padding=(pt, pl), output_padding=extra,
                               dilation=dilation, groups=groups)
        return nhwc(y)
    full = F.conv_transpose2d(x.permute(0, 3, 1, 2), cfhw, stride=stride, dilation=dilation, groups=groups)
    height, width = full.shape[2] - pt - pb + extra[0], full.shape[3] - pl - pr + extra[1]
    grown = torch.zeros((*full.shape[:2], pt + height, pl + width), dtype=full.dtype)
    rows, cols = min(full.shape[2], pt + height), min(full.shape[3], pl + width)
    grown[:, :, :rows, :cols] = full[:, :, :rows, :cols]
    return nhwc(grown[:, :, pt:, pl:])


def arrays(dtype, case, seed=61):
    x_shape, (kh, kw, fg), *_ = case
    rng = np.random.default_rng(seed)
    return rand(rng, x_shape, dtype), rand(rng, (kh, kw, fg, x_shape[3]), dtype)


def expected(case, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """PyTorch's output for `case` on x and w."""
    pads, extra = explicit(case)
    _, _, groups, _, stride, dilation, _ = case
    return reference(x, w, groups, stride, dilation, pads, extra)


def call(case) -> str:
    _, _, groups, keywords, *_ = case
    return f"conv2d_transpose(x, w{f', groups={groups}' if groups > 1 else ''}{', ' + keywords if keywords else ''})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_forward_against_pytorch(dtype, case):
    x, w = arrays(dtype, CASES[case])
    out = mlc.compile(model(f"  y = {call(CASES[case])}\n  output y", x=x, w=w)).run({}, {"x": x, "w": w})["y"]
    assert_close(out, expected(CASES[case], torch.from_numpy(x), torch.from_numpy(w)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_gradients_against_autograd(dtype, case):
    """d sum(y * r) / dx and / dw against PyTorch's autograd of its conv_transpose2d."""
    x, w = arrays(dtype, CASES[case])
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = expected(CASES[case], xt, wt)
    r = np.random.default_rng(7).uniform(-1, 1, size=tuple(y.shape)).astype(dtype)
    program = mlc.compile(model(f"  y = {call(CASES[case])}\n  loss = sum(y * r)\n  output loss", x=x, w=w, r=r))
    _, grads = program.grad({}, {"x": x, "w": w, "r": r}, wrt="inputs")
    (y * torch.from_numpy(r)).sum().backward()
    tol = GRAD_TOL[dtype]
    for name, ref in (("x", xt.grad), ("w", wt.grad)):
        assert ref is not None
        scale = float(ref.abs().max())
        np.testing.assert_allclose(grads[name], ref.numpy(), rtol=tol, atol=tol * scale, err_msg=f"d loss / d {name}")


@pytest.mark.parametrize("case", [0, 4, 6])
def test_the_reference_kernel_agrees(case):
    """The random programs' PyTorch kernel (mlc.testing.torch_nn) against mlc, gradients included."""
    x, w = arrays(np.float64, CASES[case], seed=62)
    check_against_torch(f"  y = {call(CASES[case])}", "y", x=x, w=w)


def test_output_sizes():
    """Ho = (H-1)*sh - pt - pb + dh*(KH-1) + 1 + oph; `same` is H * sh."""
    expected = {  # case -> (Ho, Wo)
        0: (10, 14), 1: (11, 14), 2: (9, 8), 3: (17, 15), 4: (12, 10), 5: (5, 8), 6: (7, 8), 7: (7, 5), 8: (8, 6),
        9: (12, 12), 10: (10, 10),
    }
    for case, (ho, wo) in expected.items():
        x, w = arrays(np.float32, CASES[case])
        program = mlc.compile(model(f"  y = {call(CASES[case])}\n  output y", x=x, w=w))
        fg, groups = CASES[case][1][2], CASES[case][2]
        assert program.run({}, {"x": x, "w": w})["y"].shape == (x.shape[0], ho, wo, groups * fg), case


def test_strides_become_dense_gathers():
    """Stride 2, 3x3: four phase gathers with 1, 2, 2 and 4 taps (9 in all: no tap is computed
    that the division would discard), then their interleave; no scatter is left."""
    x, w = arrays(np.float32, CASES[0])
    module = parse_mlc(model(f"  y = {call(CASES[0])}\n  output y", x=x, w=w))
    run_pipeline(module, "mlc-lower-graph", make_context())
    ops = [o for o in module.walk() if isinstance(o, ix.IndexNotationOp)]
    assert not any(isinstance(o, ix.ScatterOp) for o in ops)
    taps = sorted(int(np.prod(o.reduction_extents[:-1])) for o in ops if o.reduction.data == "sum")
    assert taps == [1, 2, 2, 4]
    assert [o.reduction.data for o in ops][-1] == "none"


def test_errors_are_located():
    source = ("model m {{\n  input x: f32[1, 3, 3, {c}]\n  input w: f32[{kh}, 3, {fg}, {wc}]\n"
              "  y = conv2d_transpose(x, w, {options})\n  output y\n}}\n")
    expected = {
        (6, 3, 2, 6, "groups=4"): "4:7: error: conv2d_transpose: 6 input channels are not divisible by groups=4",
        (4, 3, 2, 6, "stride=1"): "4:7: error: conv2d_transpose: input has 4 channels but the filter [KH, KW, Fg, C] expects 6",
        (2, 3, 2, 2, "stride=2, output_padding=2"):
            "4:7: error: conv2d_transpose: output_padding 2 (height) must be non-negative and smaller than "
            "max(stride=2, dilation=1) = 2",
        (2, 3, 2, 2, "stride=(1, 2), dilation=(3, 1), output_padding=(2, 2)"):
            "4:7: error: conv2d_transpose: output_padding 2 (width) must be non-negative and smaller than "
            "max(stride=2, dilation=1) = 2",
        (2, 1, 2, 2, "padding=(2, 1)"): "4:7: error: conv2d_transpose: output size -1x3 is not positive",
    }
    for (c, kh, fg, wc, options), message in expected.items():
        text = compile_error(source.format(c=c, kh=kh, fg=fg, wc=wc, options=options))
        assert text.startswith(f"<input>:{message}"), text
    text = compile_error(source.format(c=2, kh=3, fg=2, wc=2, options="padding=same, output_padding=1"))
    assert text.startswith("<input>:4:59: error: conv2d_transpose: output_padding cannot be given with padding=same"), text
    with pytest.raises(mlc.CompileError, match="output_padding must be a non-negative int or a pair"):
        mlc.compile(source.format(c=2, kh=3, fg=2, wc=2, options="output_padding=-1"))


def test_adjoint_of_conv2d():
    """<conv2d(y, w), x> = <y, conv2d_transpose(x, w)>: the same filter, the same parameters."""
    rng = np.random.default_rng(63)
    y, w = rand(rng, (2, 9, 8, 3)), rand(rng, (3, 3, 3, 4))
    options = "stride=2, padding=(1, 0, 2, 1), dilation=(1, 2)"
    conv = mlc.compile(model(f"  x = conv2d(y, w, {options})\n  output x", y=y, w=w)).run({}, {"y": y, "w": w})["x"]
    x = rand(rng, conv.shape)
    back = mlc.compile(model(f"  z = conv2d_transpose(x, w, {options}, output_padding=(1, 0))\n  output z", x=x, w=w))
    z = back.run({}, {"x": x, "w": w})["z"]
    assert z.shape == y.shape
    assert abs(float(np.sum(conv * x)) - float(np.sum(y * z))) < 1e-10 * float(np.sum(np.abs(conv * x)))
