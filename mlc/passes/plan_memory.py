"""`mlc-plan-memory`: place every temporary buffer of a function in one arena, and report memory.

Liveness is measured on the function's top-level ops (each one is a whole loop nest): a buffer
is live from the op that allocates it to the last top-level op that uses it, both inclusive, so
a nest never writes into memory it is still reading. Buffers whose live ranges are disjoint may
share bytes. Placement is greedy best-fit, largest buffer first, with every offset aligned to
`mlc.loops.arena.ALIGN` bytes (so vector loads stay aligned). The arena becomes a trailing `memref<Nxi8>`
argument, each `memref.alloc` a `memref.view` into it, and the function records
`mlc.arena_bytes = N` so the runtime allocates exactly that. A function with `mlc.memory_budget`
(set by mlc-checkpoint, which predicts the arena exactly) fails if the arena exceeds it.

The memory report. The function also records `mlc.memory`, a dictionary of byte counts (and
`mlc-plan-memory{report=true}` prints it on stderr, one block per function):

    arena             = mlc.arena_bytes
    peak_saved        saved activations live at the peak point
    peak_temporaries  the other arena buffers live at the peak point
    params            arguments of kind `param`                    (signature: mlc.arg_kinds)
    optimizer_state   arguments of kind `state`
    inputs            arguments of kind `input` and `hyper` (the hyper-parameter scalars)
    outputs           the output buffers: the trailing memrefs, one per mlc.output_names
    total_peak        = params + optimizer_state + inputs + outputs + arena
    recompute_macs    multiply-adds mlc-checkpoint added by recomputing forward values (0 without it)

Definitions, on the top-level positions p of the function and the arena buffers b (each with its
size |b|, the tensor's bytes without alignment padding, and its inclusive live range
[start_b, end_b] as above):

- live(p) = sum of |b| over the buffers with start_b <= p <= end_b;
- the *peak point* P is the first position where live(p) is maximal (no buffer: live = 0);
- the *backward start* B is the position of the first allocation marked `mlc.phase =
  "backward"` (mlc-lower-loops copies the phase of the compute op that fills a buffer onto its
  `memref.alloc`; see mlc-autodiff). Every forward nest precedes it and the backward's first
  nest follows it, so a buffer is live when the first backward nest runs iff end_b >= B;
- a *saved activation* is a buffer marked `"forward"` with end_b >= B: a forward value the
  backward still reads. Every other arena buffer is a *temporary*: forward values that die
  within the forward, backward and update buffers, and every buffer of a function without a
  backward (where B does not exist);
- peak_saved + peak_temporaries = live(P) <= arena. Buffers live at one position occupy
  disjoint bytes, so the arena is never smaller; it exceeds live(P) by the alignment padding and
  by fragmentation (best-fit is not optimal: a gap left by one dead buffer may be too small for
  the next).

A function without the signature attributes (not a model function) counts the arguments it
writes as outputs and every other argument as inputs. The figures describe one call: the peak
of what a caller must hold is `total_peak` (parameters, optimizer state, inputs and outputs are
the caller's arrays; the arena is the runtime's).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.builder import Builder, InsertPoint
from xdsl.context import Context
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, IntegerAttr, MemRefType, ModuleOp, StringAttr, i8, i64
from xdsl.ir import Attribute, BlockArgument, Operation, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.loops.arena import place
from mlc.loops.builders import index_const
from mlc.passes.autodiff import PHASE

@dataclass(frozen=True)
class Buffer:
    """A temporary to place: its allocation, size in bytes and inclusive live range."""

    alloc: memref.AllocOp
    size: int
    start: int
    end: int

    @property
    def phase(self) -> str:
        """The `mlc.phase` of the allocation ("" when it has none)."""
        attr = self.alloc.attributes.get(PHASE)
        return attr.data if isinstance(attr, StringAttr) else ""


MEMORY = "mlc.memory"
"""The function attribute holding the memory report (a dictionary of i64 byte counts)."""

REPORT_KEYS = (
    "arena", "peak_saved", "peak_temporaries", "params", "optimizer_state", "inputs", "outputs", "total_peak",
    "recompute_macs",
)
"""The figures of `mlc.memory`, in order (see the module docstring)."""


@dataclass(frozen=True)
class PlanMemoryPass(ModulePass):
    """Replace allocations by views into one arena per function, reusing dead buffers; record `mlc.memory`."""

    name = "mlc-plan-memory"

    report: bool = False
    """Also print each function's memory report (`mlc.memory`) on stderr."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if "mlc.arena_bytes" not in f.attributes:
                plan_function(f)
            if self.report and (figures := memory_report(f)) is not None:
                print(format_report(f.sym_name.data, figures), file=sys.stderr)


def byte_size(t: MemRefType) -> int:
    elt = t.get_element_type()
    width = getattr(elt, "bitwidth", None) or getattr(elt, "width").data
    count = 1
    for d in t.get_shape():
        count *= d
    return count * width // 8


def _top_level(op: Operation, block_owner: Operation) -> Operation:
    while op.parent_op() is not block_owner:
        parent = op.parent_op()
        assert parent is not None
        op = parent
    return op


def live_buffers(f: func.FuncOp) -> list[Buffer]:
    """Every top-level allocation with its live range in top-level op positions."""
    position = {op: k for k, op in enumerate(f.body.block.ops)}
    buffers: list[Buffer] = []
    for op in f.body.block.ops:
        if not isinstance(op, memref.AllocOp):
            continue
        uses = [position[_top_level(use.operation, f)] for use in op.memref.uses if not isinstance(use.operation, memref.DeallocOp)]
        start = position[op]
        buffers.append(Buffer(op, byte_size(op.memref.type), start, max(uses, default=start)))
    return buffers


def assign_offsets(buffers: list[Buffer]) -> tuple[dict[memref.AllocOp, int], int]:
    """Best-fit placement of the buffers (see `place`); returns offsets and the arena size."""
    offsets, total = place([(b.size, b.start, b.end) for b in buffers])
    return {b.alloc: o for b, o in zip(buffers, offsets)}, total


def plan_function(f: func.FuncOp) -> None:
    """Rewrite the allocations of `f` into arena views, append the arena argument, and record
    `mlc.arena_bytes` and the memory report `mlc.memory`."""
    buffers = live_buffers(f)
    offsets, total = assign_offsets(buffers)
    block = f.body.block
    figures = {"arena": total, **peak_figures(buffers), **argument_figures(f, list(block.args))}
    figures["total_peak"] = sum(figures[k] for k in ("params", "optimizer_state", "inputs", "outputs", "arena"))
    figures["recompute_macs"] = _checkpoint_figure(f, "recompute_macs")
    budget = f.attributes.get("mlc.memory_budget")
    if isinstance(budget, IntegerAttr) and total > budget.value.data:
        raise PassFailedException(
            f"mlc-plan-memory: @{f.sym_name.data} needs an arena of {total} bytes, over its budget of "
            f"{budget.value.data} bytes (mlc-checkpoint predicted {_checkpoint_figure(f, 'planned_arena')}): "
            "a pass between them changed the function")
    arena: SSAValue = block.insert_arg(MemRefType(i8, [max(total, 1)]), len(block.args))
    arena.name_hint = "arena"
    for buf in buffers:
        builder = Builder(InsertPoint.before(buf.alloc))
        offset = index_const(offsets[buf.alloc])
        offset.name_hint = "offset"
        builder.insert(offset.owner)  # pyright: ignore[reportArgumentType]
        view = memref.ViewOp(arena, offset, [], buf.alloc.memref.type)
        builder.insert(view)
        for use in list(buf.alloc.memref.uses):
            if isinstance(use.operation, memref.DeallocOp):
                use.operation.detach()
                use.operation.erase()
        buf.alloc.memref.replace_all_uses_with(view.result)
        buf.alloc.detach()
        buf.alloc.erase()
    f.function_type = func.FunctionType.from_lists([a.type for a in block.args], [])
    f.attributes["mlc.arena_bytes"] = IntegerAttr(total, i64)
    f.attributes[MEMORY] = DictionaryAttr({k: IntegerAttr(figures[k], i64) for k in REPORT_KEYS})


def _checkpoint_figure(f: func.FuncOp, key: str) -> int:
    """A figure mlc-checkpoint recorded in `mlc.checkpoint` (0 when it did not run)."""
    attr = f.attributes.get("mlc.checkpoint")
    value = attr.data.get(key) if isinstance(attr, DictionaryAttr) else None
    return value.value.data if isinstance(value, IntegerAttr) else 0


# ---------------------------------------------------------------------------------------------
# The memory report
# ---------------------------------------------------------------------------------------------
def saved_activations(buffers: Sequence[Buffer]) -> list[Buffer]:
    """Forward buffers still live at the backward start (see the module docstring)."""
    backward_start = min((b.start for b in buffers if b.phase == "backward"), default=None)
    if backward_start is None:
        return []
    return [b for b in buffers if b.phase == "forward" and b.end >= backward_start]


def peak_figures(buffers: Sequence[Buffer]) -> dict[str, int]:
    """`peak_saved` and `peak_temporaries`: bytes of each class live at the peak point."""
    saved = {id(b) for b in saved_activations(buffers)}
    best: tuple[int, int] | None = None  # (live bytes, position)
    for p in sorted({b.start for b in buffers}):  # live(p) only grows where a buffer starts
        live = sum(b.size for b in buffers if b.start <= p <= b.end)
        if best is None or live > best[0]:
            best = (live, p)
    if best is None:
        return {"peak_saved": 0, "peak_temporaries": 0}
    live_at_peak = [b for b in buffers if b.start <= best[1] <= b.end]
    peak_saved = sum(b.size for b in live_at_peak if id(b) in saved)
    return {"peak_saved": peak_saved, "peak_temporaries": best[0] - peak_saved}


_KIND_FIGURE = {"param": "params", "state": "params", "optimizer_state": "optimizer_state", "input": "inputs", "hyper": "inputs"}


def argument_figures(f: func.FuncOp, args: Sequence[BlockArgument]) -> dict[str, int]:
    """Bytes of the arguments (the arena excluded) by kind: params, optimizer_state, inputs, outputs."""
    figures = {"params": 0, "optimizer_state": 0, "inputs": 0, "outputs": 0}
    kinds, output_names = f.attributes.get("mlc.arg_kinds"), f.attributes.get("mlc.output_names")
    if isinstance(kinds, ArrayAttr) and isinstance(output_names, ArrayAttr):
        labels = [_KIND_FIGURE.get(k.data, "inputs") for k in kinds.data if isinstance(k, StringAttr)]
        labels += ["outputs"] * len(output_names.data)
    else:
        labels = ["outputs" if _written(a) else "inputs" for a in args]
    for label, arg in zip(labels, args):
        if isinstance(arg.type, MemRefType):
            figures[label] += byte_size(arg.type)
    return figures


def _written(value: SSAValue) -> bool:
    """Whether some use may write through `value` (anything but a load or a copy's source)."""
    for use in value.uses:
        if isinstance(use.operation, memref.LoadOp) or (isinstance(use.operation, memref.CopyOp) and use.index == 0):
            continue
        return True
    return False


def memory_report(f: func.FuncOp) -> dict[str, int] | None:
    """The figures recorded in `mlc.memory` on `f`, or None when it has not been planned."""
    attr: Attribute | None = f.attributes.get(MEMORY)
    if not isinstance(attr, DictionaryAttr):
        return None
    return {k: v.value.data for k, v in attr.data.items() if isinstance(v, IntegerAttr)}


def human_bytes(n: int) -> str:
    """`512 B`, `90.8 KiB`, `1.25 MiB`."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


def format_report(name: str, figures: dict[str, int]) -> str:
    """One block: a header naming the function, then `name  bytes  (human)` per figure."""
    width = max(len(str(v)) for v in figures.values())
    lines = [f"mlc-plan-memory: memory of @{name}"]
    lines += [f"  {k:<16}  {v:>{width}}  ({'multiply-adds' if k.endswith('_macs') else human_bytes(v)})"
              for k, v in figures.items()]
    return "\n".join(lines)
