"""`mlc-bitpack`: sums of products of two ±1 tensors as XOR and popcount on bit-packed words.

XNOR-Net's binary convolution (and any index-notation sum of the same shape, binary dense
included) reduces a product of two tensors whose every element is `sign(v) ∈ {−1, +1}`:

    P[d] = Σ_{r, c} s[ms(d, r, c)] * t[mt(d, r, c)]

where the channel variable `c` (extent C) indexes one axis of each read and nothing else. Pack
both along that axis into words of w bits (32 for C ≤ 32, else 64), bit b of word k standing for
channel wk + b, set when the element is −1 (Larq Compute Engine's convention; a channel beyond C
is a 0 bit in both):

    ŝ[..., k, ...] = Σ_{b < w} (s[..., wk + b, ...] < 0 ? 1 << b : 0)

Two ±1 values multiply to −1 exactly where their bits differ, so over the T = C · Π extents(r)
terms of P (each +1 or −1)

    S[d] = Σ_{r, k} popcount(ŝ[ms(d, r, k)] XOR t̂[mt(d, r, k)])      the terms that are −1
    P[d] = T − 2 S[d]

Padding. Where a read leaves its tensor, the float sum reads its fill there. A fill of +1 is
the all-zero word, so the packed read takes fill 0 and the formula holds unchanged. A fill of
−1 is the all-zero word of the other convention (a bit set for +1), which both operands then
use: XOR does not change when both sides flip. A fill of 0 (true zero padding, a ternary value
no bit can hold) makes those terms vanish: the packed read is taken twice, with fills 0 and −1
(all ones), which agree exactly where the read is inside its tensor, and each word counts only
there, as its channels minus twice its disagreements:

    P[d] = Σ_{r, k} (ŝ₀ == ŝ₁ ? n_k − 2 popcount(ŝ₀ XOR t̂) : 0)      n_k = min(w, C − wk)

Each term is an integer and every partial sum of P lies within ±T, so while T ≤ 2^24 (f32;
2^53 for f64) the float sum is exact in any order and equals the integer one: the result is
bitwise identical to the float lowering. A sum beyond that, or one whose channel variable is not
a bare index of both reads (grouped convolutions read `g*Cg + c`), stays in floats, and with
`remarks=true` the pass says why on stderr.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from math import prod

from xdsl.builder import Builder, ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, math
from xdsl.dialects.builtin import IntegerType, ModuleOp
from xdsl.ir import SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from mlc.dialects import ix
from mlc.loops.affine import iteration_ranges, read_in_bounds, substitute
from mlc.loops.compute_builders import Access, compute, shape_of
from mlc.loops.scalars import cmpf, cmpi, const, float_constant, index, minsi, muli, select, subi
from mlc.passes.lower_loops import describe


def word_bits(channels: int) -> int:
    """The packed word: 32 bits for at most 32 channels (a 16-channel layer's words are then half
    empty, not three quarters, and a vector holds twice as many), else 64."""
    return 32 if channels <= 32 else 64


EXACT_TERMS = {32: 1 << 24, 64: 1 << 53}
"""The most ±1 terms a float sum of each width adds exactly (the integers its mantissa holds)."""


def is_plus_minus_one(value: SSAValue) -> bool:
    """Whether every element of `value` is +1 or −1: a compute op yielding `c ? 1 : -1` (`sign`)."""
    producer = value.owner
    if not isinstance(producer, ix.ComputeOp) or producer.reduction.data != "none":
        return False
    chosen = producer.yield_op.value.owner
    return isinstance(chosen, arith.SelectOp) and float_constant(chosen.lhs) == 1.0 and float_constant(chosen.rhs) == -1.0


@dataclass(frozen=True)
class BinarySum:
    """A ±1 × ±1 sum the pass packs: its channel variable and the axis it indexes in each read."""

    op: ix.ComputeOp
    channel: int  # the iteration variable
    axes: tuple[int, int]  # the axis of each read it indexes

    @property
    def channels(self) -> int:
        return self.op.iteration_extents[self.channel]

    @property
    def bits(self) -> int:
        return word_bits(self.channels)

    @property
    def word_type(self) -> IntegerType:
        return IntegerType(self.bits)

    @property
    def words(self) -> int:
        return -(-self.channels // self.bits)

    @property
    def terms(self) -> int:
        return prod(self.op.reduction_extents)


def binary_sum(op: ix.ComputeOp) -> BinarySum | str | None:
    """The packable form of `op`, why it cannot be packed (a ±1 × ±1 sum that stays in floats),
    or None when it is not a ±1 × ±1 sum at all."""
    body = list(op.body.block.ops)
    if op.reduction.data != "sum" or len(op.inputs) != 2 or len(body) != 2 or not isinstance(body[0], arith.MulfOp):
        return None
    if set(body[0].operands) != set(op.body.block.args) or not all(is_plus_minus_one(v) for v in op.inputs):
        return None
    channel = _channel_variable(op)
    if channel is None:
        return "no reduction variable indexes one whole axis of each operand, alone (a grouped convolution?)"
    found = BinarySum(op, channel[0], channel[1])
    width = op.result_type.get_element_type().bitwidth  # pyright: ignore[reportAttributeAccessIssue]
    if found.terms > min(EXACT_TERMS[width], (1 << (found.bits - 1)) - 1):  # and what T - 2S holds in a word
        return f"{found.terms} terms: beyond what an f{width} sum adds exactly or an i{found.bits} word holds"
    fills = [read.fill for read, inside in zip(op.reads, _always_inside(op)) if not inside]
    if any(f not in (1.0, -1.0, 0.0) for f in fills) or (len(set(fills)) > 1) or (0.0 in fills and len(fills) > 1):
        return f"out-of-bounds fills {fills}: at most one read may pad, with +1, -1 or 0"
    return found


def _channel_variable(op: ix.ComputeOp) -> tuple[int, tuple[int, int]] | None:
    """The widest reduction variable that is, alone, one result of each read map and in no other,
    ranging over that whole axis of each operand (the packed words hold the axis, all of it)."""
    best = None
    extents = op.iteration_extents
    for var in range(op.rank, len(extents)):
        axes = [_bare_axis(amap, var) for amap in op.index_maps]
        if None in axes or any(shape_of(v)[axis] != extents[var] for v, axis in zip(op.inputs, axes)):
            continue
        if best is None or extents[var] > extents[best[0]]:
            best = (var, (axes[0], axes[1]))
    return best  # pyright: ignore[reportReturnType]


def _bare_axis(amap: AffineMap, var: int) -> int | None:
    axes = [k for k, e in enumerate(amap.results) if var in e.used_dims()]
    if len(axes) != 1 or not (isinstance(e := amap.results[axes[0]], AffineDimExpr) and e.position == var):
        return None
    return axes[0]


def _always_inside(op: ix.ComputeOp) -> list[bool]:
    ranges = iteration_ranges(op.result_type.get_shape(), op.reduction_extents)
    return [all(read_in_bounds(r.map, ranges, shape_of(r.value))) for r in op.reads]


def pack(value: SSAValue, axis: int, minus_set: bool, bits: int) -> SSAValue:
    """`value` (±1) packed along `axis` into words of `bits`: bit b of word k is set where element
    k*bits + b is −1 (`minus_set`) or +1; channels beyond the axis read as a clear bit.

    Where `value` is `sign(x)` of a tensor `x` read as it is, the words are packed from `x`
    (set for −1 where x >= 0 fails, which a NaN fails too, as `sign` does): one comparison per
    element, and no ±1 tensor to write or read in between. A channel beyond `x` reads 0 then
    (sign +1) for the −1 bits, −1 for the +1 bits: a clear bit either way."""
    shape = shape_of(value)
    word = IntegerType(bits)
    rank = len(shape)
    source = _signed(value, axis)

    def at(*v: AffineExpr) -> list[AffineExpr]:
        index = [v[k] * bits + v[rank] if k == axis else v[k] for k in range(rank)]
        if source is None:
            return index
        return [substitute(e, index) for e in value.owner.index_maps[0].results]  # pyright: ignore[reportAttributeAccessIssue]

    def body(x: SSAValue) -> SSAValue:
        bit = arith.ShLIOp(const(1, word), arith.IndexCastOp(index(rank), word).result).result
        if source is None:
            return select(cmpf("olt" if minus_set else "ogt", x, 0.0), bit, const(0, word))
        plus = cmpf("oge", x, 0.0)
        return select(plus, const(0, word), bit) if minus_set else select(plus, bit, const(0, word))

    packed_shape = (*shape[:axis], -(-shape[axis] // bits), *shape[axis + 1:])
    read = Access(value, at) if source is None else Access(source, at, 0.0 if minus_set else -1.0)
    extent = min(bits, shape[axis])  # one word: its bits beyond the channels are clear, not summed
    return compute(packed_shape, [read], body, reduction="sum", extents=(extent,), element_type=word)


def _signed(value: SSAValue, axis: int) -> SSAValue | None:
    """`x` when `value` is `sign(x)` (scalars.sign: `x >= 0 ? 1 : -1`) of `x` read as it is or
    broadcast (size-1 dims read at 0), the packed `axis` as it is (so its tail leaves `x`)."""
    producer = value.owner
    if not isinstance(producer, ix.ComputeOp) or len(producer.inputs) != 1 or producer.reduction.data != "none":
        return None
    results, source_shape, shape = producer.index_maps[0].results, shape_of(producer.inputs[0]), shape_of(value)
    if len(results) != producer.rank or not all(
            (isinstance(e, AffineDimExpr) and e.position == k and n == shape[k])
            or (k != axis and n == 1 and e == AffineExpr.constant(0))
            for k, (e, n) in enumerate(zip(results, source_shape))):
        return None
    ops = [o for o in producer.body.block.ops if not isinstance(o, arith.ConstantOp | ix.YieldOp)]
    chosen = producer.yield_op.value.owner
    if len(ops) != 2 or not isinstance(compare := ops[0], arith.CmpfOp) or ops[1] is not chosen:
        return None
    if compare.predicate.value.data != arith.CMPF_COMPARISON_OPERATIONS.index("oge") \
            or compare.lhs is not producer.body.block.args[0] or float_constant(compare.rhs) != 0.0 \
            or chosen.cond is not compare.result:  # pyright: ignore[reportAttributeAccessIssue]
        return None
    return producer.inputs[0]


def rewrite(found: BinarySum) -> SSAValue:
    """The packed form of `found.op` (at the implicit insertion point); returns its float result."""
    op, word = found.op, found.word_type
    inside = _always_inside(op)
    fill = next((r.fill for r, ok in zip(op.reads, inside) if not ok), 1.0)
    packed = [pack(r.value, axis, fill != -1.0, found.bits) for r, axis in zip(op.reads, found.axes)]
    extents = list(op.reduction_extents)
    extents[found.channel - op.rank] = found.words
    shape = tuple(op.result_type.get_shape())
    elt = op.result_type.get_element_type()
    maps = op.index_maps
    if fill != 0.0 or all(inside):
        reads = [Access(p, m, 0.0) for p, m in zip(packed, maps)]
        disagree = compute(shape, reads, _disagreements, reduction="sum", extents=extents, element_type=word)

        def plus_minus(s: SSAValue) -> SSAValue:  # T - 2 S
            return arith.SIToFPOp(subi(const(found.terms, word), muli(s, const(2, word))), elt).result

        return compute(shape, [Access(disagree, AffineMap.identity(len(shape)))], plus_minus, element_type=elt)
    padded = 0 if not inside[0] else 1
    reads = [Access(packed[padded], maps[padded], 0.0), Access(packed[padded], maps[padded], -1.0),
             Access(packed[1 - padded], maps[1 - padded], 0.0), Access(_word_counts(found), _channel_map(found), 0.0)]

    def term(low: SSAValue, high: SSAValue, other: SSAValue, count: SSAValue) -> SSAValue:
        differ = _disagreements(low, other)
        return select(cmpi("eq", low, high), subi(count, muli(differ, const(2, word))), const(0, word))

    total = compute(shape, reads, term, reduction="sum", extents=extents, element_type=word)
    return compute(shape, [Access(total, AffineMap.identity(len(shape)))], lambda s: arith.SIToFPOp(s, elt).result,
                   element_type=elt)


def _disagreements(a: SSAValue, b: SSAValue) -> SSAValue:
    """The bits where two words differ: the −1 terms of their channels."""
    return math.CtPopOp(arith.XOrIOp(a, b).result).result


def _word_counts(found: BinarySum) -> SSAValue:
    """n[k] = min(bits, C − bits*k): the channels of word k."""
    channels, bits = found.channels, found.bits

    def body() -> SSAValue:
        k = index(0)
        count = minsi(subi(const(channels, k.type), muli(k, const(bits, k.type))), const(bits, k.type))
        return arith.IndexCastOp(count, found.word_type).result

    return compute((found.words,), [], body, element_type=found.word_type)


def _channel_map(found: BinarySum) -> AffineMap:
    return AffineMap(len(found.op.iteration_extents), 0, (AffineExpr.dimension(found.channel),))


@dataclass(frozen=True)
class BitpackPass(ModulePass):
    """Rewrite every ±1 × ±1 sum as XOR and popcount on bit-packed words (module docstring)."""

    name = "mlc-bitpack"

    remarks: bool = False
    """One line on stderr per ±1 × ±1 sum: packed, or why it stays in floats."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for compute_op in [o for o in op.walk() if isinstance(o, ix.ComputeOp)]:
            found = binary_sum(compute_op)
            if found is None:
                continue
            where = describe(compute_op)
            if isinstance(found, str):
                self._remark(f"{where}: stays in floats: {found}")
                continue
            with ImplicitBuilder(Builder(InsertPoint.before(compute_op))):
                result = rewrite(found)
            result.name_hint = compute_op.results[0].name_hint
            compute_op.results[0].replace_all_uses_with(result)
            signs = list(compute_op.inputs)
            Rewriter.erase_op(compute_op)
            for sign in signs:  # packed from their inputs and read by nothing else now
                if isinstance(sign.owner, ix.ComputeOp) and not sign.uses:
                    Rewriter.erase_op(sign.owner)
            self._remark(f"{where}: packed {found.channels} channels into {found.words} words of {found.bits} bits")

    def _remark(self, text: str) -> None:
        if self.remarks:
            print(f"mlc-bitpack: {text}", file=sys.stderr)

