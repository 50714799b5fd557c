"""What a scatter's body tells mlc-scatter-to-gather before it solves the write map: which
iteration variables need no range check (`vanishing_dims`), and which of the body's guards shrink
the iteration box (`restrict_by_guards`). Both reason about IEEE arithmetic on finite data, as the
pass's docstring says."""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.builder import Builder, ImplicitBuilder, _current_builder  # pyright: ignore[reportPrivateUsage]
from xdsl.dialects import arith
from xdsl.dialects import math as mathd
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, TensorType, i1
from xdsl.ir import BlockArgument, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineMap
from xdsl.rewriter import InsertPoint, Rewriter

from mlc.dialects import ix
from mlc.loops.builders import index_const
from mlc.loops.index_solve.forms import Kind, Linear, Var
from mlc.loops.index_solve.maps import compose
from mlc.loops.index_solve.pieces import Quasi


# ---------------------------------------------------------------------------------------------
# Guards that restrict the box
# ---------------------------------------------------------------------------------------------
Guard = tuple[int, int, int, bool]
"""(iteration variable j, modulus M, value p, sense): `v_j mod M == p` (M = 0: `v_j == p`), or
its negation when the sense is False."""

Restriction = tuple[int, int]
"""(M, p): `v_j = M z + p` over the new variable z (M = 0: `v_j = p`, z of extent 1)."""


def restrict_by_guards(op: ix.ScatterOp) -> ix.ScatterOp:
    """`op` with its box restricted to the points its body's guards let through (`op` itself
    when there are none).

    A guard is a condition `v_j mod M == p` or `v_j == p` (or its negation) without which the
    body is 0: the condition of a select whose other side is 0, or one of a factor of a product
    whose other factor is finite. The adjoint of the interleave of a strided gather is such a
    body, `dy[u] * [u mod M == p]` written into `piece_p[u floordiv M]`: restricted to
    `u = M z + p`, the solver finds `z = q` and no reduction, the copy `dy[M q + p]`, instead of
    a sum over the M pre-images of which all but one are predicated off. Negations count: a
    body that is 0 for every residue but one is guarded by that one. In the new body the guards
    the restriction decides become constants and the selects on them fold away (a factor 1.0
    too), so a guarded copy is a plain copy again."""
    guards = _guards(op.yield_op.value, {a for a, r in zip(op.body.block.args, op.reads) if math.isfinite(r.fill)})
    extents = op.iteration_extents
    restrictions = _restrictions(guards, extents)
    if not restrictions:
        return op
    dims, values = [], []
    for j, extent in enumerate(extents):
        m, p = restrictions.get(j, (1, 0))
        count = 1 if m == 0 else -(-(extent - p) // m)
        z = Var(f"z{j}", Kind.ITER, 0, count - 1)
        dims.append(z)
        values.append(Quasi(Linear.constant(p) if m == 0 else Linear.of(z, m) + p))

    def restricted(amap: AffineMap) -> AffineMap:
        return AffineMap(len(dims), 0, tuple(compose(e, values, dims) for e in amap.results))

    reads = [ix.Read(r.value, restricted(r.map), r.fill) for r in op.reads]
    with ImplicitBuilder(Builder(InsertPoint.before(op))):
        new = ix.ScatterOp.build(op.result_type, [z.extent for z in dims], restricted(op.write_map), reads,
                                 lambda args: _folded_body(op, args, restrictions))
    new.attributes.update(op.attributes)
    new.result.name_hint = op.result.name_hint
    op.result.replace_all_uses_with(new.result)
    Rewriter.erase_op(op)
    return new


def _restrictions(guards: Sequence[Guard], extents: Sequence[int]) -> dict[int, Restriction]:
    """One restriction per variable: an equality, or the one residue its negations leave."""
    chosen: dict[int, Restriction] = {}
    excluded: dict[tuple[int, int], set[int]] = {}
    for j, m, p, sense in guards:
        in_range = 0 <= p < (extents[j] if m == 0 else min(m, extents[j]))
        if sense and in_range and j not in chosen:
            chosen[j] = (m, p)
        elif not sense and m > 1:
            excluded.setdefault((j, m), set()).add(p)
    for (j, m), residues in excluded.items():
        left = set(range(m)) - residues
        if j not in chosen and len(left) == 1 and (p := left.pop()) < extents[j]:
            chosen[j] = (m, p)
    return chosen


def _decided(guard: Guard, restriction: Restriction) -> bool | None:
    """The guard's value on the restricted box, when the restriction fixes it."""
    _, m, p, sense = guard
    rm, rp = restriction
    if rm == 0:
        value = rp == p if m == 0 else rp % m == p
    elif m > 0 and rm % m == 0:
        value = rp % m == p
    else:
        return None
    return value == sense


def _folded_body(op: ix.ScatterOp, args: Sequence[SSAValue], restrictions: dict[int, Restriction]) -> SSAValue:
    """`op`'s body over the restricted box: `ix.index j` is `M z + p`, decided guards constants,
    selects on them and factors 1.0 folded."""
    mapping: dict[SSAValue, SSAValue] = dict(zip(op.body.block.args, args, strict=True))
    known: dict[SSAValue, bool] = {}
    builder = _current_builder.builder
    assert builder is not None
    for body_op in op.body.block.ops:
        if isinstance(body_op, ix.YieldOp):
            return mapping.get(body_op.value, body_op.value)
        if isinstance(body_op, ix.IndexOp) and (j := body_op.dim.value.data) in restrictions:
            m, p = restrictions[j]
            if m == 0:
                mapping[body_op.result] = index_const(p)
            else:
                scaled = arith.MuliOp(ix.IndexOp(j).result, index_const(m)).result
                mapping[body_op.result] = arith.AddiOp(scaled, index_const(p)).result if p else scaled
            continue
        guard = _guard(body_op.results[0]) if isinstance(body_op, arith.CmpiOp) else None
        value = None if guard is None or guard[0] not in restrictions else _decided(guard, restrictions[guard[0]])
        if value is not None:
            constant = arith.ConstantOp(IntegerAttr(int(value), i1)).result
            known[constant] = value
            mapping[body_op.result] = constant
            continue
        if isinstance(body_op, arith.SelectOp) and (cond := mapping.get(body_op.cond, body_op.cond)) in known:
            chosen = body_op.lhs if known[cond] else body_op.rhs
            mapping[body_op.result] = mapping.get(chosen, chosen)
            continue
        if isinstance(body_op, arith.MulfOp):
            lhs, rhs = (mapping.get(v, v) for v in (body_op.lhs, body_op.rhs))
            if _is_constant(rhs, 1.0) or _is_constant(lhs, 1.0):
                mapping[body_op.result] = lhs if _is_constant(rhs, 1.0) else rhs
                continue
        clone = body_op.clone(value_mapper=mapping)
        if clone.parent is None:  # the implicit builder may already have inserted it
            builder.insert(clone)
        mapping.update(zip(body_op.results, clone.results))
    raise AssertionError("index-notation body without ix.yield")


def _guards(value: SSAValue, finite_args: set[BlockArgument]) -> list[Guard]:
    """Guards without which `value` is ±0 (see `restrict_by_guards`)."""
    if isinstance(value, BlockArgument):
        return []
    owner = value.owner
    if isinstance(owner, arith.SelectOp):
        guard = _guard(owner.cond)
        if _is_constant(owner.rhs, 0.0) and not _is_constant(owner.lhs, 0.0):
            return ([guard] if guard else []) + _guards(owner.lhs, finite_args)
        if _is_constant(owner.lhs, 0.0) and not _is_constant(owner.rhs, 0.0):
            negated = [(guard[0], guard[1], guard[2], not guard[3])] if guard else []
            return negated + _guards(owner.rhs, finite_args)
        return []
    if isinstance(owner, arith.MulfOp):
        lhs = _guards(owner.lhs, finite_args) if _is_finite(owner.rhs, finite_args) else []
        return lhs + (_guards(owner.rhs, finite_args) if _is_finite(owner.lhs, finite_args) else [])
    if isinstance(owner, arith.NegfOp):
        return _guards(owner.operand, finite_args)
    return []


def _guard(cond: SSAValue) -> Guard | None:
    """`cond` as a guard: `eq`/`ne` between an index constant and `ix.index j` or `ix.index j`
    remsi a positive constant (which is `v_j mod M`: iteration variables are non-negative)."""
    owner = cond.owner
    if not isinstance(owner, arith.CmpiOp) or owner.predicate.value.data not in (0, 1):
        return None
    for side, other in ((owner.lhs, owner.rhs), (owner.rhs, owner.lhs)):
        p, var = _index_constant(other), _index_of(side)
        if p is not None and var is not None:
            return var[0], var[1], p, owner.predicate.value.data == 0
    return None


def _index_of(value: SSAValue) -> tuple[int, int] | None:
    """(j, 0) for `ix.index j`, (j, M) for `ix.index j remsi M` with a constant M > 0."""
    owner = value.owner
    if isinstance(owner, ix.IndexOp):
        return owner.dim.value.data, 0
    if isinstance(owner, arith.RemSIOp) and isinstance(owner.lhs.owner, ix.IndexOp):
        m = _index_constant(owner.rhs)
        if m is not None and m > 0:
            return owner.lhs.owner.dim.value.data, m
    return None


def _index_constant(value: SSAValue) -> int | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


def _is_constant(value: SSAValue, number: float) -> bool:
    owner = value.owner
    return isinstance(owner, arith.ConstantOp) and isinstance(owner.value, FloatAttr) and owner.value.value.data == number


# ---------------------------------------------------------------------------------------------
# Which iteration variables need no range check
# ---------------------------------------------------------------------------------------------
def vanishing_dims(op: ix.IndexNotationOp) -> set[int]:
    """Iteration variables `j` such that a point with `v_j` outside `[0, E_j)` contributes exactly
    0: some read indexes a dimension of size `<= E_j` by `v_j` itself, fills with 0, and the
    body vanishes whenever that read is 0 (see the module docstring)."""
    block = op.body.block
    reads = op.reads
    finite_args = {arg for arg, r in zip(block.args, reads) if math.isfinite(r.fill)}
    extents = op.iteration_extents
    dims: set[int] = set()
    for arg, read in zip(block.args, reads):
        if read.fill != 0.0 or not _vanishes(op.yield_op.value, arg, finite_args):
            continue
        tensor = read.value.type
        assert isinstance(tensor, TensorType)
        for expr, size in zip(read.map.results, tensor.get_shape()):
            if isinstance(expr, AffineDimExpr) and size <= extents[expr.position]:
                dims.add(expr.position)
    return dims


_FINITE_OPS = (
    arith.AddfOp, arith.SubfOp, arith.MulfOp, arith.NegfOp, arith.MaximumfOp, arith.MinimumfOp,
    mathd.TanhOp, mathd.AbsFOp, mathd.ErfOp,
)
"""Ops whose result is finite when their float operands are (overflow aside)."""


def _is_finite(value: SSAValue, finite_args: set[BlockArgument]) -> bool:
    if isinstance(value, BlockArgument):
        return value in finite_args
    owner = value.owner
    if isinstance(owner, arith.ConstantOp):
        v = owner.value
        return not isinstance(v, FloatAttr) or math.isfinite(v.value.data)
    if isinstance(owner, arith.SIToFPOp):  # an integer converted: finite
        return True
    if isinstance(owner, arith.SelectOp):
        return _is_finite(owner.lhs, finite_args) and _is_finite(owner.rhs, finite_args)
    if isinstance(owner, _FINITE_OPS):
        return all(_is_finite(o, finite_args) for o in owner.operands)
    return False


def _vanishes(value: SSAValue, arg: BlockArgument, finite_args: set[BlockArgument]) -> bool:
    """Whether `value` is ±0 at every point where the read `arg` is 0."""
    if value is arg:
        return True
    if isinstance(value, BlockArgument):
        return False
    owner = value.owner
    if isinstance(owner, arith.ConstantOp):
        return isinstance(owner.value, FloatAttr) and owner.value.value.data == 0.0
    if isinstance(owner, arith.MulfOp):
        a, b = owner.lhs, owner.rhs
        return (_vanishes(a, arg, finite_args) and _is_finite(b, finite_args)) or (
            _vanishes(b, arg, finite_args) and _is_finite(a, finite_args)
        )
    if isinstance(owner, arith.DivfOp):
        divisor = owner.rhs.owner
        return (
            _vanishes(owner.lhs, arg, finite_args)
            and isinstance(divisor, arith.ConstantOp)
            and isinstance(divisor.value, FloatAttr)
            and math.isfinite(divisor.value.value.data)
            and divisor.value.value.data != 0.0
        )
    if isinstance(owner, arith.NegfOp):
        return _vanishes(owner.operand, arg, finite_args)
    if isinstance(owner, arith.AddfOp | arith.SubfOp):
        return _vanishes(owner.lhs, arg, finite_args) and _vanishes(owner.rhs, arg, finite_args)
    if isinstance(owner, arith.SelectOp):
        return _vanishes(owner.lhs, arg, finite_args) and _vanishes(owner.rhs, arg, finite_args)
    return False

