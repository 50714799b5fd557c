"""What a nest reads: an op's reads through the producers it inlines, the ops that read a value
in nests of their own, and the producers computed at a loop of their reader."""

from __future__ import annotations

from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineMap

from mlc.dialects import ix
from mlc.loops.schedule import ScheduleError, schedule_of


def effective_reads(op: ix.ComputeOp) -> list[tuple[SSAValue, AffineMap]]:
    """What computing `op` reads from tensors with nests or buffers of their own, through the
    producers it inlines: (value, map from `op`'s iteration space into it)."""
    found: list[tuple[SSAValue, AffineMap]] = []
    for read in op.reads:
        producer = read.value.owner
        if isinstance(producer, ix.ComputeOp) and schedule_of(producer).inline:
            found += [(value, amap.compose(read.map)) for value, amap in effective_reads(producer)]
        else:
            found.append((read.value, read.map))
    return found


def root_readers(value: SSAValue, *, through_at: bool = False) -> set[Operation]:
    """The ops that compute with `value` in nests of their own, through inlined readers (and,
    with `through_at`, through readers computed at a loop of theirs: the nests that run them)."""
    found: set[Operation] = set()
    for use in value.uses:
        reader = use.operation
        schedule = schedule_of(reader)
        if isinstance(reader, ix.ComputeOp) and (schedule.inline or through_at and not schedule.is_root):
            found |= root_readers(reader.result, through_at=through_at)
        else:
            found.add(reader)
    return found


def attached_producers(op: ix.ComputeOp) -> dict[str, list[ix.ComputeOp]]:
    """The producers `op` reads (through inlined ops) that are computed at one of its loops,
    by loop name."""
    found: dict[str, list[ix.ComputeOp]] = {}
    for value in dict.fromkeys(v for v, _ in effective_reads(op)):
        producer = value.owner
        if isinstance(producer, ix.ComputeOp) and (at := schedule_of(producer).at) is not None:
            found.setdefault(at, []).append(producer)
            if (readers := root_readers(producer.result)) != {op}:
                raise ScheduleError(f"at({at}): computed at a loop of its reader, but {len(readers)} ops read it")
    return found
