"""`mlc-lower-loops`: index-level compute ops to loops over buffers, as their schedules say.

Bufferisation is trivial at this level because every tensor is defined by exactly one compute
op: tensor arguments become memref arguments, each returned value gets a caller-provided output
buffer appended to the signature (destination-passing style), and every other tensor gets a
`memref.alloc` (turned into a slice of one arena by `mlc-plan-memory`), which keeps the compute
op's `mlc.phase` (forward, backward or update; see `mlc-autodiff`) for the planner's report.
Ops scheduled `inline` or `at(...)` (`mlc.schedule`) get no buffer: their readers compute them.

A result tied to an argument (`mlc.in_place = {result name: argument name}`, set by
mlc-optimizer on a training step) is written into that argument's buffer instead, and leaves
the signature, when that cannot change a value: it is computed in its own nest, elementwise,
reading the argument only at its own index, and no nest after it reads the argument. The
function then lists the arguments it updates in `mlc.updated_in_place`; a tie that is not safe
stays an ordinary result.

Without a schedule, a compute op `out[d] = R_{r in E} body(x_k[m_k(d, r)])` becomes

    for d in shape:                       # row-major
      acc = init(R)                       # 0 for sum, -inf for max
      for r in E: acc = combine(acc, body(load_or_fill(x_k, m_k(d, r))))
      out[d] = acc

where a sum of products combines with a fused multiply-add. A schedule splits, reorders,
unrolls, vectorises and parallelises those loops and places producers inside them
(`mlc.loops.nest` builds the nest). Reads whose maps provably stay in bounds (interval analysis
over the loop ranges) are plain loads; the others are guarded and yield the read's fill value
outside the tensor.

Option: `vector-bytes` (default: the host's widest vector registers, `mlc.loops.target`) fixes the
width of vectorised loops, so that tests print the same code on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects import arith, func, memref
from xdsl.dialects.builtin import ArrayAttr, DictionaryAttr, MemRefType, ModuleOp, StringAttr, TensorType
from xdsl.ir import Block, Operation, SSAValue
from xdsl.ir.affine import AffineMap
from xdsl.passes import ModulePass
from xdsl.utils.exceptions import PassFailedException

from mlc.loops.affine import iteration_ranges, read_in_bounds
from mlc.dialects import ix
from mlc.graph.signature import IN_PLACE
from mlc.loops.builders import element_const, emit_index_expr, fill_buffer, guarded_accumulate, guarded_load, function_scope, loop_nest
from mlc.loops.nest.driver import Nest
from mlc.loops.nest.reads import effective_reads, root_readers
from mlc.passes.autodiff import PHASE
from mlc.loops.schedule import ScheduleError, computed_by_readers, schedule_of
from mlc.loops.target import CpuTarget, host


def memref_of(t: TensorType) -> MemRefType:
    return MemRefType(t.get_element_type(), t.get_shape())


@dataclass(frozen=True)
class LowerLoopsPass(ModulePass):
    """Lower ix.compute ops to scf loops over memrefs (destination-passing outputs)."""

    name = "mlc-lower-loops"

    vector_bytes: int = 0
    """Bytes of a vector register for vectorised loops (0: the host's)."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        target = host()
        if self.vector_bytes:
            target = CpuTarget(vector_bytes=self.vector_bytes, cores=target.cores)
        for f in [o for o in op.ops if isinstance(o, func.FuncOp)]:
            if any(isinstance(t, TensorType) for t in (*f.function_type.inputs, *f.function_type.outputs)):
                try:
                    lower_function(f, target)
                except ScheduleError as e:
                    raise PassFailedException(f"mlc-lower-loops: in @{f.sym_name.data}: {e}") from None


def lower_function(f: func.FuncOp, target: CpuTarget) -> None:
    """Rewrite one tensor-level function into a loop-level one (in place)."""
    old = f.body.block
    ret = old.last_op
    assert isinstance(ret, func.ReturnOp)
    in_types = [memref_of(a.type) for a in old.args]  # pyright: ignore[reportArgumentType]
    ties = safe_ties(f)
    kept = [k for k in range(len(ret.arguments)) if k not in ties]
    out_types = [memref_of(ret.arguments[k].type) for k in kept]  # pyright: ignore[reportArgumentType]
    block = Block(arg_types=[*in_types, *out_types])
    n_in = len(in_types)
    for new, arg in zip(block.args, old.args):
        new.name_hint = arg.name_hint
    buffers: dict[SSAValue, SSAValue] = dict(zip(old.args, block.args[:n_in]))
    destination: dict[SSAValue, SSAValue] = {ret.arguments[k]: block.args[j] for k, j in ties.items()}
    outputs = dict(zip(kept, block.args[n_in:]))
    for k in kept:
        v = ret.arguments[k]
        if isinstance(v.owner, ix.IndexNotationOp) and v not in destination:
            destination[v] = outputs[k]

    with function_scope(block):
        for op in old.ops:
            if isinstance(op, ix.IndexNotationOp) and computed_by_readers(op):
                _check_readers(op, ret)
            elif isinstance(op, ix.IndexNotationOp):
                out = destination.get(op.result)
                if out is None:
                    alloc = memref.AllocOp.get(op.result_type.get_element_type(), 64, op.result_type.get_shape())
                    if PHASE in op.attributes:
                        alloc.attributes[PHASE] = op.attributes[PHASE]
                    out = alloc.memref
                before = block.last_op
                if isinstance(op, ix.ComputeOp):
                    Nest(op, buffers, out, target).build()
                else:
                    emit_scatter(op, [buffers[v] for v in op.inputs], out)
                emitted = list(_ops_after(block, before))
                marked = next((o for o in emitted if not isinstance(o, arith.ConstantOp)), emitted[0] if emitted else None)
                if marked is not None:
                    marked.attributes[NEST] = StringAttr(describe(op))
                buffers[op.result] = out
            elif isinstance(op, func.ReturnOp):
                for k in kept:
                    v, out = op.arguments[k], outputs[k]
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
    if IN_PLACE in f.attributes:
        del f.attributes[IN_PLACE]
        names = f.attributes["mlc.output_names"].data  # pyright: ignore[reportAttributeAccessIssue]
        f.attributes["mlc.output_names"] = ArrayAttr([names[k] for k in kept])
        arg_names = f.attributes["mlc.arg_names"].data  # pyright: ignore[reportAttributeAccessIssue]
        f.attributes[UPDATED_IN_PLACE] = ArrayAttr([arg_names[j] for _, j in sorted(ties.items())])


UPDATED_IN_PLACE = "mlc.updated_in_place"
"""On a loop-level function: the arguments it writes (tied results, see the module docstring)."""


def safe_ties(f: func.FuncOp) -> dict[int, int]:
    """{result index: argument index} of the ties in `mlc.in_place` that are safe to write."""
    attr = f.attributes.get(IN_PLACE)
    if not isinstance(attr, DictionaryAttr):
        return {}
    block = f.body.block
    ret = block.last_op
    assert isinstance(ret, func.ReturnOp)
    out_names = [a.data for a in f.attributes["mlc.output_names"].data]  # pyright: ignore[reportAttributeAccessIssue]
    arg_names = [a.data for a in f.attributes["mlc.arg_names"].data]  # pyright: ignore[reportAttributeAccessIssue]
    position = {op: k for k, op in enumerate(block.ops)}
    ties: dict[int, int] = {}
    for result, target in attr.data.items():
        if result not in out_names or not isinstance(target, StringAttr) or target.data not in arg_names:
            continue
        k, j = out_names.index(result), arg_names.index(target.data)
        value, arg = ret.arguments[k], block.args[j]
        if list(ret.arguments).count(value) == 1 and arg not in ret.arguments and j not in ties.values() \
                and _writable_into(value, arg, position):
            ties[k] = j
    return ties


def _writable_into(value: SSAValue, arg: SSAValue, position: dict[Operation, int]) -> bool:
    """Whether the op computing `value` may store it into `arg`'s buffer: a nest of its own,
    elementwise, the last nest to read `arg`, reading it only at its own index."""
    op = value.owner
    if not isinstance(op, ix.ComputeOp) or computed_by_readers(op) or op.reduction.data != "none" \
            or op.result_type != arg.type:
        return False
    readers = root_readers(arg, through_at=True)
    if any(position.get(r, len(position)) > position[op] for r in readers):
        return False
    inlined = _inlined_into(op)
    for use in arg.uses:
        reader = use.operation
        if reader is not op and reader not in inlined and isinstance(reader, ix.IndexNotationOp) \
                and computed_by_readers(reader) and op in root_readers(reader.result, through_at=True):
            return False  # computed inside the nest at one of its loops: a block, not the point
    identity = AffineMap.identity(op.rank)
    return all(m == identity for v, m in effective_reads(op) if v is arg)


def _inlined_into(op: ix.ComputeOp) -> set[Operation]:
    """The ops `op` computes inline at its points (through inlined ops)."""
    found: set[Operation] = set()
    pending = [op]
    while pending:
        for read in pending.pop().reads:
            producer = read.value.owner
            if isinstance(producer, ix.ComputeOp) and schedule_of(producer).inline and producer not in found:
                found.add(producer)
                pending.append(producer)
    return found




def _ops_after(block: Block, op: Operation | None):
    current = op.next_op if op is not None else block.first_op
    while current is not None:
        yield current
        current = current.next_op


NEST = "mlc.nest"
"""The first op (not a constant) of each op's nest names that op; the C backend prints it as a
comment, so the generated C says which op each loop nest computes."""


def describe(op: ix.IndexNotationOp) -> str:
    """`ix.compute sum(3x3x64) -> 8x16x16x64xf32, forward: <schedule>` for an op."""
    t = op.result_type
    shape = "x".join(map(str, (*t.get_shape(), t.get_element_type())))
    text = op.name
    if isinstance(op, ix.ComputeOp) and op.reduction.data != "none":
        text += f" {op.reduction.data}({'x'.join(map(str, op.reduction_extents))})"
    phase = op.attributes.get(PHASE)
    text += f" -> {shape}" + (f", {phase.data}" if isinstance(phase, StringAttr) else "")
    if isinstance(op, ix.ComputeOp) and str(schedule := schedule_of(op)):
        text += f": {schedule}"
    return text


def _check_readers(op: ix.IndexNotationOp, ret: func.ReturnOp) -> None:
    """An op its readers compute must not be returned or read by a scatter (which reads buffers)."""
    if op.result in ret.arguments:
        raise ScheduleError(f"{schedule_of(op)}: the value is returned, so it needs a buffer of its own")
    if any(isinstance(use.operation, ix.ScatterOp) for use in op.result.uses):
        raise ScheduleError(f"{schedule_of(op)}: an ix.scatter reads the value, so it needs a buffer of its own")


def emit_scatter(op: ix.ScatterOp, inputs: Sequence[SSAValue], out: SSAValue) -> None:
    """`out = 0; for v in box: out[write(v)] += body(v)`, dropping writes outside `out`.

    The loop runs in row-major order of the box, so the sums are deterministic.
    """
    elt = op.result_type.get_element_type()
    shape = op.result_type.get_shape()
    ranges = iteration_ranges(op.iteration_extents, ())
    fill_buffer(out, element_const(0.0, elt))
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
