"""`mlc-scatter-to-gather`: every `ix.scatter` with a quasi-affine write map becomes `ix.compute`s.

A scatter `out = 0; for v in box: if W(v) in bounds: out[W(v)] += body(v)` is rewritten over the
result's own index space, `out[u] = Σ_{v : W(v) = u} body(v)`, by solving `W(v) = u` for `v`
(`mlc.index_solve`: linear equations with auxiliaries for floordiv/mod, largest-extent pivots,
phases for strides). Each solution piece becomes one compute op

    piece[w] = Σ_{f ∈ F} select(C(w, f), body(V(w, f)), 0)        (no `sum` when F is empty)

whose reads are the scatter's reads composed with `v = V(w, f)`, whose `ix.index j` is the index
arithmetic of `V_j`, and whose predicate `C` is the conjunction of the solver's conditions
(nested selects: `u0 == u1` for a diagonal, `lo <= v_j <= hi` for a solved variable that could
leave its range, `n mod s == 0` for a stride kept as a predicate). Every result element is then
written by one iteration of the parallel loops, so the loops need no atomics.

Strides: with moduli `M_r > 1` there is one piece per phase `p` (over the lattice
`u_r = M_r q_r + p_r`, iterating exactly the valid taps) and a final compute op interleaves them:

    out[u] = piece_{(u_r mod M_r)_r}[(u_r floordiv M_r)_r]      (a select tree on u_r mod M_r)

with a phase no point of the scatter writes to reading as 0. A result index that the write map
pins to one value `k` under a reduction (a weight gradient's constant tap) is a phase of modulus
`U_r` whose only piece has extent 1 there: the interleave places it at `u_r = k`.

The rewrite of one scatter (`scatter_to_gather`) may also run inside a lowering, which builds a
scatter's natural form and uses the gathers that replace it.

Guards (`scatter_bodies.restrict_by_guards`). Before solving, the box shrinks to the points a
body's guards let through: a body that is 0 unless `v_j mod M == p` (or `v_j == p`) iterates
`v_j = M z + p` only, and the guards it decides fold away. The adjoint of an interleave,
`dy[u] * [u mod M == p]` into `piece_p[u floordiv M]`, becomes the copy `dy[M q + p]`.

Which range checks are unnecessary (`scatter_bodies.vanishing_dims`). If `v_j` leaves `[0, E_j)` then a read `a[..., v_j, ...]`
(an index that is exactly `v_j`) along a dimension of size `<= E_j` is out of bounds and returns
its fill. When that fill is 0 and the body vanishes whenever that read is 0 (the body is linear
in it: an adjoint's `dy * ∂body/∂a_k`), such points contribute exactly 0 and `v_j` needs no
check. "Vanishes" is decided structurally and soundly for IEEE arithmetic, assuming the tensors'
data are finite: `a` itself, the constant 0, `x * y` with one side vanishing and the other finite
(no `0 * inf`), `x / c` for a finite non-zero constant `c`, `-x`, `x ± y` and `select(c, x, y)` with
both sides vanishing. Finite: reads whose fill is finite, finite constants, and `+ - * neg max min
select tanh abs sitofp` of finite values (`/`, `exp`, `log`, `sqrt` can overflow or divide by 0 at
points the forward never evaluated, so they keep the check).

The scatter's discardable `mlc.*` attributes (such as `mlc.phase`) are copied onto every compute
op that replaces it. Reads the body does not use are dropped from the gathers (an adjoint scatter carries all the
forward op's reads). A write map that is not quasi-affine stays a scatter (its loops are
deterministic) with a remark on stderr, as does a strided solve that needs a divisibility guard
(`phase_limit` is the most phase pieces per scatter; 1 forces guards).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from xdsl.builder import Builder, ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import FloatAttr, ModuleOp, TensorType
from xdsl.ir import Attribute, Operation, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from mlc.dialects import ix
from mlc.loops.affine import from_linear, linear_form, simplify, substitute
from mlc.loops.builders import index_const
from mlc.loops.index_solve.forms import Linear, Var
from mlc.loops.index_solve.linearise import NotInvertible
from mlc.loops.index_solve.maps import compose
from mlc.loops.index_solve.phases import solve
from mlc.loops.index_solve.pieces import Condition, Divisible, Equal, InRange, Piece, Quasi, Solution
from mlc.passes.scatter_bodies import restrict_by_guards, vanishing_dims

REMARK = "remark: mlc-scatter-to-gather"


@dataclass(frozen=True)
class ScatterToGatherPass(ModulePass):
    """Rewrite each affine `ix.scatter` as gathers (`ix.compute`) over its result's index space."""

    name = "mlc-scatter-to-gather"

    phase_limit: int = 64
    """The most phase pieces for one scatter; beyond it strides become divisibility predicates."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for scatter in [o for o in op.walk() if isinstance(o, ix.ScatterOp)]:
            scatter_to_gather(scatter, self.phase_limit)


def scatter_to_gather(op: ix.ScatterOp, phase_limit: int = 64) -> SSAValue | None:
    """Replace `op` by gathers and return the value that replaces it; None (and a remark) when its
    write map cannot be solved (the scatter then stays, its box restricted by its guards)."""
    op = restrict_by_guards(op)
    shape = op.result_type.get_shape()
    try:
        solution = solve(op.write_map, op.iteration_extents, shape, vanishing_dims(op), phase_limit)
    except NotInvertible as err:
        remark(f"kept a scatter for {describe(op)}: {err}")
        return None
    if solution.divisibility_guard:
        remark(f"{describe(op)}: strided gather uses a divisibility guard")
    with ImplicitBuilder(Builder(InsertPoint.before(op))):  # also inside a lowering's own builder
        new_ops = build_gathers(op, solution)
    carried = {k: v for k, v in op.attributes.items() if k.startswith("mlc.")}
    for new_op in new_ops:
        new_op.attributes.update(carried)
    final = new_ops[-1].results[0]
    final.name_hint = op.result.name_hint
    op.result.replace_all_uses_with(final)
    Rewriter.erase_op(op)
    return final


def remark(message: str) -> None:
    print(f"{REMARK}: {message}", file=sys.stderr)


def describe(op: ix.ScatterOp) -> str:
    """`%name`, or (unnamed, as mlc-autodiff builds them) which scatter of which function."""
    if op.result.name_hint:
        return f"%{op.result.name_hint}"
    where = op.parent_op()
    while where is not None and not isinstance(where, func.FuncOp):
        where = where.parent_op()
    if where is None:
        return f"an ix.scatter into {op.result_type}"
    number = [o for o in where.walk() if isinstance(o, ix.ScatterOp)].index(op)
    return f"ix.scatter #{number} of @{where.sym_name.data} (into {op.result_type})"


# ---------------------------------------------------------------------------------------------
# Building the compute ops
# ---------------------------------------------------------------------------------------------
def build_gathers(op: ix.ScatterOp, solution: Solution) -> list[Operation]:
    """The compute ops replacing `op`: the pieces, then (with phases) the interleave."""
    result_type = op.result_type
    elt = result_type.get_element_type()
    if all(m == 1 for m in solution.moduli):
        if not solution.pieces:
            return [zero_op(result_type)]
        (piece,) = solution.pieces
        return [piece_op(op, piece, result_type)]
    merged = merged_phases(op, solution)
    if merged is not None:
        return [merged]
    pieces: dict[tuple[int, ...], ix.ComputeOp] = {}
    for piece in solution.pieces:
        compute = piece_op(op, piece, TensorType(elt, piece.shape))
        if op.result.name_hint:
            phase = (p for p, m in zip(piece.phase, solution.moduli) if m > 1)
            compute.result.name_hint = f"{op.result.name_hint}_p{'x'.join(map(str, phase))}"
        pieces[piece.phase] = compute
    return [*pieces.values(), interleave_op(result_type, solution.moduli, {p: c.result for p, c in pieces.items()})]


def merged_phases(op: ix.ScatterOp, solution: Solution) -> ix.ComputeOp | None:
    """The phases of one result dim `r` as a single gather, when they differ only by the phase:
    every phase `p < M` has a piece, all with the same box and no condition, and each read index
    is `A(q, f) + p * B` for a constant B. Then `out[u] = Σ_f body(reads at A(u_r floordiv M, f)
    + (u_r mod M) * B)`: the same points, without the interleave (a grouped conv's input
    gradient, whose channel `u = Cg * g + c` is a phase `c` of modulus Cg per group `g`)."""
    split = [r for r, m in enumerate(solution.moduli) if m > 1]
    if len(split) != 1 or any(isinstance(o, ix.IndexOp) for o in op.body.block.ops):
        return None
    (r,), pieces = split, solution.pieces
    m = solution.moduli[r]
    shape = op.result_type.get_shape()
    if shape[r] % m or len(pieces) != m or any(p.conditions or p.shape != pieces[0].shape
                                                 or p.extents != pieces[0].extents for p in pieces):
        return None
    by_phase = sorted(pieces, key=lambda p: p.phase[r])
    if [p.phase[r] for p in by_phase] != list(range(m)):
        return None
    num_dims = len(pieces[0].dims)
    d = AffineExpr.dimension(r)
    quotient = [d // m if k == r else AffineExpr.dimension(k) for k in range(num_dims)]
    reads = []
    for j, read in enumerate(op.reads):
        results = []
        for e in read.map.results:
            forms = [linear_form(compose(e, p.iteration, p.dims)) for p in by_phase]
            if any(f is None for f in forms):
                return None
            first = from_linear(forms[0])  # pyright: ignore[reportArgumentType]
            step = from_linear(forms[1]) - first if m > 1 else AffineExpr.constant(0)
            step = simplify(step)
            if not isinstance(step, AffineConstantExpr) or any(
                    simplify(from_linear(f) - first - step * p) != AffineExpr.constant(0) for p, f in enumerate(forms)):  # pyright: ignore[reportArgumentType]
                return None
            moved = substitute(first, quotient)
            results.append(simplify(moved + (d % m) * step.value) if step.value else moved)
        reads.append(ix.Read(read.value, AffineMap(num_dims, 0, tuple(results)), read.fill))
    extents = pieces[0].extents
    return ix.ComputeOp.build(op.result_type, reads, lambda args: named_body(op, args), "sum" if extents else "none", extents)


def named_body(op: ix.ScatterOp, args: Sequence[SSAValue], ivs: Sequence[SSAValue | None] | None = None) -> SSAValue:
    """The scatter's body on a gather's reads, whose arguments keep the scatter's names."""
    for new_arg, old_arg in zip(args, op.body.block.args):
        new_arg.name_hint = old_arg.name_hint
    return op.inline_body(args, ivs)


def piece_op(op: ix.ScatterOp, piece: Piece, result_type: TensorType) -> ix.ComputeOp:
    """One gather: the scatter's reads and body at `v = V(w, f)`, under the piece's conditions."""
    dims = piece.dims
    reads = [
        ix.Read(r.value, AffineMap(len(dims), 0, tuple(compose(e, piece.iteration, dims) for e in r.map.results)), r.fill)
        for r in op.reads
    ]
    elt = result_type.get_element_type()
    used_dims = {o.dim.value.data for o in op.body.block.ops if isinstance(o, ix.IndexOp)}

    def body(args: Sequence[SSAValue]) -> SSAValue:
        index = IndexEmitter(dims)
        ivs = [index.quasi(q) if j in used_dims else None for j, q in enumerate(piece.iteration)]
        value = named_body(op, args, ivs)
        return guarded(value, [check for c in piece.conditions for check in index.condition(c)], elt)

    extents = piece.extents
    return ix.ComputeOp.build(result_type, reads, body, "sum" if extents else "none", extents)


def guarded(value: SSAValue, conditions: Sequence[SSAValue], elt: Attribute) -> SSAValue:
    """`select(c1, select(c2, value, 0), 0)`, one select per condition."""
    if not conditions:
        return value
    zero = arith.ConstantOp(FloatAttr(0.0, elt)).result  # pyright: ignore[reportArgumentType]
    for cond in reversed(conditions):
        value = arith.SelectOp(cond, value, zero).result
    return value


def zero_op(result_type: TensorType) -> ix.ComputeOp:
    """A tensor of zeros (a scatter none of whose points writes inside its result)."""
    return ix.ComputeOp.build(result_type, [], lambda _: arith.ConstantOp(FloatAttr(0.0, result_type.get_element_type())).result)  # pyright: ignore[reportArgumentType]


def interleave_op(result_type: TensorType, moduli: Sequence[int], pieces: dict[tuple[int, ...], SSAValue]) -> ix.ComputeOp:
    """`out[u] = piece_{u mod M}[u floordiv M]`, a phase with no piece reading as 0."""
    rank = len(moduli)
    d = [AffineExpr.dimension(r) for r in range(rank)]
    index_map = AffineMap(rank, 0, tuple(d[r] // m if m > 1 else d[r] for r, m in enumerate(moduli)))
    phases = list(pieces)
    reads = [ix.Read(pieces[p], index_map) for p in phases]
    elt = result_type.get_element_type()

    def body(args: Sequence[SSAValue]) -> SSAValue:
        value_of = dict(zip(phases, args))
        zero = arith.ConstantOp(FloatAttr(0.0, elt)).result  # pyright: ignore[reportArgumentType]
        residues = {r: arith.RemSIOp(ix.IndexOp(r).result, index_const(m)).result for r, m in enumerate(moduli) if m > 1}

        def pick(r: int, phase: tuple[int, ...]) -> SSAValue:
            if r == rank:
                return value_of.get(phase, zero)
            if moduli[r] == 1:
                return pick(r + 1, (*phase, 0))
            options = [pick(r + 1, (*phase, p)) for p in range(moduli[r])]
            value = options[-1]
            for p in reversed(range(moduli[r] - 1)):
                if options[p] is value:
                    continue
                same = arith.CmpiOp(residues[r], index_const(p), "eq").result
                value = arith.SelectOp(same, options[p], value).result
            return value

        return pick(0, ())

    return ix.ComputeOp.build(result_type, reads, body)


class IndexEmitter:
    """Index arithmetic of a gather's iteration variables (`ix.index` + arith), built at the
    implicit insertion point; each `ix.index` and constant is built once."""

    def __init__(self, dims: Sequence[Var]) -> None:
        self.position = {v: i for i, v in enumerate(dims)}
        self._cache: dict[object, SSAValue] = {}

    def const(self, value: int) -> SSAValue:
        key = ("const", value)
        if key not in self._cache:
            self._cache[key] = index_const(value)
        return self._cache[key]

    def var(self, v: Var) -> SSAValue:
        if v not in self._cache:
            self._cache[v] = ix.IndexOp(self.position[v]).result
        return self._cache[v]

    def linear(self, form: Linear) -> SSAValue:
        """Positive terms added, negative ones subtracted: `d0 - d1 * 2 + 1`."""
        order = sorted(form.coeffs.items(), key=lambda t: (t[1] < 0, self.position[t[0]]))
        acc: SSAValue | None = None
        for v, c in order:
            term = self.var(v) if abs(c) == 1 else arith.MuliOp(self.var(v), self.const(abs(c))).result
            if acc is None:
                acc = term if c > 0 else arith.SubiOp(self.const(0), term).result
            else:
                acc = (arith.AddiOp if c > 0 else arith.SubiOp)(acc, term).result
        if acc is None:
            return self.const(form.const)
        if form.const:
            op = arith.AddiOp if form.const > 0 else arith.SubiOp
            acc = op(acc, self.const(abs(form.const))).result
        return acc

    def quasi(self, value: Quasi) -> SSAValue:
        numerator = self.linear(value.numerator)
        if value.divisor == 1:
            return numerator
        return arith.FloorDivSIOp(numerator, self.const(value.divisor)).result

    def condition(self, cond: Condition) -> list[SSAValue]:
        """The i1 values whose conjunction is `cond` (an in-range check is up to two compares)."""
        match cond:
            case Equal(form):
                lhs = Linear({v: c for v, c in form.coeffs.items() if c > 0}, max(form.const, 0))
                rhs = Linear({v: -c for v, c in form.coeffs.items() if c < 0}, max(-form.const, 0))
                return [arith.CmpiOp(self.linear(lhs), self.linear(rhs), "eq").result]
            case Divisible(form, modulus):
                rem = arith.RemSIOp(self.linear(form), self.const(modulus)).result
                return [arith.CmpiOp(rem, self.const(0), "eq").result]
            case InRange(value, lo, hi):
                e = self.quasi(value)
                checks = []
                if lo is not None:
                    checks.append(arith.CmpiOp(e, self.const(lo), "sge").result)
                if hi is not None:
                    checks.append(arith.CmpiOp(e, self.const(hi + 1), "slt").result)
                return checks
        raise AssertionError(cond)
