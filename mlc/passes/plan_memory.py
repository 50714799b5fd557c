"""`mlc-plan-memory`: place every temporary buffer of a function in one arena.

Liveness is measured on the function's top-level ops (each one is a whole loop nest): a buffer
is live from the op that allocates it to the last top-level op that uses it, both inclusive, so
a nest never writes into memory it is still reading. Buffers whose live ranges are disjoint may
share bytes. Placement is greedy best-fit, largest buffer first, with every offset aligned to
`ALIGN` bytes (so vector loads stay aligned). The arena becomes a trailing `memref<Nxi8>`
argument, each `memref.alloc` a `memref.view` into it, and the function records
`mlc.arena_bytes = N` so the runtime allocates exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.builder import Builder, InsertPoint
from xdsl.context import Context
from xdsl.dialects import func, memref
from xdsl.dialects.builtin import IntegerAttr, MemRefType, ModuleOp, i8, i64
from xdsl.ir import Operation, SSAValue
from xdsl.passes import ModulePass

from mlc.loops import index_const

ALIGN = 64


@dataclass(frozen=True)
class Buffer:
    """A temporary to place: its allocation, size in bytes and inclusive live range."""

    alloc: memref.AllocOp
    size: int
    start: int
    end: int


@dataclass(frozen=True)
class PlanMemoryPass(ModulePass):
    """Replace allocations by views into one arena per function, reusing dead buffers."""

    name = "mlc-plan-memory"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if "mlc.arena_bytes" not in f.attributes:
                plan_function(f)


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
    """Best-fit placement, largest first; returns offsets and the arena size."""
    placed: list[tuple[int, int, Buffer]] = []  # (offset, padded size, buffer)
    offsets: dict[memref.AllocOp, int] = {}
    for buf in sorted(buffers, key=lambda b: (-b.size, b.start)):
        need = -(-buf.size // ALIGN) * ALIGN
        busy = sorted((o, o + s) for o, s, other in placed if other.start <= buf.end and buf.start <= other.end)
        best, best_gap, cursor = None, None, 0
        for lo, hi in busy:
            gap = lo - cursor
            if gap >= need and (best_gap is None or gap < best_gap):
                best, best_gap = cursor, gap
            cursor = max(cursor, hi)
        offset = best if best is not None else cursor
        placed.append((offset, need, buf))
        offsets[buf.alloc] = offset
    total = max((o + s for o, s, _ in placed), default=0)
    return offsets, total


def plan_function(f: func.FuncOp) -> None:
    """Rewrite the allocations of `f` into arena views and append the arena argument."""
    buffers = live_buffers(f)
    offsets, total = assign_offsets(buffers)
    block = f.body.block
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
