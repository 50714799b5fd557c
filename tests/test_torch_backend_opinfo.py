"""PyTorch's OpInfo samples (`op_db`) of the ops the backend imports, each wrapped in a function
compiled with `torch.compile(backend="mlc", options={"fallback": "error"})`: forward and
backward (random cotangents) against eager in f64, within 1e-9 relative to the largest value.

A sample mlc refuses counts as excluded only when the refusal is one of `EXCLUSIONS` (what the
language cannot say, with the reason); any other refusal fails. Each op prints
`samples / run / excluded / passed` (`pytest -s`). Arguments an op updates in place (batch norm's
running statistics) must end as eager's. By default `LIMIT` (one) sample per op, chosen by a
fixed seed (`MLC_OPINFO_LIMIT=N` for N); `MLC_OPINFO_ALL=1` runs every sample.
"""

from __future__ import annotations

import os
import random
import re
import warnings

import pytest
import torch
import torch.utils._pytree as pytree
from torch.testing._internal.common_methods_invocations import op_db

from mlc.runtime.torch_backend import MlcUnsupportedError

LIMIT = None if os.environ.get("MLC_OPINFO_ALL") else int(os.environ.get("MLC_OPINFO_LIMIT", "1"))
TOL = 1e-9

OPS = [
    "nn.functional.conv2d", "nn.functional.conv_transpose2d", "nn.functional.linear", "nn.functional.batch_norm",
    "nn.functional.layer_norm", "nn.functional.relu", "nn.functional.leaky_relu", "nn.functional.elu",
    "nn.functional.gelu", "nn.functional.silu", "sigmoid", "tanh", "nn.functional.softplus", "nn.functional.hardtanh",
    "nn.functional.max_pool2d", "nn.functional.avg_pool2d", "nn.functional.adaptive_avg_pool2d", "softmax",
    "log_softmax", "sum", "mean", "amax", "amin", "mm", "bmm", "addmm", "exp", "log", "sqrt", "abs", "pow", "clamp",
    "add", "sub", "mul", "div", "nn.functional.mse_loss", "nn.functional.binary_cross_entropy",
    "nn.functional.binary_cross_entropy_with_logits", "nn.functional.cross_entropy", "nn.functional.nll_loss",
    "cat", "stack", "permute", "transpose", "reshape", "flatten", "squeeze", "unsqueeze", "split", "chunk", "expand",
    "expand_as", "broadcast_to",
]

EXCLUSIONS = {
    r"a \d-d input": "mlc's conv and pool take a batch of images (NCHW); unbatched and 1-d/3-d inputs are not imported",
    r"reduction='none'": "mlc's losses are scalars",
    r"class weights|weight= or pos_weight=|weight=": "weighted losses",
    r"label smoothing": "label smoothing",
    r"logits \(mlc takes \[N, C\]\)|input \(mlc takes \[N, C\]\)": "K-dimensional cross entropy",
    r"return_indices": "max pool indices",
    r"divisor_override": "avg pool divisor_override",
    r"output size .*other than 1": "adaptive pooling to other sizes",
    r"rounding_mode": "integer division",
    r"mlc's matmul is 2-d": "batched/vector matmul",
    r"beta or alpha|alpha other than 1": "scaled sums",
    r"dtype=": "a dtype conversion inside the op",
    r"keywords \[": "arguments the translation does not take",
    r"non-finite scalar": "an infinite or NaN scalar operand",
    r"momentum=None": "a cumulative moving average",
    r"momentum=.*between 0 and 1": "a momentum outside [0, 1]",
    r"eps=.*positive": "eps <= 0",
    r"a layer norm without weight and bias": "LayerNorm(elementwise_affine=False)",
    r"eval mode without running statistics": "F.batch_norm(training=False) with no statistics",
    r"without weight and bias|weight without a bias": "partial affine parameters",
    r"the graph returns no tensor|no tensor mlc computes": "no tensor to compute",
    r"dtype torch\.|mixed float dtypes": "not f32/f64",
    r"broadcasting input": "broadcast loss operands",
    r"same shape, at least 1-d": "broadcast or 0-d loss operands",
    r"implicit dim": "softmax without dim",
    r"neither min nor max": "a clamp without bounds",
    r"shapes cannot be computed": "shapes Dynamo cannot propagate on meta tensors",
    r"has no translation for it": "an op the sample's call reaches that mlc does not import",
    r"an integer target computed inside": "a target made in the graph",
    r"ignore_index=": "ignore_index a class could equal",
    r"an integer tensor": "integer operands (mlc computes in floating point)",
    r"an empty tensor": "tensors with a zero dimension (mlc's dimensions are positive)",
}


def _samples(name: str) -> list:
    variants = [o for o in op_db if o.name == name]
    op = next((o for o in variants if o.variant_test_name in ("", "no_rounding_mode")), variants[0])
    samples = list(op.sample_inputs("cpu", torch.float64, requires_grad=op.supports_autograd))
    if LIMIT is not None and len(samples) > LIMIT:
        samples = random.Random(name).sample(samples, LIMIT)
    return [(op, s) for s in samples]


def _leaves(sample) -> tuple[list[torch.Tensor], object]:  # noqa: ANN001 - a SampleInput
    flat, spec = pytree.tree_flatten((sample.input, sample.args, sample.kwargs))
    return flat, spec


def _relative(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.detach().double(), want.detach().double()
    if want.numel() == 0:
        return 0.0
    return float((got - want).abs().max() / max(float(want.abs().max()), 1.0))


@pytest.mark.parametrize("name", OPS)
def test_opinfo_samples_through_the_backend(name: str) -> None:
    counts = {"run": 0, "excluded": 0, "passed": 0}
    pairs = _samples(name)
    for op, sample in pairs:
        flat, spec = _leaves(sample)
        tensors = [k for k, v in enumerate(flat) if isinstance(v, torch.Tensor)]

        def call(*ts: torch.Tensor, op=op, flat=flat, spec=spec, tensors=tensors):  # noqa: ANN001, ANN202
            items = list(flat)
            for k, t in zip(tensors, ts):
                items[k] = t
            x, args, kwargs = pytree.tree_unflatten(items, spec)
            return op.op(x, *args, **kwargs)

        leaves = [flat[k].detach().clone().requires_grad_(flat[k].requires_grad) for k in tensors]
        mine = [t.detach().clone().requires_grad_(t.requires_grad) for t in leaves]  # what a call mutates is its own
        torch._dynamo.reset()
        compiled = torch.compile(call, backend="mlc", options={"fallback": "error"}, dynamic=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = call(*leaves)
            try:
                got = compiled(*mine)
            except MlcUnsupportedError as refusal:
                reason = next((why for pattern, why in EXCLUSIONS.items() if re.search(pattern, str(refusal))), None)
                assert reason is not None, f"{name}: an undocumented refusal of {sample}: {refusal}"
                counts["excluded"] += 1
                continue
        counts["run"] += 1
        outs_want, outs_got = pytree.tree_leaves(want), pytree.tree_leaves(got)
        assert len(outs_want) == len(outs_got)
        for g, w in zip(outs_got, outs_want):
            assert _relative(g, w) <= TOL, f"{name}: forward of {sample}"
        for g, w in zip(mine, leaves):  # running statistics updated as eager updates them
            assert _relative(g, w) <= TOL, f"{name}: arguments after {sample}"
        diff = [k for k, t in enumerate(leaves) if t.requires_grad]
        floats = [(g, w) for g, w in zip(outs_got, outs_want) if isinstance(w, torch.Tensor) and w.requires_grad]
        if diff and floats:
            gen = torch.Generator().manual_seed(0)
            cots = [torch.randn(w.shape, dtype=w.dtype, generator=gen) for _, w in floats]
            grads_want = torch.autograd.grad([w for _, w in floats], [leaves[k] for k in diff], cots, allow_unused=True)
            grads_got = torch.autograd.grad([g for g, _ in floats], [mine[k] for k in diff], cots, allow_unused=True)
            for gg, gw in zip(grads_got, grads_want):
                if gw is None:
                    assert gg is None or float(gg.abs().max()) == 0.0
                    continue
                assert gg is not None and _relative(gg, gw) <= TOL, f"{name}: gradient of {sample}"
        counts["passed"] += 1
    print(f"{name}: {len(pairs)} samples / {counts['run']} run / {counts['excluded']} excluded / {counts['passed']} passed")
    assert counts["passed"] == counts["run"]
