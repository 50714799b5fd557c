"""Values: the body of an op at an iteration point, on scalars or vectors, folded into a
reduction's accumulator (with fused multiply-adds for sums of products); its reads from buffers,
staged blocks, blocks of producers computed at a loop, or producers inlined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import FloatAttr, IndexType, IntegerType, VectorType
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap
from xdsl.traits import is_side_effect_free

from mlc.dialects import ix
from mlc.loops.affine import read_in_bounds, simplify_within, substitute
from mlc.loops.builders import clamped_index, element_const, in_bounds, index_const, made, reused
from mlc.loops.nest.memory import NestMemory
from mlc.loops.nest.space import Space, State
from mlc.loops.nest.vectors import broadcast, from_lanes, per_lane, vector_op, widened
from mlc.loops.schedule import ScheduleError, schedule_of


class NotVectorizable(ScheduleError):
    """A vectorised loop whose body cannot run on vectors (names the read or op and why)."""


class NestValues(NestMemory):
    """An op's value at an iteration point (its reads, inlined producers and body)."""

    # -- values --------------------------------------------------------------------------------
    def value(self, op: ix.ComputeOp, exprs: Sequence[AffineExpr], state: State, acc: SSAValue | None = None) -> SSAValue:
        """The body of `op` at the iteration point `exprs`, combined into `acc` for a reduction."""
        args = []
        for k, r in enumerate(op.reads):
            staged = state.locals.get((op.result, k))
            if staged is None:
                args.append(self.read(r, exprs, state))
            else:
                args.append(self.load(staged.buffer, staged.index(read_index(r, exprs, state.space)), 0.0, state.space))
        return self.body(op, args, exprs, state.space, acc)

    def read(self, read: ix.Read, exprs: Sequence[AffineExpr], state: State) -> SSAValue:
        index = read_index(read, exprs, state.space)
        producer = read.value.owner
        if isinstance(producer, ix.ComputeOp) and not schedule_of(producer).is_root:
            if schedule_of(producer).inline:
                return self.inline(producer, index, read.fill, state)
            local = state.locals.get(read.value)
            if local is None:
                raise ScheduleError(f"at({schedule_of(producer).at}): not a loop of its reader that encloses the read")
            return self.load(local.buffer, local.index(index), 0.0, state.space)
        return self.load(self.buffers[read.value], index, read.fill, state.space)

    def inline(self, producer: ix.ComputeOp, index: Sequence[AffineExpr], fill: float, state: State) -> SSAValue:
        """An inlined producer's value at `index`: its body, where the index stays in its bounds;
        where it may not, the body at the index clamped into them, and the read's fill outside."""
        amap = AffineMap(len(state.space.values), 0, tuple(index))
        safe = read_in_bounds(amap, state.space.ranges, producer.result_type.get_shape())
        if all(safe):
            return self.value(producer, index, state)
        if any(not ok and state.space.uses_lanes(e) for e, ok in zip(index, safe)):  # lane by lane
            return from_lanes([self.inline(producer, at, fill, replace(state, space=scalar_space))
                                for at, scalar_space in per_lane(index, state.space)], state.space.width)
        space, clamped, indices = state.space, list(index), []
        for k, (e, ok, n) in enumerate(zip(index, safe, producer.result_type.get_shape())):
            if ok:
                continue
            indices.append((space.emit(e), n))
            space, clamped[k] = space.add(clamped_index(indices[-1][0], n), 0, n - 1)
        cond = in_bounds([i for i, _ in indices], [n for _, n in indices], [True] * len(indices))
        assert cond is not None
        value = self.value(producer, clamped, replace(state, space=space))
        filler = element_const(fill, producer.result_type.get_element_type())
        if isinstance(value.type, VectorType):
            filler = broadcast(filler, value.type.get_shape()[0])
        return arith.SelectOp(cond, value, filler).result

    def body(self, op: ix.ComputeOp, args: Sequence[SSAValue], exprs: Sequence[AffineExpr], space: Space,
             acc: SSAValue | None) -> SSAValue:
        """Clone the body (on vectors where an operand is one); fold it into `acc` if given."""
        mapping: dict[SSAValue, SSAValue] = dict(zip(op.body.block.args, args, strict=True))
        yielded = op.yield_op.value
        product = acc is not None and op.reduction.data == "sum" and isinstance(yielded.owner, arith.MulfOp) \
            and yielded.has_one_use()
        for body_op in op.body.block.ops:
            if isinstance(body_op, ix.YieldOp) or (product and body_op is yielded.owner):
                continue
            if isinstance(body_op, ix.IndexOp):
                expr = exprs[body_op.dim.value.data]
                if space.uses_lanes(expr):
                    raise NotVectorizable(f"vectorize({self.schedule.vectorize}): the body of {op.name} uses the index "
                                          "the lanes run along")
                mapping[body_op.result] = space.emit(expr)
                continue
            if isinstance(body_op, arith.ConstantOp) and isinstance(body_op.value, FloatAttr):
                mapping[body_op.result] = element_const(body_op.value.value.data, body_op.result.type)
                continue
            if isinstance(body_op, arith.ConstantOp) and isinstance(body_op.result.type, IndexType):
                mapping[body_op.result] = index_const(body_op.value.value.data)  # pyright: ignore[reportAttributeAccessIssue]
                continue
            operands = [mapping.get(v, v) for v in body_op.operands]
            if len(body_op.results) == 1 and is_side_effect_free(body_op):  # built once where it dominates, as cse keys it
                key = (type(body_op), body_op.results[0].type, *operands, *body_op.properties.items(),
                       *body_op.attributes.items())
                mapping[body_op.results[0]] = reused(key, lambda: _cloned(body_op, operands, mapping).results[0])
            else:
                mapping.update(zip(body_op.results, _cloned(body_op, operands, mapping).results))
        if acc is None:
            return mapping.get(yielded, yielded)
        width = acc.type.get_shape()[0] if isinstance(acc.type, VectorType) else 1  # pyright: ignore[reportAttributeAccessIssue]
        if product:
            mul = yielded.owner
            assert isinstance(mul, arith.MulfOp)
            a, b = (widened(mapping.get(v, v), width) for v in (mul.lhs, mul.rhs))
            return made(math.FmaOp, [a, b, acc], acc.type).results[0]
        value = widened(mapping.get(yielded, yielded), width)
        integer = isinstance(op.result_type.get_element_type(), IntegerType)
        if op.reduction.data == "sum":
            return (arith.AddiOp if integer else arith.AddfOp)(acc, value).result
        if integer:
            return arith.MaxSIOp(acc, value).result
        # max(acc, value) keeps the first maximum on ties and propagates NaN (torch.amax and
        # max_pool2d do); `value > acc ? value : acc` would drop a NaN that was not first
        return arith.MaximumfOp(acc, value).result


def read_index(read: ix.Read, exprs: Sequence[AffineExpr], space: Space) -> list[AffineExpr]:
    """Where `read` reads at the iteration point `exprs`, its divisions resolved where the
    space's ranges make them affine (so a vector that stays in one group loads contiguously)."""
    return [simplify_within(substitute(e, exprs), space.ranges) for e in read.map.results]


def _cloned(op: Operation, operands: Sequence[SSAValue], mapping: dict[SSAValue, SSAValue]) -> Operation:
    """`op` of a body built here on `operands` (its vector form where one is a vector)."""
    clone = vector_op(op, operands) if any(isinstance(v.type, VectorType) for v in operands) \
        else op.clone(value_mapper=mapping)
    if clone.parent is None:
        _insert(clone)
    return clone


def _insert(op: Operation) -> None:
    from xdsl.builder import _current_builder  # pyright: ignore[reportPrivateUsage]

    builder = _current_builder.builder
    assert builder is not None, "the nest is built inside an ImplicitBuilder"
    builder.insert(op)
