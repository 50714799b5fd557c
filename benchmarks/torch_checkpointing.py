"""PyTorch's side of benchmarks/checkpointing.py: the same chain under eager, torch.utils.checkpoint and min-cut.

The chain is `h = x; h = h @ w_k; h = tanh(h) * sigmoid(h) + h` for k = 1..blocks, loss `mean(h * h)`,
float32, gradients of every weight (x needs none). Configurations, each at every budget fraction b
of eager's peak:

- eager: plain autograd, keeps everything (one measurement, repeated per budget).
- torch.utils.checkpoint: `checkpoint(..., use_reentrant=False)` over every uniform segmentation
  (1..blocks segments); as `checkpoint_sequential` does, the last segment runs plainly, since
  recomputing it would only repeat it at the start of the backward. Reported: the segmentation
  with the least recomputation whose peak fits, else the one with the smallest peak.
- min-cut: AOTAutograd's min-cut rematerialisation partitioner with
  `torch._functorch.config.activation_memory_budget = b`, compiled afresh per budget as
  `torch.compile(backend="aot_eager")` would (`aot_function`, `boxed_nop`, no code generation).
  It is `aot_function` rather than `torch.compile` because Dynamo runs the plain Python instead of
  the compiled graphs while a TorchDispatchMode is active, so the probes would measure eager. The
  budget is the partitioner's own knob (a fraction of the activations its default plan saves,
  weighed by its flop estimate), not a bound on the peak; `fits` says whether the peak met b.

Figures of one forward+backward call, measured under a dispatch mode and hooks (the time without):

- saved_bytes: the unique storages packed by `torch.autograd.graph.saved_tensors_hooks` during the
  forward, parameters and x excluded. For checkpoint these are the segments' inputs and what the
  plain code saves (the recomputation's saves are not seen: checkpoint's own hooks take them); for
  min-cut, what the compiled forward hands to `save_for_backward`, i.e. the activations the
  forward graph returns to the backward graph (a transposed view counts with its base, views of
  the weights and of x not at all).
- peak_bytes: the peak of live bytes of the storages that aten ops create during forward and
  backward. A TorchDispatchMode logs each new storage of an op's outputs (views and in-place
  results reuse a known storage) and `weakref.finalize` on the storage logs its release; the
  storages that end up as the weights' gradients are dropped from the log afterwards, and
  parameters and x are never in it. This is the counterpart of mlc's arena (every value the step
  computes except the caller's parameters, inputs and weight gradients); allocator caching and
  per-op scratch space are not seen.
- recompute_macs: multiply-adds counted as mlc counts them, M*N*K for mm/addmm/bmm and one per
  output element for every other op that computes (views excluded), over all ops of the step,
  less the same count for eager: the difference is the recomputation.
- step_ms: median forward+backward time (`timing.median_seconds`), 2 threads.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence

import torch
import torch._functorch.config
from functorch.compile import aot_function, min_cut_rematerialization_partition
from torch._dynamo.backends.debugging import boxed_nop
from torch.utils._pytree import tree_leaves
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import checkpoint

from timing import median_seconds

# operand positions of the [.., M, K] and [.., K, N] factors: M*N*K (times batch) multiply-adds
MATMULS = {torch.ops.aten.mm.default: (0, 1), torch.ops.aten.addmm.default: (1, 2), torch.ops.aten.bmm.default: (0, 1)}


def block(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """One block of the chain, as `chain_source` in checkpointing.py writes it."""
    h = h @ w
    return torch.tanh(h) * torch.sigmoid(h) + h


def run_blocks(h: torch.Tensor, ws: Sequence[torch.Tensor]) -> torch.Tensor:
    for w in ws:
        h = block(h, w)
    return h


def loss_of(h: torch.Tensor) -> torch.Tensor:
    return torch.mean(h * h)


def eager_loss(x: torch.Tensor, *ws: torch.Tensor) -> torch.Tensor:
    return loss_of(run_blocks(x, ws))


def segmented_loss(segments: int) -> Callable[..., torch.Tensor]:
    """The chain with every segment but the last under non-reentrant checkpoint."""

    def loss(x: torch.Tensor, *ws: torch.Tensor) -> torch.Tensor:
        bounds = [round(i * len(ws) / segments) for i in range(segments + 1)]
        h = x
        for lo, hi in zip(bounds[:-2], bounds[1:-1]):
            h = checkpoint(run_blocks, h, ws[lo:hi], use_reentrant=False)
        return loss_of(run_blocks(h, ws[bounds[-2]:]))

    return loss


class StepProbe(TorchDispatchMode):
    """Logs storage allocations and releases, and multiply-adds, of every aten op it sees."""

    def __init__(self, outside: Sequence[torch.Tensor]) -> None:
        super().__init__()
        self.macs = 0
        self.log: list[tuple[int, int]] = []  # (storage id, +bytes at creation / -bytes at release)
        self.live: dict[int, int] = {}  # data pointer -> storage id, for storages alive now
        self.outside = {t.untyped_storage().data_ptr() for t in outside}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if func in MATMULS:
            i, j = MATMULS[func]
            a, b = args[i], args[j]
            self.macs += math.prod(a.shape) * b.shape[-1]
        elif not func.is_view:
            self.macs += sum(t.numel() for t in outputs)
        for t in outputs:
            self.note(t.untyped_storage())
        return out

    def note(self, storage: torch.UntypedStorage) -> None:
        """Log a storage the first time an op returns it: views and in-place results return known ones."""
        ptr, size = storage.data_ptr(), storage.nbytes()
        if size == 0 or ptr in self.outside or ptr in self.live:
            return
        sid = len(self.log)
        self.live[ptr] = sid
        self.log.append((sid, size))
        weakref.finalize(storage, self.release, ptr, sid, size)

    def release(self, ptr: int, sid: int, size: int) -> None:
        del self.live[ptr]
        self.log.append((sid, -size))

    def peak(self, excluded: Sequence[torch.Tensor]) -> int:
        """Peak of live bytes over the log, without the storages of `excluded` (alive now)."""
        drop = {self.live[t.untyped_storage().data_ptr()] for t in excluded}
        live = peak = 0
        for sid, delta in self.log:
            if sid not in drop:
                live += delta
                peak = max(peak, live)
        return peak


def probe(loss_fn: Callable[..., torch.Tensor], x: torch.Tensor, ws: list[torch.Tensor]) -> dict:
    """Saved bytes, peak bytes and op count of one forward+backward of `loss_fn`."""
    for w in ws:
        w.grad = None
    saved: dict[int, int] = {}
    outside = {t.untyped_storage().data_ptr() for t in [x, *ws]}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in outside:
            saved[s.data_ptr()] = s.nbytes()
        return t

    with StepProbe([x, *ws]) as mode:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = loss_fn(x, *ws)
        loss.backward()
        del loss
    grads = [w.grad for w in ws]
    return {"saved_bytes": sum(saved.values()), "peak_bytes": mode.peak(grads), "macs": mode.macs}


def timed(loss_fn: Callable[..., torch.Tensor], x: torch.Tensor, ws: list[torch.Tensor], repeats: int) -> float:
    """Median milliseconds of one forward+backward, no probes active."""

    def step() -> None:
        for w in ws:
            w.grad = None
        loss_fn(x, *ws).backward()

    return median_seconds(step, repeats=repeats) * 1e3


def measure_torch(blocks: int, d: int, batch: int, budgets: tuple[float, ...], repeats: int) -> list[dict]:
    """Rows for checkpointing.py's table: eager, the best fitting segmentation and min-cut per budget."""
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, d, generator=gen)
    ws = [(torch.randn(d, d, generator=gen) / math.sqrt(d)).requires_grad_() for _ in range(blocks)]

    eager = probe(eager_loss, x, ws)
    reference = [w.grad.clone() for w in ws]
    eager_ms = timed(eager_loss, x, ws, repeats)

    def row(config: str, budget: float, figures: dict, ms: float) -> dict:
        return {"config": config, "budget": budget, "peak_bytes": figures["peak_bytes"],
                "saved_bytes": figures["saved_bytes"], "recompute_macs": figures["macs"] - eager["macs"],
                "step_ms": ms, "fits": figures["peak_bytes"] <= budget * eager["peak_bytes"]}

    def check_grads(config: str) -> None:
        assert all(torch.allclose(w.grad, r, rtol=1e-4, atol=1e-6) for w, r in zip(ws, reference)), config

    segmentations = []
    for segments in range(1, blocks + 1):
        figures = probe(segmented_loss(segments), x, ws)
        check_grads(f"{segments} segments")
        assert (figures["macs"] > eager["macs"]) == (segments > 1), "recomputation miscounted"
        segmentations.append((segments, figures))

    rows = []
    for budget in budgets:
        rows.append(row("eager", budget, eager, eager_ms))

        fitting = [s for s in segmentations if s[1]["peak_bytes"] <= budget * eager["peak_bytes"]]
        segments, figures = (min(fitting, key=lambda s: s[1]["macs"]) if fitting
                             else min(segmentations, key=lambda s: s[1]["peak_bytes"]))
        ms = timed(segmented_loss(segments), x, ws, repeats)
        rows.append(row(f"torch.utils.checkpoint, segments={segments}", budget, figures, ms))

        with torch._functorch.config.patch(activation_memory_budget=budget):
            compiled = aot_function(eager_loss, boxed_nop, partition_fn=min_cut_rematerialization_partition)
            compiled(x, *ws).backward()  # compile both graphs outside the probes
            figures = probe(compiled, x, ws)
            check_grads(f"min-cut {budget}")
            ms = timed(compiled, x, ws, repeats)
        rows.append(row(f"min-cut, activation_memory_budget={budget:g}", budget, figures, ms))
    return rows
