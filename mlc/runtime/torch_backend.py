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
  `Program.grad` takes them. Without them the VJP is split (`mlc-split-vjp`): the forward call
  keeps what the backward reads, as eager autograd does, and the backward does not recompute it.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
import torch.utils._pytree as pytree

from mlc.backends.c.runtime import aligned_arena, set_num_threads
from mlc.frontend.pytorch.graph import Argument
from mlc.frontend.pytorch.importer import Imported, Unsupported, describe, import_graph, propagate, source_line
from mlc.runtime.program import Program, split_vjp
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
        self._entries: dict[tuple, Callable[[Sequence[Any]], Any] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        key = tuple((a.shape, a.dtype, a.requires_grad) if isinstance(a, torch.Tensor) else ("value", a) for a in args)
        if key not in self._entries:
            with self._lock:
                if key not in self._entries:
                    self._entries[key] = self._prepare(args)
        entry = self._entries[key]
        return self.gm(*args) if entry is None else entry(args)

    def _prepare(self, args: Sequence[Any]) -> Callable[[Sequence[Any]], Any] | None:
        """The entry for this call signature: an mlc program, or the graph split around the
        node mlc cannot import (that node runs in PyTorch, the parts before and after are
        compiled graphs of their own, split again as they need), or None: all in PyTorch."""
        try:
            imported = import_graph(self.gm, args)
        except Unsupported as problem:
            where = source_line(problem.node)
            message = f"mlc cannot run {describe(problem.node, _shapes(self.gm, args))}: {problem.reason}" + \
                (f" ({where})" if where else "")
            if self.options.fallback == "error":
                raise MlcUnsupportedError(message) from None
            split = self._split(problem.node)
            if message not in _warned:
                _warned.add(message)
                part = "this op" if split is not None else "this graph"
                warnings.warn(f"{message}; {part} runs in PyTorch", MlcFallbackWarning, stacklevel=3)
            return split
        return Entry(imported, self.options)

    def _split(self, node: torch.fx.Node) -> Callable[[Sequence[Any]], Any] | None:
        """The graph as three parts: the nodes before `node`, `node` itself (left to PyTorch),
        and those after it, or None when there is nothing to split off."""
        from torch.fx.passes.split_module import split_module

        nodes = [n for n in self.gm.graph.nodes if n.op not in ("placeholder", "output")]
        if node not in nodes or len(nodes) < 2:
            return None
        cut = nodes.index(node)
        position = {n: k for k, n in enumerate(nodes)}
        split = split_module(self.gm, self.gm, lambda n: 0 if position[n] < cut else 1 if position[n] == cut else 2)
        for name, part in list(split.named_children()):
            if name != "submod_1" and isinstance(part, torch.fx.GraphModule):
                setattr(split, name, _Compiled(CompiledGraph(part, self.options)))
        return lambda args: split(*args)


class _Compiled(torch.nn.Module):
    """A compiled part of a split graph, as the submodule the split graph calls."""

    def __init__(self, compiled: CompiledGraph) -> None:
        super().__init__()
        self.compiled = compiled

    def forward(self, *args: Any) -> Any:
        return self.compiled(*args)


def _shapes(gm: torch.fx.GraphModule, args: Sequence[Any]) -> dict:
    try:
        return propagate(gm, args)
    except Unsupported:
        return {}


class Entry:
    """A compiled graph at one call signature."""

    def __init__(self, imported: Imported, options: BackendOptions) -> None:
        self.imported = imported
        self.options = options
        self.params = [a for a in imported.arguments if a.kind == "param"]
        self.dtype = torch.float32 if "f32[" in imported.text else torch.float64
        self._forward: DirectCall | None = None
        self._backward: DirectCall | None = None
        self._forward_half: DirectCall | None = None
        self._made = [a for a in imported.arguments if a.make]
        self._plain_tuple = all(n is not None for n in imported.outputs) and \
            pytree.tree_unflatten(list(range(len(imported.outputs))), imported.output_spec) == tuple(range(len(imported.outputs)))
        """The graph returns a flat tuple of tensors (the usual case): no structure to rebuild."""

    def __call__(self, args: Sequence[Any]) -> Any:
        if self.options.threads is not None:
            set_num_threads(self.options.threads)
        for position, method, operand in self.imported.effects:
            getattr(args[position], method)(operand)
        made = {a.name: self._make(a, args) for a in self._made}
        if torch.is_grad_enabled() and self.params:
            outs = _Call.apply(self, made, *args)
        else:
            outs = self.forward(args, made)
        if self._plain_tuple:
            return tuple(outs)
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
        if kind == "one_hot":  # scatter_ checks every target is in [0, classes)
            classes = argument.make[1]
            target = args[argument.source]
            try:
                return torch.zeros(argument.shape, dtype=self.dtype).scatter_(1, target.view(-1, 1).long(), 1.0).numpy()
            except RuntimeError:
                raise ValueError(f"mlc backend: class targets must lie in [0, {classes}) "
                                 "(ignore_index is not supported)") from None
        if kind == "dropout":
            p = argument.make[1]
            return torch.empty(argument.shape, dtype=self.dtype).bernoulli_(1 - p).div_(1 - p).numpy()
        if kind == "randn":
            return torch.randn(argument.shape, dtype=self.dtype).numpy()
        assert kind == "rand", kind
        return torch.rand(argument.shape, dtype=self.dtype).numpy()

    @cached_property
    def program(self) -> Program:
        """The inference-mode program (compiled on first use: a training call needs only the
        split VJP's halves)."""
        return compile_program(self.imported.text)

    @property
    def splits(self) -> bool:
        """Whether a differentiated call runs the split VJP (`mlc-split-vjp`: the forward keeps
        what the backward reads, so the backward does not run the forward again). Checkpointing
        decides keep-or-recompute over the whole VJP, so with a budget or a policy the backward
        is the unsplit one, which recomputes the forward (under that budget)."""
        return self.options.budget is None and self.options.checkpoint is None

    def forward(self, args: Sequence[Any], made: dict[str, np.ndarray]) -> list[torch.Tensor]:
        if self._forward is None:
            self._forward = DirectCall(self.program.forward_program(self.imported.training), self.imported)
        outs = self._forward(args, made)
        return [outs[n] for n in self.imported.outputs if n is not None]

    def forward_saving(self, args: Sequence[Any], made: dict[str, np.ndarray]
                       ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """The outputs, and the tensors the split backward takes by name (outputs, `saved.<k>`)."""
        if self._forward_half is None:
            halves = split_vjp(self.imported.text, None, "params", self.imported.training)
            self._forward_half = DirectCall(halves[0], self.imported)
            self._backward = DirectCall(halves[1], self.imported, scratch_states=True)
        outs = self._forward_half(args, made)
        saved = {name: outs[name] for name in self._backward.extras if not name.startswith("cot.")}  # type: ignore[union-attr]
        return [outs[n] for n in self.imported.outputs if n is not None], saved

    def backward(self, args: Sequence[Any], made: dict[str, np.ndarray], cotangents: Sequence[torch.Tensor | None],
                 saved: dict[str, torch.Tensor]) -> dict[int, torch.Tensor]:
        """d/d(each param placeholder) of Σ cotangent · output, by placeholder position. The
        states get scratch copies: the forward already updated them."""
        if self._backward is None:
            variant = self.program.vjp_program("params", self.options.budget, self.options.checkpoint, self.imported.training)
            self._backward = DirectCall(variant, self.imported, scratch_states=True)
        names = [n for n in self.imported.outputs if n is not None]
        extras = {**saved, **{f"cot.{n}": g for n, g in zip(names, cotangents)}}
        outs = self._backward(args, made, extras)
        return {a.source: outs[f"grad.{a.name}"] for a in self.params}


class DirectCall:
    """A compiled function called on tensors' memory with no per-call bookkeeping: the order of
    its C arguments is worked out once, outputs are torch tensors the C code writes into, and a
    training-mode state update (`new.<state>`) is copied into its buffer. The shapes and dtypes
    are those of the call signature the entry was made for (Dynamo guards them)."""

    def __init__(self, program: Any, imported: Imported, scratch_states: bool = False) -> None:
        self.fn = program.function
        by_name = {a.name: a for a in imported.arguments}
        self.sources: list[tuple[str, Any]] = []
        for spec in program.signature.args:
            a = by_name.get(spec.name)
            if a is None:  # a cotangent, or a split VJP's tensor saved by its forward
                self.sources.append(("extra", spec.name))
            elif a.make:
                self.sources.append(("made", a.name))
            else:
                self.sources.append(("copy" if scratch_states and a.kind == "state" else "arg", a.source))
        dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
        self.outputs = [(spec.name, spec.shape, dtype[np.dtype(spec.dtype)]) for spec in program.signature.outputs]
        states = {a.name: a.source for a in imported.arguments if a.kind == "state"}
        self.updates = {name: states[name.removeprefix("new.")] for name, _, _ in self.outputs
                        if name.startswith("new.") and name.removeprefix("new.") in states}
        self.extras = [name for kind, name in self.sources if kind == "extra"]
        self._pool: list[tuple[np.ndarray | None, Any]] = []
        """Arenas with their argument arrays, one per call in flight (as `CFunction`'s pool)."""

    def __call__(self, args: Sequence[Any], made: dict[str, np.ndarray],
                 extras: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Call with the tensors' addresses: every buffer is contiguous, of the entry's shape and
        dtype, and only the outputs (fresh) and the arena (this call's own) are written, so the
        C function's checks are known to pass and are not repeated."""
        keep: list[Any] = []  # what the addresses point into, alive until the call returns
        addresses: list[int] = []
        for kind, source in self.sources:
            if kind == "arg":
                t = args[source] if args[source].is_contiguous() else args[source].contiguous()
            elif kind == "copy":
                t = args[source].detach().clone()
            elif kind == "made":
                array = made[source]
                keep.append(array)
                addresses.append(array.ctypes.data)
                continue
            else:  # autograd passes zeros as the cotangent of an unused output (materialised grads)
                t = extras[source]  # type: ignore[index]
                t = t if t.is_contiguous() else t.contiguous()
            keep.append(t)
            addresses.append(t.data_ptr())
        outs = {name: torch.empty(shape, dtype=dtype) for name, shape, dtype in self.outputs}
        addresses += [t.data_ptr() for t in outs.values()]
        try:
            arena, slots = self._pool.pop()
        except IndexError:  # every pooled arena is in use (or none made yet): one more
            arena = None if self.fn.arena_bytes is None else aligned_arena(self.fn.arena_bytes)
            slots = self.fn.slots(arena)
        try:
            for k, address in enumerate(addresses):
                slots[k] = address
            self.fn.call_slots(slots)
        finally:
            self._pool.append((arena, slots))
        for name, position in self.updates.items():
            args[position].copy_(outs[name])
        return outs


class _Call(torch.autograd.Function):
    """One mlc call as an autograd node: forward runs the program, backward its VJP program."""

    @staticmethod
    def forward(ctx: Any, entry: Entry, made: dict[str, np.ndarray], *args: Any) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        ctx.entry, ctx.made = entry, made
        # the states are updated in place by a training-mode forward and only read (copied) by
        # the backward, so they are kept as they are; every other tensor is saved (checked)
        states = {a.source for a in entry.imported.arguments if a.kind == "state"}
        ctx.positions = [k for k, a in enumerate(args) if isinstance(a, torch.Tensor) and k not in states]
        ctx.others = [a if not isinstance(a, torch.Tensor) or k in states else None for k, a in enumerate(args)]
        if entry.splits:
            outs, saved = entry.forward_saving(args, made)
        else:
            outs, saved = entry.forward(args, made), {}
        ctx.saved_names = list(saved)
        ctx.save_for_backward(*[args[k] for k in ctx.positions], *saved.values())
        return tuple(outs)

    @staticmethod
    def backward(ctx: Any, *cotangents: torch.Tensor | None) -> tuple[Any, ...]:  # type: ignore[override]
        args = list(ctx.others)
        tensors = ctx.saved_tensors
        for k, t in zip(ctx.positions, tensors):
            args[k] = t
        saved = dict(zip(ctx.saved_names, tensors[len(ctx.positions):], strict=True))
        grads = ctx.entry.backward(args, ctx.made, cotangents, saved)
        return (None, None, *[grads.get(k) for k in range(len(args))])
