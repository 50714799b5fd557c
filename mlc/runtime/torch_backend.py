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

import torch
import torch.utils._pytree as pytree

from mlc.backends.c.runtime import probe_compiler_in_background, set_num_threads
from mlc.frontend.pytorch.graph import Argument
from mlc.frontend.pytorch.importer import Imported, Unsupported, describe, import_graph, propagate, source_line
from mlc.runtime.direct_call import DirectCall
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
    probe_compiler_in_background()  # while the graph is imported and lowered
    return CompiledGraph(gm, BackendOptions.of(options), guarded=_static(gm))


def _static(gm: torch.fx.GraphModule) -> bool:
    """Whether every input of Dynamo's graph is a tensor of fixed sizes. Dynamo then guards each
    one's shape, strides, dtype and requires_grad, so the graph is called with one signature
    only. A graph with symbolic sizes takes each size as an input of its own."""
    for node in gm.graph.find_nodes(op="placeholder"):
        value = node.meta.get("example_value")
        if not isinstance(value, torch.Tensor) or not all(isinstance(d, int) for d in value.shape):
            return False
    return True


_warned: set[str] = set()


class CompiledGraph:
    """One Dynamo graph: an mlc program per call signature (shapes, dtypes, requires_grad),
    imported and compiled on the first call with that signature. `guarded`: Dynamo's guards
    allow one signature only (`_static`), so a call does not work out its own."""

    def __init__(self, gm: torch.fx.GraphModule, options: BackendOptions, guarded: bool = False) -> None:
        self.gm = gm
        self.options = options
        self.guarded = guarded
        self._entries: dict[tuple, Callable[[Sequence[Any]], Any] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> Any:
        key = () if self.guarded else \
            tuple((a.shape, a.dtype, a.requires_grad) if isinstance(a, torch.Tensor) else ("value", a) for a in args)
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
        return Entry(imported, self.options, self.guarded)

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
    """A compiled graph at one call signature. `guarded`: Dynamo's guards fix the shapes,
    strides, dtypes and requires_grad of every input, so what depends on them only is worked
    out on the first call."""

    def __init__(self, imported: Imported, options: BackendOptions, guarded: bool = False) -> None:
        self.imported = imported
        self.options = options
        self.guarded = guarded
        self.params = [a for a in imported.arguments if a.kind == "param"]
        self.dtype = torch.float32 if "f32[" in imported.text else torch.float64
        self._forward: DirectCall | None = None
        self._backward: DirectCall | None = None
        self._forward_half: DirectCall | None = None
        self._made = [a for a in imported.arguments if a.make]
        self._identities = {a.name: torch.eye(a.make[1], dtype=self.dtype) for a in self._made if a.make[0] == "one_hot"}
        self._outputs = [n for n in imported.outputs if n is not None]
        self._grads = [(a.source, f"grad.{a.name}") for a in self.params]
        self._loose: list[int] | None = None
        """The positions of the inputs that are not contiguous (once, when guarded)."""
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

    def contiguous(self, args: Sequence[Any]) -> Sequence[Any]:
        """`args` with every tensor contiguous (the C code reads dense row-major buffers)."""
        if self._loose is None or not self.guarded:
            self._loose = [k for k, a in enumerate(args) if isinstance(a, torch.Tensor) and not a.is_contiguous()]
        if not self._loose:
            return args
        dense = list(args)
        for k in self._loose:
            dense[k] = dense[k].contiguous()
        return dense

    def _make(self, argument: Argument, args: Sequence[Any]) -> torch.Tensor:
        """An argument the call makes: a one-hot of a class target (rows of an identity matrix),
        or a draw from PyTorch's generator as eager draws it (dropout: `bernoulli_(1 - p)` then
        `div_(1 - p)`)."""
        kind = argument.make[0]
        if kind == "one_hot":  # index_select checks every target is in [0, classes)
            classes = argument.make[1]
            try:
                return self._identities[argument.name].index_select(0, args[argument.source].view(-1))
            except (IndexError, RuntimeError):
                raise ValueError(f"mlc backend: class targets must lie in [0, {classes}) "
                                 "(ignore_index is not supported)") from None
        if kind == "dropout":
            p = argument.make[1]
            return torch.empty(argument.shape, dtype=self.dtype).bernoulli_(1 - p).div_(1 - p)
        if kind == "randn":
            return torch.randn(argument.shape, dtype=self.dtype)
        assert kind == "rand", kind
        return torch.rand(argument.shape, dtype=self.dtype)

    @cached_property
    def program(self) -> Program:
        """The inference-mode program (compiled on first use: a training call needs only the
        split VJP's halves)."""
        return compile_program(self.imported.text, tiered=True)

    @property
    def splits(self) -> bool:
        """Whether a differentiated call runs the split VJP (`mlc-split-vjp`: the forward keeps
        what the backward reads, so the backward does not run the forward again). Checkpointing
        decides keep-or-recompute over the whole VJP, so with a budget or a policy the backward
        is the unsplit one, which recomputes the forward (under that budget)."""
        return self.options.budget is None and self.options.checkpoint is None

    def forward(self, args: Sequence[Any], made: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        if self._forward is None:
            self._forward = DirectCall(self.program.forward_program(self.imported.training), self.imported)
        outs, _ = self._forward(self.contiguous(args), made, states=args)
        return [outs[n] for n in self._outputs]

    def differentiated(self) -> tuple[DirectCall | None, DirectCall]:
        """The split VJP's forward half (None when the VJP is not split) and the backward."""
        if self._backward is None:
            if self.splits:
                halves = split_vjp(self.imported.text, None, "params", self.imported.training, tiered=True)
                self._forward_half = DirectCall(halves[0], self.imported)
                self._backward = DirectCall(halves[1], self.imported, saved_from=self._forward_half)
            else:  # the states get scratch copies: the forward already updated them
                variant = self.program.vjp_program("params", self.options.budget, self.options.checkpoint,
                                                   self.imported.training)
                self._backward = DirectCall(variant, self.imported, scratch_states=True)
        return self._forward_half, self._backward

    def forward_saving(self, args: Sequence[Any], made: dict[str, torch.Tensor]
                       ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], torch.Tensor | None]:
        """The outputs, the outputs the split backward also reads (by name), and the buffer of
        the other values it reads (`saved.<k>`)."""
        forward_half, backward = self.differentiated()
        assert forward_half is not None
        outs, kept = forward_half(self.contiguous(args), made, states=args)
        return [outs[n] for n in self._outputs], {n: outs[n] for n in backward.extras if not n.startswith("cot.")}, kept

    def backward(self, args: Sequence[Any], made: dict[str, torch.Tensor], cotangents: Sequence[torch.Tensor | None],
                 saved: dict[str, torch.Tensor], kept: torch.Tensor | None) -> list[torch.Tensor | None]:
        """d/d(each param placeholder) of Σ cotangent · output, by placeholder position (None
        for the others)."""
        _, backward = self.differentiated()
        extras = {**saved, **{f"cot.{n}": g for n, g in zip(self._outputs, cotangents)}}
        outs, _ = backward(args, made, extras, saved=kept)
        grads: list[torch.Tensor | None] = [None] * len(args)
        for position, name in self._grads:
            grads[position] = outs[name]
        return grads


class _Call(torch.autograd.Function):
    """One mlc call as an autograd node: forward runs the program (or the split VJP's forward
    half), backward the VJP program (or its backward half)."""

    @staticmethod
    def forward(ctx: Any, entry: Entry, made: dict[str, torch.Tensor], *args: Any) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        _, backward = entry.differentiated()
        if entry.splits:
            outs, saved, kept = entry.forward_saving(args, made)
        else:
            outs, saved, kept = entry.forward(args, made), {}, None
        ctx.entry, ctx.made, ctx.kept, ctx.count = entry, made, kept, len(args)
        # a state the backward reads is copied by it (the forward updated it in place); every
        # other tensor it reads is saved, so autograd checks that nothing changed it since
        ctx.held = [(k, args[k]) for k in backward.copies]
        ctx.saved_names = list(saved)
        dense = entry.contiguous(args)
        ctx.save_for_backward(*[dense[k] for k in backward.reads], *saved.values())
        return tuple(outs)

    @staticmethod
    def backward(ctx: Any, *cotangents: torch.Tensor | None) -> tuple[Any, ...]:  # type: ignore[override]
        _, backward = ctx.entry.differentiated()
        tensors = ctx.saved_tensors
        args: list[Any] = [None] * ctx.count
        for k, t in zip(backward.reads, tensors):
            args[k] = t
        for k, t in ctx.held:
            args[k] = t
        saved = dict(zip(ctx.saved_names, tensors[len(backward.reads):], strict=True))
        return (None, None, *ctx.entry.backward(args, ctx.made, cotangents, saved, ctx.kept))
