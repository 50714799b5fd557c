"""The base of the nest builder: what a nest is made of (its op, buffers, schedule and loop tree,
checked when it is made) and how it reads and writes memory: scalar, vector, masked partial
vector or lane-by-lane loads and stores, guarded where a read may leave its tensor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from xdsl.dialects import arith, vector
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects import ix
from mlc.loops.affine import read_in_bounds
from mlc.loops.builders import (
    buffer_shape,
    clamped_index,
    element_const,
    guarded_load,
    in_bounds,
    made,
    shape_type,
    store_element,
)
from mlc.loops.nest.reads import attached_producers
from mlc.loops.nest.space import Space
from mlc.loops.nest.vectors import (
    broadcast,
    lane_axis,
    lane_contiguous,
    element_bytes,
    from_lanes,
    per_lane,
    prefix_mask,
    vector_load,
    vector_type,
    widened,
)
from mlc.loops.schedule import Loops, Schedule, ScheduleError, check_schedule, schedule_of
from mlc.loops.target import CpuTarget


class NestMemory:
    """The nest of `op` (see `Nest`): its schedule, checked, and its loads and stores."""

    def __init__(self, op: ix.ComputeOp, buffers: Mapping[SSAValue, SSAValue], out: SSAValue, target: CpuTarget,
                 origin: Sequence[AffineExpr] | None = None, block: Sequence[int] | None = None) -> None:
        self.op, self.buffers, self.out, self.target = op, buffers, out, target
        self.schedule: Schedule = schedule_of(op)
        self.origin = tuple(origin) if origin is not None else None
        shape = tuple(block) if block is not None else op.result_type.get_shape()
        self.extents = (*shape, *op.reduction_extents)
        self.loops: Loops = check_schedule(self.schedule.with_(inline=False, at=None), op.rank, self.extents,
                                           op.reduction.data != "none")
        if origin is not None and self.schedule.parallel is not None:
            raise ScheduleError(f"parallel({self.schedule.parallel}): an op computed at a loop of its reader runs on "
                                "that loop's thread")
        self.attached = attached_producers(op)
        for read, loop in self.schedule.stage:
            if read >= len(op.reads) or isinstance(op.reads[read].value.owner, ix.ComputeOp) \
                    and not schedule_of(op.reads[read].value.owner).is_root:  # pyright: ignore[reportArgumentType]
                raise ScheduleError(f"stage({read}): not a read of a tensor with a buffer (the op has {len(op.reads)} "
                                    "reads; one of an op computed inside this one cannot be staged)")
        if self.schedule.vectorize in self.attached:
            raise ScheduleError(f"at({self.schedule.vectorize}): the reader's loop {self.schedule.vectorize} is vectorized; "
                                "compute the producer at a loop outside it")
        self.lanes = self.schedule.lanes or target.lanes(element_bytes(op.result_type.get_element_type()))
        self.loaded: dict[tuple[object, ...], SSAValue] | None = None
        """Loads already emitted in the current block, while it has no store (a register tile's
        cells read the same operands)."""

    # -- memory --------------------------------------------------------------------------------
    def load(self, buffer: SSAValue, index: Sequence[AffineExpr], fill: float, space: Space) -> SSAValue:
        """`buffer[index]` (the fill outside it) as a scalar or a vector (see the module docstring)."""
        if self.loaded is None:
            return self._load(buffer, index, fill, space)
        used = sorted(set().union(*(e.used_dims() for e in index)))
        lanes = (space.ranges[space.lane], space.width) if space.lane in used else None
        dims = tuple((d, _value_key(space.values[d]), space.ranges[d]) for d in used)
        key = (buffer, tuple(str(e) for e in index), fill, lanes, dims)
        if key not in self.loaded:
            self.loaded[key] = self._load(buffer, index, fill, space)
        return self.loaded[key]

    def _load(self, buffer: SSAValue, index: Sequence[AffineExpr], fill: float, space: Space) -> SSAValue:
        shape = buffer_shape(buffer)
        amap = AffineMap(len(space.values), 0, tuple(index))
        unsafe = [not ok for ok in read_in_bounds(amap, space.ranges, shape)]
        moving = [space.uses_lanes(e) for e in index]
        if not any(moving):
            return guarded_load(buffer, [space.emit(e) for e in index], unsafe, fill)
        if lane_contiguous(index, space, shape) and not unsafe[lane_axis(shape)]:
            indices = [space.emit(e) for e in index]
            cond = in_bounds(indices, shape, unsafe)
            typ = vector_type(shape_type(buffer).get_element_type(), space.width)
            if cond is None:
                return vector_load(buffer, indices, typ, space.active)
            clamped = [clamped_index(i, n) if bad else i for i, n, bad in zip(indices, shape, unsafe)]
            loaded = vector_load(buffer, clamped, typ, space.active)
            filler = broadcast(element_const(fill, typ.element_type), space.width)
            return arith.SelectOp(cond, loaded, filler).result
        return self.gather(buffer, index, fill, space)

    def gather(self, buffer: SSAValue, index: Sequence[AffineExpr], fill: float, space: Space) -> SSAValue:
        """A vector read lane by lane."""
        return from_lanes([self.load(buffer, at, fill, scalar_space) for at, scalar_space in per_lane(index, space)],
                           space.width)

    def store(self, buffer: SSAValue, index: Sequence[AffineExpr], value: SSAValue, space: Space) -> None:
        if space.lane is None:
            store_element(value, buffer, [space.emit(e) for e in index])
            return
        value = widened(value, space.width)
        if lane_contiguous(index, space, buffer_shape(buffer)):
            indices = [space.emit(e) for e in index]
            if space.active < space.width:
                vector.MaskedStoreOp(buffer, indices, prefix_mask(space.active, space.width), value)
            else:
                made(vector.StoreOp, [value, buffer, *indices])
            return
        for lane, (at, scalar_space) in enumerate(per_lane(index, space)):
            scalar = vector.ExtractOp(value, [lane], value.type.element_type).result  # pyright: ignore[reportAttributeAccessIssue]
            store_element(scalar, buffer, [scalar_space.emit(e) for e in at])


def _value_key(value: SSAValue) -> object:
    """A value as a cache key: constants by their value (each unrolled cell emits its own)."""
    owner = value.owner
    if isinstance(owner, arith.ConstantOp):
        return ("constant", str(owner.value))
    return value
