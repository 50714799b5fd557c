"""`torch.compile(model, backend="mlc")`: Dynamo's FX graphs run as mlc programs.

Dynamo hands the backend a torch-level FX graph; `mlc.frontend.pytorch` imports it as an mlc
model at the call's shapes, `mlc.compile` builds it (the disk cache makes a second process's
first call cheap), and each call runs the compiled forward on the tensors' memory, without
copies. When autograd needs it, the call is one `torch.autograd.Function` whose backward is
mlc's own vector-Jacobian program (`mlc-autodiff{vjp=true}`: scatter-to-gather, the automatic
scheduler, optional checkpointing), so `loss.backward()` fills `.grad` and `torch.optim` works
unchanged.

Options (`torch.compile(..., options={...})`):
- `fallback`: `"eager"` (default) runs a graph mlc cannot import in PyTorch, with one warning per
  op naming it and the user's source line; `"error"` raises `MlcUnsupportedError` instead.
- `threads`: mlc's thread count (OpenMP) for its calls.
- `budget`, `checkpoint`: the backward's memory budget and keep-or-recompute policy, as
  `Program.grad` takes them.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils._pytree as pytree

from mlc.backends.c.runtime import set_num_threads
from mlc.frontend.pytorch.graph import Argument
from mlc.frontend.pytorch.importer import Imported, Unsupported, describe, import_graph, source_line
from mlc.runtime.program import compile as compile_program

FALLBACKS = ("eager", "error")
OPTIONS = ("fallback", "threads", "budget", "checkpoint")


class MlcUnsupportedError(RuntimeError):
    """A graph mlc cannot run, with `fallback="error"`: names the op, its arguments' shapes and
    the source line."""


class MlcFallbackWarning(UserWarning):
    """Part of a model runs in PyTorch because mlc cannot import it."""


@dataclass(frozen=True)
class BackendOptions:
    fallback: str = "eager"
    threads: int | None = None
    budget: str | int | None = None
    checkpoint: str | None = None

    @staticmethod
    def of(options: dict[str, Any] | None) -> BackendOptions:
        options = dict(options or {})
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"mlc backend: unknown option '{unknown[0]}' (options: {', '.join(OPTIONS)})")
        result = BackendOptions(**options)
        if result.fallback not in FALLBACKS:
            raise ValueError(f"mlc backend: fallback must be one of {', '.join(FALLBACKS)}, got '{result.fallback}'")
        if result.threads is not None and (not isinstance(result.threads, int) or result.threads < 1):
            raise ValueError(f"mlc backend: threads must be a positive integer, got {result.threads!r}")
        return result


def mlc_backend(gm: torch.fx.GraphModule, example_inputs: Sequence[Any], options: dict[str, Any] | None = None,
                **_: Any) -> Callable[..., Any]:
    """The Dynamo backend (registered as `mlc` by the `torch_dynamo_backends` entry point)."""
    return CompiledGraph(gm, BackendOptions.of(options))


_warned: set[str] = set()


class CompiledGraph:
    """One Dynamo graph: an mlc program per call signature (shapes, dtypes, requires_grad),
    imported and compiled on the first call with that signature."""

    def __init__(self, gm: torch.fx.GraphModule, options: BackendOptions) -> None:
        self.gm = gm
        self.options = options
        self._entries: dict[tuple, Entry | None] = {}
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        key = tuple((tuple(a.shape), a.dtype, a.requires_grad) if isinstance(a, torch.Tensor) else ("value", a) for a in args)
        if key not in self._entries:
            with self._lock:
                if key not in self._entries:
                    self._entries[key] = self._prepare(args)
        entry = self._entries[key]
        return self.gm(*args) if entry is None else entry(args)

    def _prepare(self, args: Sequence[Any]) -> Entry | None:
        try:
            imported = import_graph(self.gm, args)
        except Unsupported as problem:
            where = source_line(problem.node)
            message = f"mlc cannot run {describe(problem.node, _shapes(self.gm, args))}: {problem.reason}" + \
                (f" ({where})" if where else "")
            if self.options.fallback == "error":
                raise MlcUnsupportedError(message) from None
            if message not in _warned:
                _warned.add(message)
                warnings.warn(message + "; this graph runs in PyTorch", MlcFallbackWarning, stacklevel=3)
            return None
        return Entry(imported, self.options)


def _shapes(gm: torch.fx.GraphModule, args: Sequence[Any]) -> dict:
    from mlc.frontend.pytorch.importer import _propagate

    try:
        return _propagate(gm, args)
    except Unsupported:
        return {}


class Entry:
    """A compiled graph at one call signature."""

    def __init__(self, imported: Imported, options: BackendOptions) -> None:
        self.imported = imported
        self.options = options
        self.program = compile_program(imported.text)
        self.params = [a for a in imported.arguments if a.kind == "param"]
        self.dtype = torch.float32 if "f32[" in imported.text else torch.float64

    def __call__(self, args: Sequence[Any]) -> Any:
        if self.options.threads is not None:
            set_num_threads(self.options.threads)
        for position, method, operand in self.imported.effects:
            getattr(args[position], method)(operand)
        made = {a.name: self._make(a, args) for a in self.imported.arguments if a.make}
        if torch.is_grad_enabled() and self.params:
            outs = _Call.apply(self, made, *args)
        else:
            outs = self.forward(args, made)
        flat = list(self.imported.constants)
        tensors = iter(outs)
        for k, name in enumerate(self.imported.outputs):
            if name is not None:
                flat[k] = next(tensors)
        return pytree.tree_unflatten(flat, self.imported.output_spec)

    def _make(self, argument: Argument, args: Sequence[Any]) -> np.ndarray:
        """An argument the call makes: a one-hot of a class target, or a draw from PyTorch's
        generator as eager draws it (dropout: `bernoulli_(1 - p)` then `div_(1 - p)`)."""
        kind = argument.make[0]
        if kind == "one_hot":
            classes = argument.make[1]
            target = args[argument.source]
            if target.numel() and (int(target.min()) < 0 or int(target.max()) >= classes):
                raise ValueError(f"mlc backend: class targets must lie in [0, {classes}) (ignore_index is not supported)")
            return F.one_hot(target.long(), classes).to(self.dtype).numpy()
        if kind == "dropout":
            p = argument.make[1]
            return torch.empty(argument.shape, dtype=self.dtype).bernoulli_(1 - p).div_(1 - p).numpy()
        if kind == "randn":
            return torch.randn(argument.shape, dtype=self.dtype).numpy()
        assert kind == "rand", kind
        return torch.rand(argument.shape, dtype=self.dtype).numpy()

    def _arrays(self, args: Sequence[Any], made: dict[str, np.ndarray], copy_states: bool = False
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        params: dict[str, np.ndarray] = {}
        inputs: dict[str, np.ndarray] = {}
        for a in self.imported.arguments:
            if a.make:
                inputs[a.name] = made[a.name]
                continue
            array = args[a.source].detach().numpy()
            if a.kind == "input":
                inputs[a.name] = array
            else:
                params[a.name] = array.copy() if copy_states and a.kind == "state" else array
        return params, inputs

    def forward(self, args: Sequence[Any], made: dict[str, np.ndarray]) -> list[torch.Tensor]:
        params, inputs = self._arrays(args, made)
        outs = self.program.run(params, inputs, training=self.imported.training)
        return [torch.from_numpy(outs[n]) for n in self.imported.outputs if n is not None]

    def backward(self, args: Sequence[Any], made: dict[str, np.ndarray], cotangents: Sequence[torch.Tensor | None]
                 ) -> dict[int, torch.Tensor]:
        """d/d(each param placeholder) of Σ cotangent · output, by placeholder position. The
        states get scratch copies: the forward already updated them."""
        params, inputs = self._arrays(args, made, copy_states=True)
        names = [n for n in self.imported.outputs if n is not None]
        shapes = {s.name: s.shape for s in self.program.signature.outputs}
        zeros = np.float32 if self.dtype == torch.float32 else np.float64
        cot = {n: g.detach().contiguous().numpy() if g is not None else np.zeros(shapes[n], dtype=zeros)
               for n, g in zip(names, cotangents)}
        _, grads = self.program.vjp(params, inputs, cot, wrt="params", budget=self.options.budget,
                                    checkpoint=self.options.checkpoint)
        return {a.source: torch.from_numpy(grads[a.name]) for a in self.params}


class _Call(torch.autograd.Function):
    """One mlc call as an autograd node: forward runs the program, backward its VJP program."""

    @staticmethod
    def forward(ctx: Any, entry: Entry, made: dict[str, np.ndarray], *args: Any) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        ctx.entry, ctx.made = entry, made
        ctx.positions = [k for k, a in enumerate(args) if isinstance(a, torch.Tensor)]
        ctx.others = [None if isinstance(a, torch.Tensor) else a for a in args]
        ctx.save_for_backward(*[args[k] for k in ctx.positions])
        return tuple(entry.forward(args, made))

    @staticmethod
    def backward(ctx: Any, *cotangents: torch.Tensor | None) -> tuple[Any, ...]:  # type: ignore[override]
        args = list(ctx.others)
        for k, t in zip(ctx.positions, ctx.saved_tensors):
            args[k] = t
        grads = ctx.entry.backward(args, ctx.made, cotangents)
        return (None, None, *[grads.get(k) for k in range(len(args))])
