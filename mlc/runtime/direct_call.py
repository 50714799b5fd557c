"""A compiled function called on torch tensors' memory, with the per-call work cut to what
changes between calls: `torch.compile(backend="mlc")` makes one per compiled half and calls it
on every step, so each microsecond here is one the user's step pays.

The order of the C arguments is worked out once, and a call writes the buffers' addresses
into the argument array with a few NumPy stores (one per kind of buffer), not one ctypes store
each. Allocating a tensor costs about 2 µs, so only what leaves the call as a tensor of its own
(the graph's outputs, the gradients) is allocated as one: the values a split VJP's forward
keeps for its backward (`saved.<k>`) share one buffer per call, and the state updates
(`new.<state>`, copied into the running statistics before the call returns) one buffer per
argument array, made once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mlc.backends.c.runtime import aligned_arena
from mlc.frontend.pytorch.graph import Argument
from mlc.frontend.pytorch.importer import Imported
from mlc.loops.arena import place

TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}


class _Layout:
    """Named tensors packed into one byte buffer, all live at once: the arena placement
    (`mlc.loops.arena.place`, aligned offsets) of intervals that all overlap."""

    def __init__(self, tensors: Sequence[tuple[str, tuple[int, ...], np.dtype]]) -> None:
        self.shapes = {name: (shape, dtype) for name, shape, dtype in tensors}
        offsets, self.nbytes = place([(math.prod(shape) * dtype.itemsize, 0, 0) for _, shape, dtype in tensors])
        self.offsets = {name: offset for (name, _, _), offset in zip(tensors, offsets)}

    def view(self, buffer: torch.Tensor, name: str) -> torch.Tensor:
        shape, dtype = self.shapes[name]
        start = self.offsets[name]
        return buffer[start:start + math.prod(shape) * dtype.itemsize].view(TORCH_DTYPES[dtype]).view(shape)


class DirectCall:
    """A compiled function called on tensors' memory. The shapes and dtypes are those of the
    call signature the entry was made for (Dynamo guards them), every buffer is contiguous and
    only the outputs (fresh) and the arena (this call's own) are written, so the C function's
    checks are known to pass and are not repeated.

    Sources of the arguments, in the C order: `arg` (a graph input, by placeholder position),
    `copy` (a state the function may write: a scratch copy), `made` (what the call makes: a
    one-hot, a random draw), `saved` (a value the forward half `saved_from` kept) and `extra`
    (a tensor the caller names: a cotangent, a saved output)."""

    def __init__(self, program: Any, imported: Imported, scratch_states: bool = False,
                 saved_from: DirectCall | None = None) -> None:
        self.fn = program.function
        by_name = {a.name: a for a in imported.arguments}
        kinds: dict[str, list[tuple[int, Any]]] = {"arg": [], "copy": [], "made": [], "saved": [], "extra": []}
        for slot, spec in enumerate(program.signature.args):
            a: Argument | None = by_name.get(spec.name)
            if a is None:
                kind = "saved" if saved_from is not None and spec.name in saved_from.kept.offsets else "extra"
                kinds[kind].append((slot, spec.name))
            elif a.make:
                kinds["made"].append((slot, a.name))
            else:
                kinds["copy" if scratch_states and a.kind == "state" else "arg"].append((slot, a.source))
        self._slots = {kind: np.array([s for s, _ in found], dtype=np.intp) for kind, found in kinds.items()}
        self._sources = {kind: [source for _, source in found] for kind, found in kinds.items()}
        self._read_slots = np.concatenate([self._slots[k] for k in ("arg", "copy", "extra")])
        self.reads: list[int] = self._sources["arg"]
        """The placeholder positions of the inputs the function reads as they are."""
        self.copies: list[int] = self._sources["copy"]
        """Those of the states it reads from a scratch copy."""
        self.extras = self._sources["extra"]
        self.saved_offsets = np.array([saved_from.kept.offsets[n] for n in self._sources["saved"]],  # type: ignore[union-attr]
                                      dtype=np.uintp)  # (no `saved` source without `saved_from`)

        first = len(program.signature.args)
        states = {a.name: a.source for a in imported.arguments if a.kind == "state"}
        fresh, kept, updates = [], [], []
        for slot, spec in enumerate(program.signature.outputs, first):
            entry = (spec.name, spec.shape, np.dtype(spec.dtype))
            if spec.name.startswith("saved."):
                kept.append((slot, entry))
            elif spec.name.startswith("new.") and spec.name.removeprefix("new.") in states:
                updates.append((slot, entry))
            else:
                fresh.append((slot, entry))
        self.outputs = [(name, shape, TORCH_DTYPES[dtype]) for _, (name, shape, dtype) in fresh]
        self._fresh_slots = np.array([s for s, _ in fresh], dtype=np.intp)
        self.kept = _Layout([e for _, e in kept])
        """The values kept for the backward: one buffer per call (`__call__`'s second result)."""
        self._kept_slots = np.array([s for s, _ in kept], dtype=np.intp)
        self._kept_offsets = np.array([self.kept.offsets[name] for _, (name, _, _) in kept], dtype=np.uintp)
        self._updates = _Layout([e for _, e in updates])
        self._update_targets = [(name, states[name.removeprefix("new.")]) for _, (name, _, _) in updates]
        self._update_slots = np.array([s for s, _ in updates], dtype=np.intp)
        self._pool: list[tuple[Any, np.ndarray, list[tuple[int, torch.Tensor]], tuple]] = []
        """Argument arrays (with the NumPy view of their addresses, their state updates' views
        and what those point into), one per call in flight, as `CFunction`'s pool."""

    def _argument_array(self) -> tuple[Any, np.ndarray, list[tuple[int, torch.Tensor]], tuple]:
        """An argument array with its arena and its state-update buffer filled in."""
        arena = None if self.fn.arena_bytes is None else aligned_arena(self.fn.arena_bytes)
        slots = self.fn.slots(arena)
        addresses = np.frombuffer(slots, dtype=np.uintp)
        updates = torch.empty(self._updates.nbytes, dtype=torch.uint8)
        addresses[self._update_slots] = [updates.data_ptr() + self._updates.offsets[n] for n, _ in self._update_targets]
        views = [(position, self._updates.view(updates, name)) for name, position in self._update_targets]
        return slots, addresses, views, (arena, updates)

    def __call__(self, args: Sequence[Any], made: dict[str, torch.Tensor], extras: dict[str, torch.Tensor] | None = None,
                 saved: torch.Tensor | None = None, states: Sequence[Any] | None = None
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """The fresh outputs by name, and the buffer of the kept values (None when none are).
        `args` are contiguous; `saved` is the buffer a call of `saved_from` returned; the state
        updates are copied into `states` (by default `args`: the caller's own tensors)."""
        sources = self._sources
        reads = [args[k] for k in sources["arg"]] + [args[k].detach().clone() for k in sources["copy"]]
        if extras is not None:  # autograd passes zeros as the cotangent of an unused output (materialised grads)
            reads += [t if t.is_contiguous() else t.contiguous() for t in (extras[n] for n in sources["extra"])]
        outs = {name: torch.empty(shape, dtype=dtype) for name, shape, dtype in self.outputs}
        kept = torch.empty(self.kept.nbytes, dtype=torch.uint8) if self.kept.nbytes else None
        try:
            pooled = self._pool.pop()
        except IndexError:  # every argument array is in use (or none made yet): one more
            pooled = self._argument_array()
        slots, addresses, updates, _ = pooled
        try:
            addresses[self._read_slots] = [t.data_ptr() for t in reads]
            addresses[self._slots["made"]] = [made[n].data_ptr() for n in sources["made"]]
            addresses[self._fresh_slots] = [t.data_ptr() for t in outs.values()]
            if saved is not None:
                addresses[self._slots["saved"]] = self.saved_offsets + saved.data_ptr()
            if kept is not None:
                addresses[self._kept_slots] = self._kept_offsets + kept.data_ptr()
            self.fn.call_slots(slots)
            targets = args if states is None else states
            for position, update in updates:
                targets[position].copy_(update)
        finally:
            self._pool.append(pooled)
        return outs, kept
