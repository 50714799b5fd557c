"""PyTorch's own OpInfo samples (`op_db`) for the conv, pool, norm and activation built-ins, run
through mlc forward and backward against PyTorch (f64: forward 1e-10, gradients 1e-9, relative to
the reference's magnitude).

The hand-written cases of the other tests cover what we thought of; OpInfo's samples are what
PyTorch's developers thought of (unbatched inputs, groups with dilation, ceil-mode windows,
`divisor_override`, absent affine weights, running statistics in both modes). A sample runs when
the language can say exactly what PyTorch computes: NCHW becomes NHWC and OIHW/IOHW filters
HWIO, an unbatched input gets a batch of one, a bias becomes `+ b`, an absent affine weight ones
(an absent bias zeros), a `divisor_override` a zero-padded average with count_pad rescaled.
Anything else is counted with the reason.
Each op prints `samples / expressible / run / passed` (`pytest -s`) and asserts its counts. Three
layer_norm samples over one or two values leave a gradient unchecked (ILL_CONDITIONED: the exact
value cancels below float64's rounding, so neither PyTorch nor mlc meets 1e-9 of it reliably).

An op with more than LIMIT expressible samples (max_pool2d: 720 of 1440) runs a fixed-seed subset
of LIMIT by default; `MLC_OPINFO_ALL=1` runs every expressible sample.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracle import assert_close, type_of
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.opinfo.core import OpInfo, SampleInput

import mlc

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")

GRAD_TOL = 1e-9
LIMIT = None if os.environ.get("MLC_OPINFO_ALL") else 12

Layout = Callable[[torch.Tensor], torch.Tensor]
Reason = str


def same(t: torch.Tensor) -> torch.Tensor:
    return t


def image(t: torch.Tensor) -> torch.Tensor:
    """[N,] C, H, W -> N, H, W, C: an unbatched image is a batch of one (PyTorch's own meaning)."""
    return (t.unsqueeze(0) if t.dim() == 3 else t).movedim(1, -1)


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """N, C, ... -> N, ..., C: batch norm's statistics are over every axis but the channels."""
    return t.movedim(1, -1)


def hwio(w: torch.Tensor) -> torch.Tensor:
    """conv2d's [F, C/G, KH, KW] and conv_transpose2d's [C, F/G, KH, KW] -> [KH, KW, C/G or F/G, F or C]."""
    return w.permute(2, 3, 1, 0)


@dataclass
class Translation:
    """An mlc expression `y` of named tensors, each with the map from PyTorch's layout to mlc's."""

    expr: str
    inputs: dict[str, tuple[torch.Tensor, Layout]]
    out: Layout = same
    states: dict[str, tuple[torch.Tensor, Layout]] = field(default_factory=dict)
    training: bool = False
    grad_expr: str | None = None  # for the gradient model, with the states as inputs
    prelude: str = ""  # custom op definitions

    def source(self, dy: np.ndarray | None = None) -> str:
        """The forward model (`output y`), or with `dy` the gradient model (`sum(y * dy)`)."""
        grad_inputs = dy is not None and self.grad_expr is not None
        lines = [f"  input {k}: {type_of(a)}" for k, a in self.arrays(self.inputs).items()]
        kind = "input" if grad_inputs else "state"
        lines += [f"  {kind} {k}: {type_of(a)}" for k, a in self.arrays(self.states).items()]
        if dy is None:
            lines += [f"  y = {self.expr}", "  output y"]
        else:
            lines += [f"  input dy: {type_of(dy)}", f"  y = {self.grad_expr if grad_inputs else self.expr}",
                      "  loss = sum(y * dy)", "  output loss, y"]
        return self.prelude + "model t {\n" + "\n".join(lines) + "\n}\n"

    @staticmethod
    def arrays(named: dict[str, tuple[torch.Tensor, Layout]]) -> dict[str, np.ndarray]:
        return {k: layout(t).detach().numpy().copy() for k, (t, layout) in named.items()}


# -- translations, one per op: a Translation, or the reason the language cannot say it ----------------
def bound(s: SampleInput, names: tuple[str, ...]) -> dict[str, Any]:
    """The sample's arguments after the input, by PyTorch's parameter names."""
    return {**dict(zip(names, s.args)), **s.kwargs}


def pair(v: int | tuple[int, ...] | list[int]) -> str:
    a, b = (v, v) if isinstance(v, int) else (v[0], v[-1])
    return f"({a}, {b})"


def flag(v: bool) -> str:
    return "true" if v else "false"


def _bias(expr: str, inputs: dict[str, tuple[torch.Tensor, Layout]], bias: torch.Tensor | None) -> str:
    if bias is None:
        return expr
    inputs["b"] = (bias, same)
    return f"{expr} + b"


def conv2d(s: SampleInput) -> Translation | Reason:
    a = bound(s, ("weight", "bias", "stride", "padding", "dilation", "groups"))
    padding = a.get("padding", 0)
    inputs = {"x": (s.input, image), "w": (a["weight"], hwio)}
    expr = (f"conv2d(x, w, stride={pair(a.get('stride', 1))}, padding={padding if isinstance(padding, str) else pair(padding)}, "
            f"dilation={pair(a.get('dilation', 1))}, groups={a.get('groups', 1)})")  # torch's `same` needs stride 1: TF's then
    return Translation(_bias(expr, inputs, a.get("bias")), inputs, out=image)


def conv_transpose2d(s: SampleInput) -> Translation | Reason:
    a = bound(s, ("weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"))
    inputs = {"x": (s.input, image), "w": (a["weight"], hwio)}
    expr = (f"conv2d_transpose(x, w, stride={pair(a.get('stride', 1))}, padding={pair(a.get('padding', 0))}, "
            f"output_padding={pair(a.get('output_padding', 0))}, dilation={pair(a.get('dilation', 1))}, groups={a.get('groups', 1)})")
    return Translation(_bias(expr, inputs, a.get("bias")), inputs, out=image)


def max_pool2d(s: SampleInput) -> Translation | Reason:
    a = bound(s, ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"))
    if a.get("return_indices"):
        return "return_indices=True (no argmax output)"
    stride = f", stride={pair(a['stride'])}" if a.get("stride") else ""  # None or (): the kernel size
    expr = (f"maxpool2d(x, size={pair(a['kernel_size'])}{stride}, padding={pair(a.get('padding', 0))}, "
            f"dilation={pair(a.get('dilation', 1))}, ceil_mode={flag(a.get('ceil_mode', False))})")
    return Translation(expr, {"x": (s.input, image)}, out=image)


def avg_pool2d(s: SampleInput) -> Translation | Reason:
    a = bound(s, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"))
    kernel = a["kernel_size"]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else (kernel[0], kernel[-1])
    stride = a.get("stride") or (kh, kw)
    sh, sw = (stride, stride) if isinstance(stride, int) else (stride[0], stride[-1])
    padding = a.get("padding", 0)
    ph, pw = (padding, padding) if isinstance(padding, int) else (padding[0], padding[-1])
    inputs = {"x": (s.input, image)}
    divisor = a.get("divisor_override")
    if divisor is None:
        expr = (f"avgpool2d(x, size=({kh}, {kw}), stride=({sh}, {sw}), padding=({ph}, {pw}), "
                f"ceil_mode={flag(a.get('ceil_mode', False))}, count_pad={flag(a.get('count_include_pad', True))})")
        return Translation(expr, inputs, out=image)
    # The window's sum over the zero-padded input / divisor: pad the bottom and right with zeros
    # until PyTorch's last window (ceil mode's included) fits, then every window counts KH * KW cells.
    height, width = s.input.shape[-2:]
    ho, wo = F.avg_pool2d(s.input.detach(), *s.args, **s.kwargs).shape[-2:]
    pb, pr = max((ho - 1) * sh + kh - height - ph, 0), max((wo - 1) * sw + kw - width - pw, 0)
    expr = (f"avgpool2d(x, size=({kh}, {kw}), stride=({sh}, {sw}), padding=({ph}, {pb}, {pw}, {pr}), count_pad=true)"
            f" * ({float(kh * kw)!r} / {float(divisor)!r})")
    return Translation(expr, inputs, out=image)


def _affine(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, shape: tuple[int, ...],
            inputs: dict[str, tuple[torch.Tensor, Layout]], required: bool = False) -> str:
    """`, g, b` (a missing weight is ones, a missing bias zeros: the same arithmetic), or nothing
    for neither when the op may go without."""
    if weight is None and bias is None and not required:
        return ""
    inputs["g"] = (torch.ones(shape, dtype=x.dtype) if weight is None else weight, same)
    inputs["b"] = (torch.zeros(shape, dtype=x.dtype) if bias is None else bias, same)
    return ", g, b"


def batch_norm(s: SampleInput) -> Translation | Reason:
    a = bound(s, ("running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"))
    x, eps, training, momentum = s.input, float(a.get("eps", 1e-5)), a.get("training", False), a.get("momentum", 0.1)
    inputs = {"x": (x, channels_last)}
    affine = _affine(x, a.get("weight"), a.get("bias"), (x.shape[1],), inputs)
    if a.get("running_mean") is None:  # batch statistics (PyTorch then needs training=True)
        return Translation(f"batchnorm(x{affine}, eps={eps!r})", inputs, out=channels_last, training=training)
    states = {"m": (a["running_mean"], same), "v": (a["running_var"], same)}
    if not training:  # inference mode has no gradient program: its arithmetic has
        grad_expr = f"(x - m) / sqrt(v + {eps!r})" + (" * g + b" if affine else "")
        return Translation(f"batchnorm(x{affine}, eps={eps!r}, mean=m, var=v)", inputs, channels_last, states,
                           grad_expr=grad_expr)
    if momentum is None or not 0 <= momentum <= 1:
        return f"momentum={momentum} (running statistics update with momentum outside [0, 1])"
    return Translation(f"batchnorm(x{affine}, eps={eps!r}, mean=m, var=v, momentum={float(momentum)!r})", inputs,
                       channels_last, states, training=True)


def layer_norm(s: SampleInput) -> Translation | Reason:
    a = bound(s, ("normalized_shape", "weight", "bias", "eps"))
    eps, shape = a.get("eps", 1e-5), tuple(a["normalized_shape"])
    if eps <= 0:
        return f"eps={eps} (must be positive)"
    inputs = {"x": (s.input, same)}
    affine = _affine(s.input, a.get("weight"), a.get("bias"), shape, inputs, required=True)
    return Translation(f"layernorm(x{affine}, eps={float(eps)!r}, axes={len(shape)})", inputs)


def softplus(s: SampleInput) -> Translation | Reason:
    a = bound(s, ("beta", "threshold"))
    beta, threshold = float(a.get("beta", 1.0)), float(a.get("threshold", 20.0))
    return Translation(f"softplus(x, beta={beta!r}, threshold={threshold!r})", {"x": (s.input, same)})


def elementwise(call: Callable[[dict[str, Any]], str], names: tuple[str, ...] = ()) -> Callable[[SampleInput], Translation]:
    return lambda s: Translation(call(bound(s, names)), {"x": (s.input, same)})


TRANSLATIONS: dict[str, Callable[[SampleInput], Translation | Reason]] = {
    "nn.functional.conv2d": conv2d,
    "nn.functional.conv_transpose2d": conv_transpose2d,
    "nn.functional.max_pool2d": max_pool2d,
    "nn.functional.avg_pool2d": avg_pool2d,
    "nn.functional.batch_norm": batch_norm,
    "nn.functional.layer_norm": layer_norm,
    "nn.functional.gelu": elementwise(lambda a: "gelu(x, approximate=tanh)" if a.get("approximate") == "tanh" else "gelu(x)"),
    "nn.functional.silu": elementwise(lambda a: "silu(x)"),
    "nn.functional.leaky_relu": elementwise(lambda a: f"leaky_relu(x, alpha={float(a.get('negative_slope', 0.01))!r})",
                                            ("negative_slope",)),
    "nn.functional.elu": elementwise(lambda a: f"elu(x, alpha={float(a.get('alpha', 1.0))!r})", ("alpha",)),
    "nn.functional.softplus": softplus,
    "nn.functional.hardtanh": elementwise(
        lambda a: f"hardtanh(x, lo={float(a.get('min_val', -1.0))!r}, hi={float(a.get('max_val', 1.0))!r})",
        ("min_val", "max_val")),
}


def translate(name: str, s: SampleInput) -> Translation | Reason:
    tensors = [t for t in (s.input, *s.args, *s.kwargs.values()) if isinstance(t, torch.Tensor)]
    if any(t.numel() == 0 for t in tensors):
        return "a size-0 dimension (mlc's are positive)"
    return TRANSLATIONS[name](s)


# -- running a sample --------------------------------------------------------------------------------
def _grad_close(got: np.ndarray, ref: np.ndarray, what: str) -> None:
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    scale = max(float(np.max(np.abs(ref))), 1e-30)
    np.testing.assert_allclose(got, ref, rtol=GRAD_TOL, atol=GRAD_TOL * scale, err_msg=what)


def check(op: OpInfo, s: SampleInput, t: Translation, seed: int, unchecked: frozenset[str] = frozenset()) -> None:
    """y = op(sample) equal to PyTorch's; d sum(y * dy) / d every input that requires grad (but the
    `unchecked`) equal to autograd's; the running statistics equal to PyTorch's after the forward
    and after the gradient."""
    arrays, states = t.arrays(t.inputs), t.arrays(t.states)  # before PyTorch updates the statistics
    expected = t.out(op.op(s.input, *s.args, **s.kwargs))
    updated = t.arrays(t.states)
    forward = {k: v.copy() for k, v in states.items()}
    assert_close(mlc.compile(t.source()).run(forward, arrays, training=t.training)["y"], expected)
    for k, v in forward.items():
        assert_close(v, updated[k])
    dy = np.random.default_rng(seed).uniform(-1, 1, size=tuple(expected.shape))
    leaves = {k: (v, layout) for k, (v, layout) in t.inputs.items() if v.requires_grad and k not in unchecked}
    loss = (expected * torch.from_numpy(dy)).sum()
    refs = torch.autograd.grad(loss, [v for v, _ in leaves.values()]) if leaves else ()
    program = mlc.compile(t.source(dy))
    params, inputs = ({}, {**arrays, **states, "dy": dy}) if t.grad_expr else ({**states}, {**arrays, "dy": dy})
    outs, grads = program.grad(params, inputs, wrt="all")
    assert_close(outs["y"], expected)
    for (name, (_, layout)), ref in zip(leaves.items(), refs):
        _grad_close(grads[name], layout(ref).numpy(), f"d loss / d {name}")
    for k, v in params.items():
        assert_close(v, updated[k])


# -- the sweep ---------------------------------------------------------------------------------------
OPS = {op.name: op for op in op_db if op.name in TRANSLATIONS and op.supports_dtype(torch.float64, "cpu")}
"""By name; this leaves out silu's `complex` and batch_norm's `without_cudnn` variants (no f64 on CPU)."""

EXPECTED = {  # name: (samples, expressible), as op_db has them in torch 2.13
    "nn.functional.conv2d": (30, 30),
    "nn.functional.conv_transpose2d": (12, 12),
    "nn.functional.max_pool2d": (1440, 720),
    "nn.functional.avg_pool2d": (7, 7),
    "nn.functional.batch_norm": (12, 9),
    "nn.functional.layer_norm": (6, 4),
    "nn.functional.gelu": (8, 8),
    "nn.functional.silu": (3, 2),
    "nn.functional.leaky_relu": (9, 9),
    "nn.functional.elu": (3, 2),
    "nn.functional.softplus": (3, 2),
    "nn.functional.hardtanh": (5, 4),
}

ILL_CONDITIONED: dict[tuple[str, int], frozenset[str]] = {
    # Over one value x - mean is exactly 0, and so are d/dx and d/dg (mlc's are); PyTorch's are
    # its rounding of x - mean: 1.1e-13 and 7.2e-16.
    ("nn.functional.layer_norm", 2): frozenset({"x", "g"}),
    # Over two values d/dx cancels to 3.5e-8 and 1.1e-8 of its terms; against mpmath's exact value
    # (50 digits) PyTorch is 4.6e-9 and 3.7e-9 off, mlc 2.6e-8 and 1.2e-9, the last digits moving
    # with the machine's vector code, so either passes or fails 1e-9 depending on the CPU.
    ("nn.functional.layer_norm", 3): frozenset({"x"}),
    ("nn.functional.layer_norm", 5): frozenset({"x"}),
}
"""(op, sample index): the gradients not compared, as below float64's rounding (the rest of the
sample is). Not mlc bugs, and no relative tolerance fits them."""


def samples(op: OpInfo) -> list[SampleInput]:
    """The op's samples with PyTorch's generator seeded, each with leaves of its own."""
    torch.manual_seed(0)
    return [s.transform(lambda t: t.detach().clone().requires_grad_(t.requires_grad)) for s in
            op.sample_inputs("cpu", torch.float64, requires_grad=True)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_opinfo_samples(name: str) -> None:
    op = OPS[name]
    translations = [(k, s, translate(name, s)) for k, s in enumerate(samples(op))]
    reasons = Counter(t for _, _, t in translations if isinstance(t, str))
    expressible = [(k, s, t) for k, s, t in translations if not isinstance(t, str)]
    chosen = expressible if LIMIT is None or len(expressible) <= LIMIT else random.Random(0).sample(expressible, LIMIT)
    failures = []
    for k, s, t in chosen:
        try:
            check(op, s, t, seed=k, unchecked=ILL_CONDITIONED.get((name, k), frozenset()))
        except Exception as error:  # every failing sample is reported, not just the first
            failures.append(f"sample {k} ({t.expr}, x {tuple(s.input.shape)}): {type(error).__name__}: {str(error).strip()[:600]}")
    partial = sum((name, k) in ILL_CONDITIONED for k, _, _ in chosen)
    counts = (f"{name}: {len(translations)} samples, {len(expressible)} expressible, {len(chosen) - len(failures)}/{len(chosen)} "
              f"run passed{f' ({partial} with an ill-conditioned gradient unchecked)' if partial else ''}; "
              f"not expressible: {dict(reasons) or 'none'}")
    print(counts)
    assert not failures, counts + "\n" + "\n".join(failures)
    assert (len(translations), len(expressible)) == EXPECTED[name], counts
