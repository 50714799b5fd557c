"""`mlc-lower-loops`: index-level compute ops to loops over buffers.

Bufferisation is trivial at this level because every tensor is defined by exactly one compute
op: tensor arguments become memref arguments, each returned value gets a caller-provided output
buffer appended to the signature (destination-passing style), and every other tensor gets a
`memref.alloc` (turned into a slice of one arena by `mlc-plan-memory`), which keeps the compute
op's `mlc.phase` (forward, backward or update; see `mlc-autodiff`) for the planner's report.

A compute op `out[d] = R_{r in E} body(x_k[m_k(d, r)])` becomes

    for d in shape:                       # parallel dims, row-major
      acc = init(R)                       # 0 for sum, -inf for max
      for r in E: acc = combine(acc, body(load_or_fill(x_k, m_k(d, r))))
      out[d] = acc

Reads whose maps provably stay in bounds (interval analysis over the loop ranges) are plain
loads; the others are guarded and yield the read's fill value outside the tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import MemRefType, ModuleOp, TensorType
from xdsl.ir import Block, SSAValue
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.affine import iteration_ranges, read_in_bounds
from mlc.dialects import ix
from mlc.loops import emit_index_expr, fill_buffer, float_const, guarded_accumulate, guarded_load, loop_nest
from mlc.passes.autodiff import PHASE


def memref_of(t: TensorType) -> MemRefType:
    return MemRefType(t.get_element_type(), t.get_shape())


@dataclass(frozen=True)
class LowerLoopsPass(ModulePass):
    """Lower ix.compute ops to scf loops over memrefs (destination-passing outputs)."""

    name = "mlc-lower-loops"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if any(isinstance(t, TensorType) for t in (*f.function_type.inputs, *f.function_type.outputs)):
                lower_function(f)


def lower_function(f: func.FuncOp) -> None:
    """Rewrite one tensor-level function into a loop-level one (in place)."""
    old = f.body.block
    ret = old.last_op
    assert isinstance(ret, func.ReturnOp)
    in_types = [memref_of(a.type) for a in old.args]  # pyright: ignore[reportArgumentType]
    out_types = [memref_of(v.type) for v in ret.arguments]  # pyright: ignore[reportArgumentType]
    block = Block(arg_types=[*in_types, *out_types])
    n_in = len(in_types)
    for new, arg in zip(block.args, old.args):
        new.name_hint = arg.name_hint
    buffers: dict[SSAValue, SSAValue] = dict(zip(old.args, block.args[:n_in]))
    destination: dict[SSAValue, SSAValue] = {}
    for k, v in enumerate(ret.arguments):
        if isinstance(v.owner, ix.IndexNotationOp) and v not in destination:
            destination[v] = block.args[n_in + k]

    with ImplicitBuilder(block):
        for op in old.ops:
            if isinstance(op, ix.IndexNotationOp):
                out = destination.get(op.result)
                if out is None:
                    alloc = memref.AllocOp.get(op.result_type.get_element_type(), 64, op.result_type.get_shape())
                    if PHASE in op.attributes:
                        alloc.attributes[PHASE] = op.attributes[PHASE]
                    out = alloc.memref
                emit = emit_compute if isinstance(op, ix.ComputeOp) else emit_scatter
                emit(op, [buffers[v] for v in op.inputs], out)
                buffers[op.result] = out
            elif isinstance(op, func.ReturnOp):
                for k, v in enumerate(op.arguments):
                    out = block.args[n_in + k]
                    if buffers[v] is not out:
                        memref.CopyOp(buffers[v], out)
                func.ReturnOp()
            else:
                raise PassFailedException(
                    f"mlc-lower-loops: '{op.name}' in @{f.sym_name.data} is not index-level; run mlc-lower-graph first"
                )
    f.body.detach_block(old)
    f.body.add_block(block)
    f.function_type = func.FunctionType.from_lists([*in_types, *out_types], [])


def emit_compute(op: ix.ComputeOp, inputs: Sequence[SSAValue], out: SSAValue) -> None:
    """The loop nest of one compute op, writing into `out` (see the module docstring)."""
    shape, extents = op.result_type.get_shape(), op.reduction_extents
    elt = op.result_type.get_element_type()
    ranges = iteration_ranges(shape, extents)
    reads = op.reads
    unsafe = [
        [not ok for ok in read_in_bounds(r.map, ranges, buf.type.get_shape())]  # pyright: ignore[reportAttributeAccessIssue]
        for r, buf in zip(reads, inputs)
    ]

    def point(ivs: Sequence[SSAValue]) -> SSAValue:
        """The body's value at one point of the iteration space."""
        values = []
        for r, buf, bad in zip(reads, inputs, unsafe):
            idx = [emit_index_expr(e, ivs, ranges) for e in r.map.results]
            values.append(guarded_load(buf, idx, bad, r.fill))
        return op.inline_body(values, ivs)

    if reduce_outside(op):
        fill_buffer(out, float_const(0.0, elt))

        def accumulate(rivs: list[SSAValue], _: Sequence[SSAValue]) -> Sequence[SSAValue]:
            def update(ivs: list[SSAValue], _: Sequence[SSAValue]) -> Sequence[SSAValue]:
                value = point([*ivs, *rivs])
                memref.StoreOp.get(arith.AddfOp(memref.LoadOp.get(out, ivs).res, value).result, out, ivs)
                return []

            return loop_nest(shape, update)

        loop_nest(extents, accumulate)
        return

    def parallel(ivs: list[SSAValue], _: Sequence[SSAValue]) -> Sequence[SSAValue]:
        reduction = op.reduction.data
        if reduction == "none":
            value = point(ivs)
        else:
            init = float_const(0.0 if reduction == "sum" else float("-inf"), elt)
            combine = _COMBINE[reduction]
            (value,) = loop_nest(extents, lambda rivs, acc: [combine(acc[0], point([*ivs, *rivs]))], [init])
        memref.StoreOp.get(value, out, ivs)
        return []

    loop_nest(shape, parallel)


OUTSIDE_REDUCTION_BYTES = 1024 * 1024
"""Largest output accumulated in memory by `reduce_outside` (it should stay in the L2 cache)."""


def reduce_outside(op: ix.ComputeOp) -> bool:
    """Whether a sum runs its reduction loops outside the output loops, accumulating in memory.

    Reductions innermost (accumulating in a register) suit a reduction whose innermost variable
    walks some read's contiguous last dimension (a conv over input channels). When it walks none,
    the innermost loop would stride through memory; with the output loops inside, the innermost
    loop runs along the output's last dimension, which the store walks contiguously. A conv weight
    gradient `dw[a,b,c,f] = sum_{n,i,j} dy[n,i,j,f] * x[n,i+a,j+b,c]` is the case in point: `f` is
    contiguous in `dw` and `dy`, and `x` is invariant in it. Only for small outputs, which stay in
    cache while every reduction step sweeps them.
    """
    extents = op.reduction_extents
    if op.reduction.data != "sum" or op.rank == 0 or not extents:
        return False
    innermost = op.rank + len(extents) - 1
    walks_contiguously = any(m.results and innermost in m.results[-1].used_dims() for m in op.index_maps)
    elt = op.result_type.get_element_type()
    size = prod(op.result_type.get_shape()) * (getattr(elt, "bitwidth", 32) // 8)
    return not walks_contiguously and size <= OUTSIDE_REDUCTION_BYTES


def emit_scatter(op: ix.ScatterOp, inputs: Sequence[SSAValue], out: SSAValue) -> None:
    """`out = 0; for v in box: out[write(v)] += body(v)`, dropping writes outside `out`.

    The loop runs in row-major order of the box, so the sums are deterministic.
    """
    elt = op.result_type.get_element_type()
    shape = op.result_type.get_shape()
    ranges = iteration_ranges(op.iteration_extents, ())
    fill_buffer(out, float_const(0.0, elt))
    unsafe = [[not ok for ok in read_in_bounds(r.map, ranges, buf.type.get_shape())]  # pyright: ignore[reportAttributeAccessIssue]
              for r, buf in zip(op.reads, inputs)]
    write_unsafe = [not ok for ok in read_in_bounds(op.write_map, ranges, shape)]

    def point(ivs: list[SSAValue], _: Sequence[SSAValue]) -> Sequence[SSAValue]:
        values = []
        for r, buf, bad in zip(op.reads, inputs, unsafe):
            idx = [emit_index_expr(e, ivs, ranges) for e in r.map.results]
            values.append(guarded_load(buf, idx, bad, r.fill))
        value = op.inline_body(values, ivs)
        target = [emit_index_expr(e, ivs, ranges) for e in op.write_map.results]
        guarded_accumulate(out, target, write_unsafe, value)
        return []

    loop_nest(op.iteration_extents, point)


def _sum(acc: SSAValue, value: SSAValue) -> SSAValue:
    return arith.AddfOp(acc, value).result


def _max_first(acc: SSAValue, value: SSAValue) -> SSAValue:
    """max keeping the earliest maximum: replace only when strictly greater."""
    greater = arith.CmpfOp(value, acc, "ogt").result
    return arith.SelectOp(greater, value, acc).result


_COMBINE = {"sum": _sum, "max": _max_first}
