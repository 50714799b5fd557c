"""`mlc-scatter-to-gather`: adjoint-shaped scatters (built as mlc-autodiff emits them: the
forward's iteration box, the forward read map as write map, the forward's reads plus `dy`, a body
linear in `dy`) become gathers; the NumPy interpreter before and after agree to 1e-12 in float64;
no scatter is left (except a write map the solver cannot invert, which stays and is reported); a
few cases also run through the C backend. The multiply-add count of strided conv input gradients
is counted on the produced compute ops."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from xdsl.builder import ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects import arith, func
from xdsl.dialects.builtin import Builtin, FloatAttr, IndexType, IntegerAttr, ModuleOp, TensorType, f64, i64
from xdsl.ir import Block, Region, SSAValue
from xdsl.ir.affine import AffineBinaryOpExpr, AffineBinaryOpKind, AffineExpr, AffineMap
from xdsl.parser import Parser

from mlc.affine import map_from
from mlc.dialects import ix
from mlc.interpreter import affine as eval_affine
from mlc.interpreter import evaluate
from mlc.passes.scatter_to_gather import ScatterToGatherPass, vanishing_dims

RTOL = 1e-12
Body = Callable[[Sequence[SSAValue]], SSAValue]


# -- building adjoint-shaped scatters ---------------------------------------------------------
@dataclass
class Case:
    """`dx = ix.scatter [box] into write (reads) {body}` in a function of `arrays`."""

    arrays: list[np.ndarray]
    result_shape: tuple[int, ...]
    box: tuple[int, ...]
    write: AffineMap
    reads: list[tuple[int, AffineMap, float]]  # (argument, map, fill)
    body: Body

    def module(self) -> tuple[ModuleOp, func.FuncOp]:
        types = [TensorType(f64, a.shape) for a in self.arrays]
        block = Block(arg_types=types)
        with ImplicitBuilder(block):
            reads = [ix.Read(block.args[i], m, fill) for i, m, fill in self.reads]
            scatter = ix.ScatterOp.build(TensorType(f64, self.result_shape), self.box, self.write, reads, self.body)
            scatter.result.name_hint = "dx"
            func.ReturnOp(scatter.result)
        f = func.FuncOp("f", (types, [TensorType(f64, self.result_shape)]), Region(block))
        module = ModuleOp([f])
        module.verify()
        return module, f


def adjoint(arrays: Sequence[np.ndarray], out_shape: Sequence[int], extents: Sequence[int],
            forward_reads: Sequence[tuple[int, Callable[..., list], float]], k: int, grad: Body) -> Case:
    """The scatter mlc-autodiff emits for forward read `k`: box = output dims + reduction vars,
    write = that read's map, reads = the forward's reads + `dy[d0..]` (the last argument),
    body = `grad(read scalars..., dy)`."""
    n = len(out_shape) + len(extents)
    maps = [(i, map_from(n, fn), fill) for i, fn, fill in forward_reads]
    dy_map = map_from(n, lambda *d: list(d[: len(out_shape)]))
    arg_of, write_map, _ = maps[k]
    return Case(list(arrays), arrays[arg_of].shape, (*out_shape, *extents), write_map,
                [*maps, (len(arrays) - 1, dy_map, 0.0)], grad)


def mul(a: SSAValue, b: SSAValue) -> SSAValue:
    return arith.MulfOp(a, b).result


def const(v: float) -> SSAValue:
    return arith.ConstantOp(FloatAttr(v, f64)).result


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


# -- running the pass -------------------------------------------------------------------------
def gathers(case: Case, phase_limit: int = 64) -> tuple[ModuleOp, func.FuncOp]:
    """Run the pass; check the numerics against the scatter and that no scatter is left."""
    module, f = case.module()
    before = evaluate(f, case.arrays)[0]
    ScatterToGatherPass(phase_limit=phase_limit).apply(Context(), module)
    module.verify()
    assert not any(isinstance(op, ix.ScatterOp) for op in module.walk()), str(module)
    assert all(isinstance(op, ix.ComputeOp | func.ReturnOp) for op in f.body.block.ops)
    after = evaluate(f, case.arrays)[0]
    assert_close(after, before)
    assert_round_trips(module)
    return module, f


def assert_close(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.shape == ref.shape
    assert np.all(np.isfinite(got)), got
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=RTOL * max(1.0, float(np.abs(ref).max(initial=0.0))))


def assert_round_trips(module: ModuleOp) -> None:
    ctx = Context()
    for dialect in (Builtin, func.Func, arith.Arith, ix.IX):
        ctx.load_dialect(dialect)
    text = str(module)
    assert str(Parser(ctx, text).parse_module()) == text


def computes(f: func.FuncOp) -> list[ix.ComputeOp]:
    return [op for op in f.body.block.ops if isinstance(op, ix.ComputeOp)]


def _multiplies(op: ix.ComputeOp) -> bool:
    return any(isinstance(o, arith.MulfOp) for o in op.body.block.ops)


def macs(f: func.FuncOp) -> int:
    """Σ over compute ops of Π(result shape) × Π(reduction extents) × (arith.mulf in the body)."""
    total = 0
    for op in computes(f):
        count = sum(isinstance(o, arith.MulfOp) for o in op.body.block.ops)
        total += math.prod(op.result_type.get_shape()) * math.prod(op.reduction_extents) * count
    return total


# -- convolutions (NHWC / HWIO, as mlc-lower-graph builds them) --------------------------------
def same_pads(size: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


@dataclass
class Conv:
    n: int
    h: int
    w: int
    c: int
    f: int
    k: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] | str = (0, 0, 0, 0)  # (top, bottom, left, right), "same"

    @property
    def pads(self) -> tuple[int, int, int, int]:
        if self.padding == "same":
            return (*same_pads(self.h, self.k[0], self.stride[0], self.dilation[0]),
                    *same_pads(self.w, self.k[1], self.stride[1], self.dilation[1]))
        assert not isinstance(self.padding, str)
        return self.padding

    @property
    def out(self) -> tuple[int, int]:
        pt, pb, pl, pr = self.pads
        return tuple(  # type: ignore[return-value]
            (size + lo + hi - d * (k - 1) - 1) // s + 1
            for size, lo, hi, d, k, s in ((self.h, pt, pb, self.dilation[0], self.k[0], self.stride[0]),
                                          (self.w, pl, pr, self.dilation[1], self.k[1], self.stride[1])))

    @property
    def forward_macs(self) -> int:
        return self.n * math.prod(self.out) * self.f * math.prod(self.k) * self.c

    def reads(self) -> list[tuple[int, Callable[..., list], float]]:
        (sh, sw), (dh, dw), (pt, _, pl, _) = self.stride, self.dilation, self.pads
        return [
            (0, lambda n, i, j, f, a, b, c: [n, i * sh + a * dh - pt, j * sw + b * dw - pl, c], 0.0),
            (1, lambda n, i, j, f, a, b, c: [a, b, c, f], 0.0),
        ]

    def arrays(self, rng: np.random.Generator) -> list[np.ndarray]:
        ho, wo = self.out
        return [rand(rng, self.n, self.h, self.w, self.c), rand(rng, *self.k, self.c, self.f), rand(rng, self.n, ho, wo, self.f)]

    def input_gradient(self, rng: np.random.Generator) -> Case:
        return adjoint(self.arrays(rng), (self.n, *self.out, self.f), (*self.k, self.c), self.reads(), 0,
                       lambda a: mul(a[2], a[1]))

    def weight_gradient(self, rng: np.random.Generator) -> Case:
        return adjoint(self.arrays(rng), (self.n, *self.out, self.f), (*self.k, self.c), self.reads(), 1,
                       lambda a: mul(a[2], a[0]))


CONVS = [
    Conv(2, 7, 7, 2, 3, (3, 3), (1, 1)),
    Conv(2, 7, 9, 2, 3, (3, 3), (1, 1), padding="same"),
    Conv(1, 9, 9, 2, 2, (3, 3), (2, 2), padding="same"),
    Conv(1, 8, 9, 2, 2, (4, 4), (2, 2), padding="same"),  # asymmetric same padding
    Conv(1, 9, 11, 2, 2, (3, 3), (3, 3), padding="same"),
    Conv(1, 10, 9, 2, 2, (3, 3), (3, 2), (2, 1), padding="same"),
    Conv(1, 9, 9, 1, 2, (3, 3), (2, 2), (2, 2)),
    Conv(1, 11, 10, 2, 2, (3, 4), (3, 3), (2, 2), padding=(1, 2, 2, 0)),
    Conv(1, 7, 7, 2, 2, (3, 3), (2, 1), padding=(1, 1, 0, 3)),
    Conv(1, 5, 5, 1, 1, (4, 4), (3, 3), (1, 1), padding=(3, 3, 3, 3)),  # padding wider than the input
]


@pytest.mark.parametrize("conv", CONVS, ids=str)
def test_conv_input_gradient(conv: Conv) -> None:
    _, f = gathers(conv.input_gradient(np.random.default_rng(0)))
    # no range predicates: a solved output position reads dy's zero fill, a solved tap w's
    assert not any(isinstance(o, arith.SelectOp) for op in computes(f) if _multiplies(op) for o in op.body.block.ops)
    assert useful_macs(f) + conv.n * conv.c * conv.f * _border_pairs(conv) == macs(f)


@pytest.mark.parametrize("conv", CONVS[:6], ids=str)
def test_conv_weight_gradient(conv: Conv) -> None:
    _, f = gathers(conv.weight_gradient(np.random.default_rng(1)))
    (op,) = computes(f)
    # dw[a, b, c, f] = Σ_{n, i, j} dy[n, i, j, f] * x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c]
    assert op.reduction_extents == tuple(e for e in (conv.n, *conv.out) if e > 1)  # extent 1: a constant
    assert macs(f) == conv.forward_macs


# -- the multiply-add count of conv input gradients ---------------------------------------------
def _pairs(size: int, k: int, s: int, d: int, lo: int, out: int) -> tuple[int, int, int, int]:
    """Along one spatial dim, with u = s*o + d*a - lo: (forward (o, a) pairs, those reading
    inside the input, the (u, a) pairs the stride allows (solving for o), the (u, o) pairs the
    dilation allows (solving for a))."""
    forward = out * k
    inside = sum(1 for o in range(out) for a in range(k) if 0 <= s * o + d * a - lo < size)
    by_output = sum(1 for u in range(size) for a in range(k) if (u + lo - d * a) % s == 0)
    by_tap = sum(1 for u in range(size) for o in range(out) if (u + lo - s * o) % d == 0)
    return forward, inside, by_output, by_tap


def _border_pairs(conv: Conv) -> int:
    """Gradient pairs whose output position falls outside the output (they multiply dy's 0 fill)."""
    (pt, _, pl, _), out = conv.pads, conv.out
    dims = [_pairs(size, k, s, d, lo, o) for size, k, s, d, lo, o in
            zip((conv.h, conv.w), conv.k, conv.stride, conv.dilation, (pt, pl), out)]
    return math.prod(min(t[2], t[3]) for t in dims) - math.prod(t[1] for t in dims)


MAC_CONVS = [
    Conv(1, size, size + 2, 1, 1, (k, k), (s, s), (d, d), padding=pad)
    for size in (7, 9)
    for k in (3, 4)
    for s in (1, 2, 3)
    for d in (1, 2)
    for pad in ("same", (0, 0, 0, 0))
    if (size - d * (k - 1) - 1) // s + 1 > 0
] + [Conv(2, 9, 8, 2, 3, (3, 4), (2, 3), (1, 2), padding="same")]


@pytest.mark.parametrize("conv", MAC_CONVS, ids=str)
def test_conv_input_gradient_macs(conv: Conv) -> None:
    """Phase decomposition spends no multiply-add on a tap the stride rules out.

    Counted on the compute ops: Σ Π(shape) Π(extents) × mulfs. Per spatial dim, solving
    `u = s*o + d*a - p` for the output position `o` gives one MAC per (input position u, tap a)
    with `u + p - d*a ≡ 0 (mod s)`; solving for the tap `a` (when `K*d > O*s`) one per (u, o)
    with `u + p - s*o ≡ 0 (mod d)`; the solver picks the cheaper. Either way the MACs are exactly
    the forward's in-bounds MACs, one to one (checked by enumerating the iteration points of the
    produced ops), plus those at the border that multiply dy's (or w's) zero fill, where the
    forward instead spends MACs on padding. For stride 1, dilation 1, `same` padding the two
    border terms cancel: MACs = forward MACs exactly. A divisibility predicate (phase_limit=1)
    costs about s² times more.
    """
    case = conv.input_gradient(np.random.default_rng(2))
    _, f = gathers(case)
    (pt, _, pl, _), out = conv.pads, conv.out
    dims = [_pairs(size, k, s, d, lo, o) for size, k, s, d, lo, o in
            zip((conv.h, conv.w), conv.k, conv.stride, conv.dilation, (pt, pl), out)]
    channels = conv.n * conv.c * conv.f
    assert channels * math.prod(t[0] for t in dims) == conv.forward_macs
    assert macs(f) == channels * math.prod(min(t[2], t[3]) for t in dims)
    assert useful_macs(f) == channels * math.prod(t[1] for t in dims)  # one per in-bounds forward MAC
    if conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding == "same":
        assert macs(f) == conv.forward_macs
    if conv.stride != (1, 1):
        _, guarded = gathers(conv.input_gradient(np.random.default_rng(2)), phase_limit=1)
        assert macs(guarded) > macs(f)


def useful_macs(f: func.FuncOp) -> int:
    """Iteration points of the ops with a multiply where every read is inside its tensor: the
    MACs that do not multiply a zero fill."""
    total = 0
    for op in computes(f):
        count = sum(isinstance(o, arith.MulfOp) for o in op.body.block.ops)
        if not count:
            continue  # the interleave
        space = op.iteration_extents
        grid = list(np.indices(space, dtype=np.int64))
        inside = np.ones(space, dtype=bool)
        for read in op.reads:
            for expr, size in zip(read.map.results, read.value.type.get_shape()):  # pyright: ignore[reportAttributeAccessIssue]
                i = eval_affine(expr, grid, space)
                inside &= (i >= 0) & (i < size)
        total += int(inside.sum()) * count
    return total


# -- pooling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("size,stride,pad", [((3, 3), (2, 2), (1, 1)), ((2, 2), (3, 3), (0, 0)), ((3, 2), (1, 3), (1, 0)),
                                             ((2, 2), (2, 2), (0, 0))])
def test_max_pool_gradient(size: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int]) -> None:
    """y = max over the window (padding reads -inf); dx gets dy where x equals the window's max."""
    rng = np.random.default_rng(3)
    n, h, w, c = 2, 8, 9, 2
    (kh, kw), (sh, sw), (pt, pl) = size, stride, pad
    ho, wo = (h + 2 * pt - kh) // sh + 1, (w + 2 * pl - kw) // sw + 1
    x = rand(rng, n, h, w, c)
    windows = np.full((n, ho, wo, c), -np.inf)
    for i in range(ho):
        for j in range(wo):
            for a in range(kh):
                for b in range(kw):
                    r, s = i * sh + a - pt, j * sw + b - pl
                    if 0 <= r < h and 0 <= s < w:
                        windows[:, i, j, :] = np.maximum(windows[:, i, j, :], x[:, r, s, :])
    dy = rand(rng, n, ho, wo, c)

    def grad(args: Sequence[SSAValue]) -> SSAValue:
        xv, yv, dyv = args
        return arith.SelectOp(arith.CmpfOp(xv, yv, "oeq").result, dyv, const(0.0)).result

    reads = [(0, lambda n, i, j, c, a, b: [n, i * sh + a - pt, j * sw + b - pl, c], -math.inf),
             (1, lambda n, i, j, c, a, b: [n, i, j, c], 0.0)]
    case = adjoint([x, windows, dy], (n, ho, wo, c), (kh, kw), reads, 0, grad)
    _, f = gathers(case)
    # one op per phase that some window reads (min(s, k) residues per dim), plus the interleave
    assert len(computes(f)) == min(sh, kh) * min(sw, kw) + (stride != (1, 1))


def test_pool_stride_larger_than_window_has_empty_phases() -> None:
    """Window 2, stride 3: inputs at u mod 3 == 2 are read by no window; their phase is 0."""
    rng = np.random.default_rng(4)
    x, dy = rand(rng, 9), rand(rng, 3)
    case = adjoint([x, dy], (3,), (2,), [(0, lambda i, a: [3 * i + a], 0.0)], 0, lambda a: mul(a[1], const(0.5)))
    module, f = gathers(case)
    ops = computes(f)
    assert len(ops) == 3  # phases 0 and 1, and the interleave
    assert "%dx_p0" in str(module) and "%dx_p1" in str(module) and "%dx_p2" not in str(module)


# -- index maps --------------------------------------------------------------------------------
def test_diagonal_is_a_condition() -> None:
    """y[i] = x[i, i]: dx[u0, u1] = select(u0 == u1, dy[u0], 0) (Halide 21 fills every row)."""
    rng = np.random.default_rng(5)
    x, dy = rand(rng, 5, 5), rand(rng, 5)
    case = adjoint([x, dy], (5,), (), [(0, lambda i: [i, i], 0.0)], 0, lambda a: a[1])
    module, f = gathers(case)
    got = evaluate(f, case.arrays)[0]
    np.testing.assert_array_equal(got, np.diag(dy))
    (op,) = computes(f)
    assert op.reduction.data == "none"
    assert "arith.cmpi eq" in str(module)


def test_a_pinned_result_dim_reduces_only_its_slice() -> None:
    """y[n, f] = Σ_c x[n, c] * w[1, c, f] (one tap of a filter [3, C, F], as a transposed conv's
    phase reads it): dw[u0, u1, u2] is non-zero only at u0 = 1. The reduction over n runs for that
    slice alone (a piece [1, C, F]), placed by the interleave, not for all three taps with a
    predicate discarding two of them."""
    rng = np.random.default_rng(55)
    x, w, dy = rand(rng, 6, 4), rand(rng, 3, 4, 5), rand(rng, 6, 5)
    reads = [(0, lambda n, f, c: [n, c], 0.0), (1, lambda n, f, c: [1, c, f], 0.0)]
    _, f = gathers(adjoint([x, w, dy], (6, 5), (4,), reads, 1, lambda r: mul(r[2], r[0])))
    piece, placed = computes(f)
    assert piece.result_type.get_shape() == (1, 4, 5) and piece.reduction_extents == (6,)
    assert placed.reduction.data == "none" and placed.result_type.get_shape() == (3, 4, 5)
    expected = np.zeros_like(w)
    expected[1] = x.T @ dy
    np.testing.assert_allclose(evaluate(f, [x, w, dy])[0], expected, rtol=RTOL)


def test_upsampling_gathers_two_preimages() -> None:
    """y[i, j] = x[i floordiv 2, j floordiv 2]: dx[u] = Σ_{t0, t1 < 2} dy[2 u0 + t0, 2 u1 + t1]."""
    rng = np.random.default_rng(6)
    x, dy = rand(rng, 3, 4), rand(rng, 6, 8)
    case = adjoint([x, dy], (6, 8), (), [(0, lambda i, j: [i // 2, j // 2], 0.0)], 0, lambda a: a[1])
    _, f = gathers(case)
    (op,) = computes(f)
    assert op.reduction_extents == (2, 2)
    np.testing.assert_allclose(evaluate(f, case.arrays)[0], dy.reshape(3, 2, 4, 2).sum(axis=(1, 3)), rtol=RTOL)


def test_upsampling_with_partial_last_block() -> None:
    """y has 7 rows read from x[i floordiv 2]: the last x row has one pre-image only."""
    rng = np.random.default_rng(7)
    x, dy = rand(rng, 4), rand(rng, 7)
    gathers(adjoint([x, dy], (7,), (), [(0, lambda i: [i // 2], 0.0)], 0, lambda a: mul(a[1], const(3.0))))


@pytest.mark.parametrize("groups, in_group, per_group", [(2, 3, 2), (4, 2, 4), (3, 4, 1), (2, 1, 3)])
def test_grouped_conv_input_gradient_is_one_gather(groups: int, in_group: int, per_group: int) -> None:
    """A grouped conv reads x[n, i + a - 1, j + b - 1, (f floordiv Fg) * Cg + c]: its input
    gradient's channel u = Cg g + c is phase c (modulus Cg) per group g, and the phases differ
    only by c, so they merge into one gather (c = u mod Cg) with the forward's multiply-adds and
    no interleave."""
    n, h, w, f = 2, 5, 4, groups * per_group
    channels = groups * in_group
    rng = np.random.default_rng(groups * 100 + in_group * 10 + per_group)
    arrays = [rand(rng, n, h, w, channels), rand(rng, 3, 3, in_group, f), rand(rng, n, h, w, f)]
    reads = [(0, lambda n, i, j, f, a, b, c: [n, i + a - 1, j + b - 1, f // per_group * in_group + c], 0.0),
             (1, lambda n, i, j, f, a, b, c: [a, b, c, f], 0.0)]
    _, fn = gathers(adjoint(arrays, (n, h, w, f), (3, 3, in_group), reads, 0, lambda a: mul(a[2], a[1])))
    (op,) = computes(fn)
    assert op.result_type.get_shape() == (n, h, w, channels)
    assert macs(fn) == n * h * w * f * 9 * in_group


def test_mod_map() -> None:
    """y[i] = x[i mod 3]: dx[u] = Σ_q dy[3q + u], q's last value in range only for some u."""
    rng = np.random.default_rng(8)
    x, dy = rand(rng, 3), rand(rng, 8)
    _, f = gathers(adjoint([x, dy], (8,), (), [(0, lambda i: [i % 3], 0.0)], 0, lambda a: a[1]))
    np.testing.assert_allclose(evaluate(f, [x, dy])[0], [dy[0::3].sum(), dy[1::3].sum(), dy[2::3].sum()], rtol=RTOL)


def test_broadcast_sums_over_the_broadcast_dim() -> None:
    """y[i, j] = a[i, j] * b[j]: db[u] = Σ_i dy[i, u] a[i, u]."""
    rng = np.random.default_rng(9)
    a, b, dy = rand(rng, 4, 5), rand(rng, 5), rand(rng, 4, 5)
    reads = [(0, lambda i, j: [i, j], 0.0), (1, lambda i, j: [j], 0.0)]
    _, f = gathers(adjoint([a, b, dy], (4, 5), (), reads, 1, lambda r: mul(r[2], r[0])))
    (op,) = computes(f)
    assert op.reduction_extents == (4,)


def test_reshape_map_needs_no_reduction() -> None:
    """y[n, d] = x[n, d floordiv 20, (d floordiv 5) mod 4, d mod 5] (a flatten): dx is a pure
    gather dy[n, 20 u1 + 5 u2 + u3], the quotient the equations leave free pinned by the
    remainder ranges."""
    rng = np.random.default_rng(10)
    x, dy = rand(rng, 2, 3, 4, 5), rand(rng, 2, 60)
    reads = [(0, lambda n, d: [n, d // 20, (d // 5) % 4, d % 5], 0.0)]
    module, f = gathers(adjoint([x, dy], (2, 60), (), reads, 0, lambda a: a[1]))
    (op,) = computes(f)
    assert op.reduction.data == "none"
    assert "%1[d0, d1 * 20 + d2 * 5 + d3]" in str(module)
    assert not any(isinstance(o, arith.SelectOp) for o in op.body.block.ops)
    np.testing.assert_array_equal(evaluate(f, [x, dy])[0], dy.reshape(2, 3, 4, 5))


def test_unflatten_map() -> None:
    """The other direction, y[n, a, b] = x[n, 4a + b]: a plain gather."""
    rng = np.random.default_rng(11)
    x, dy = rand(rng, 2, 12), rand(rng, 2, 3, 4)
    _, f = gathers(adjoint([x, dy], (2, 3, 4), (), [(0, lambda n, a, b: [n, 4 * a + b], 0.0)], 0, lambda r: r[1]))
    np.testing.assert_array_equal(evaluate(f, [x, dy])[0], dy.reshape(2, 12))


def test_transpose() -> None:
    rng = np.random.default_rng(12)
    x, dy = rand(rng, 3, 4, 5), rand(rng, 5, 3, 4)
    _, f = gathers(adjoint([x, dy], (5, 3, 4), (), [(0, lambda i, j, k: [j, k, i], 0.0)], 0, lambda r: r[1]))
    np.testing.assert_array_equal(evaluate(f, [x, dy])[0], dy.transpose(1, 2, 0))


def test_constant_index() -> None:
    """y[i, j] = x[0, j] * 2: dx[u0, u1] = select(u0 == 0, Σ_i 2 dy[i, u1], 0)."""
    rng = np.random.default_rng(13)
    x, dy = rand(rng, 3, 4), rand(rng, 5, 4)
    _, f = gathers(adjoint([x, dy], (5, 4), (), [(0, lambda i, j: [0, j], 0.0)], 0, lambda r: mul(r[1], const(2.0))))
    got = evaluate(f, [x, dy])[0]
    np.testing.assert_allclose(got[0], 2 * dy.sum(axis=0), rtol=RTOL)
    assert not got[1:].any()


def test_matmul_gradients() -> None:
    """y[i, j] = Σ_k a[i, k] b[k, j]: da = dy bᵀ and db = aᵀ dy as plain gathers."""
    rng = np.random.default_rng(14)
    a, b, dy = rand(rng, 3, 4), rand(rng, 4, 5), rand(rng, 3, 5)
    reads = [(0, lambda i, j, k: [i, k], 0.0), (1, lambda i, j, k: [k, j], 0.0)]
    _, fa = gathers(adjoint([a, b, dy], (3, 5), (4,), reads, 0, lambda r: mul(r[2], r[1])))
    _, fb = gathers(adjoint([a, b, dy], (3, 5), (4,), reads, 1, lambda r: mul(r[2], r[0])))
    np.testing.assert_allclose(evaluate(fa, [a, b, dy])[0], dy @ b.T, rtol=RTOL)
    np.testing.assert_allclose(evaluate(fb, [a, b, dy])[0], a.T @ dy, rtol=RTOL)
    assert computes(fa)[0].reduction_extents == (5,)


def test_write_outside_the_result_is_zero() -> None:
    rng = np.random.default_rng(15)
    x, dy = rand(rng, 4), rand(rng, 3)
    _, f = gathers(adjoint([x, dy], (3,), (), [(0, lambda i: [i + 10], 0.0)], 0, lambda r: r[1]))
    assert not evaluate(f, [x, dy])[0].any()


# -- range checks: only where an out-of-range point could contribute ---------------------------
def test_body_that_does_not_vanish_keeps_the_range_check() -> None:
    """y[i] = a[i + 1] / c[i]: da[u] = dy[u - 1] / c[u - 1]. At u = 0 both reads are 0 fills and
    0/0 is NaN, so the solved i = u - 1 must be checked (and is, giving 0 there)."""
    rng = np.random.default_rng(16)
    a, c, dy = rand(rng, 6), rand(rng, 5), rand(rng, 5)
    reads = [(0, lambda i: [i + 1], 0.0), (1, lambda i: [i], 0.0)]
    case = adjoint([a, c, dy], (5,), (), reads, 0, lambda r: arith.DivfOp(r[2], r[1]).result)
    module, f = case.module()
    assert vanishing_dims(f.body.block.first_op) == set()  # pyright: ignore[reportArgumentType]
    module, f = gathers(case)
    assert "arith.select" in str(module)
    got = evaluate(f, case.arrays)[0]
    np.testing.assert_allclose(got, np.concatenate([[0.0], dy / c]), rtol=RTOL)


def test_linear_body_needs_no_range_check() -> None:
    rng = np.random.default_rng(17)
    a, c, dy = rand(rng, 6), rand(rng, 5), rand(rng, 5)
    reads = [(0, lambda i: [i + 1], 0.0), (1, lambda i: [i], 0.0)]
    case = adjoint([a, c, dy], (5,), (), reads, 0, lambda r: arith.NegfOp(mul(r[2], r[1])).result)
    module, f = case.module()
    assert vanishing_dims(f.body.block.first_op) == {0}  # pyright: ignore[reportArgumentType]
    module, _ = gathers(case)
    assert "arith.select" not in str(module)


def test_index_in_the_body_becomes_index_arithmetic() -> None:
    """An average pool with padding divides by the window's in-bounds count, computed from
    `ix.index` of the output position: after the rewrite that index is `(u - a + 1) floordiv 2`
    style arithmetic of the gather's variables, and the division keeps the range checks."""
    rng = np.random.default_rng(18)
    h, k, s, p = 9, 3, 2, 1
    o = (h + 2 * p - k) // s + 1
    x, dy = rand(rng, h), rand(rng, o)

    def grad(r: Sequence[SSAValue]) -> SSAValue:
        i = ix.IndexOp(0).result
        start = arith.SubiOp(arith.MuliOp(i, _index(s)).result, _index(p)).result
        end = arith.MinSIOp(arith.AddiOp(start, _index(k)).result, _index(h)).result
        count = arith.SubiOp(end, arith.MaxSIOp(start, _index(0)).result).result
        as_float = arith.SIToFPOp(arith.IndexCastOp(count, i64).result, f64).result
        return arith.DivfOp(r[1], as_float).result

    case = adjoint([x, dy], (o,), (k,), [(0, lambda i, a: [s * i + a - p], 0.0)], 0, grad)
    module, _ = gathers(case)
    assert "ix.index" in str(module) and "ix.scatter" not in str(module)


def _index(v: int) -> SSAValue:
    return arith.ConstantOp(IntegerAttr(v, IndexType())).result


# -- fallbacks ---------------------------------------------------------------------------------
def test_two_free_variables_in_a_congruence_use_a_divisibility_guard(capsys: pytest.CaptureFixture[str]) -> None:
    """y[i] = Σ_{j, k} x[3i + j + k]: 3i = u - j - k needs a predicate on (j, k) together."""
    rng = np.random.default_rng(19)
    x, dy = rand(rng, 16), rand(rng, 5)
    case = adjoint([x, dy], (5,), (3, 2), [(0, lambda i, j, k: [3 * i + j + k], 0.0)], 0, lambda r: r[1])
    module, _ = gathers(case)
    assert "arith.remsi" in str(module)
    assert "remark: mlc-scatter-to-gather: %dx: strided gather uses a divisibility guard" in capsys.readouterr().err


def test_non_affine_write_map_stays_a_scatter(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(20)
    dy = rand(rng, 3, 4)
    write = AffineMap(2, 0, (AffineBinaryOpExpr(AffineBinaryOpKind.Mul, AffineExpr.dimension(0), AffineExpr.dimension(1)),))
    case = Case([dy], (12,), (3, 4), write, [(0, map_from(2, lambda i, j: [i, j]), 0.0)], lambda r: r[0])
    module, f = case.module()
    before = evaluate(f, [dy])[0]
    ScatterToGatherPass().apply(Context(), module)
    assert any(isinstance(op, ix.ScatterOp) for op in module.walk())
    np.testing.assert_array_equal(evaluate(f, [dy])[0], before)
    err = capsys.readouterr().err
    assert "remark: mlc-scatter-to-gather: kept a scatter for %dx: '(d0 * d1)' multiplies iteration variables" in err


# -- through C ---------------------------------------------------------------------------------
@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("case_of", [
    lambda rng: Conv(1, 9, 8, 2, 3, (3, 3), (2, 2), padding="same").input_gradient(rng),
    lambda rng: Conv(1, 9, 9, 2, 2, (3, 3), (3, 2), (2, 1), padding=(1, 2, 0, 1)).input_gradient(rng),
    lambda rng: adjoint([rand(rng, 5, 5), rand(rng, 5)], (5,), (), [(0, lambda i: [i, i], 0.0)], 0, lambda a: a[1]),
    lambda rng: adjoint([rand(rng, 2, 3, 4, 5), rand(rng, 2, 60)], (2, 60), (),
                        [(0, lambda n, d: [n, d // 20, (d // 5) % 4, d % 5], 0.0)], 0, lambda a: a[1]),
], ids=["conv-stride2-same", "conv-stride3x2-dilated", "diagonal", "reshape"])
def test_through_c(case_of: Callable[[np.random.Generator], Case], private_cache: None) -> None:
    from mlc.backends.c.runtime import compile_module
    from mlc.passes.lower_loops import LowerLoopsPass
    from mlc.passes.plan_memory import PlanMemoryPass

    case = case_of(np.random.default_rng(21))
    module, f = case.module()
    ref = evaluate(f, case.arrays)[0]
    ScatterToGatherPass().apply(Context(), module)
    LowerLoopsPass().apply(Context(), module)
    PlanMemoryPass().apply(Context(), module)
    module.verify()

    def run(flags: tuple[str, ...] | None = None) -> np.ndarray:
        fn = compile_module(module, **({} if flags is None else {"flags": flags}))["f"]
        out = np.zeros(case.result_shape)
        fn(*[np.ascontiguousarray(a) for a in case.arrays], out)
        return out

    out = run()
    if not np.allclose(out, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max()):
        # GCC 12.2's -O3 loop vectorizer (-mavx2 and up) miscompiles some of these loop nests:
        # the same C is right at -O0 and with -fno-tree-loop-vectorize (see the pass's report)
        assert_close(run(("-O0", "-std=c99", "-fPIC", "-shared")), ref)
        pytest.xfail("the C compiler's -O3 vectorizer miscompiles this loop nest; right at -O0")
    assert_close(out, ref)


# -- random write maps -------------------------------------------------------------------------
def _random_expr(rng: np.random.Generator, d: Sequence[AffineExpr], depth: int = 0) -> AffineExpr:
    """Σ c_j d_j + k with small coefficients, sometimes floordiv/mod by 2..4 (nested once)."""
    expr: AffineExpr = AffineExpr.constant(int(rng.integers(-2, 3)))
    for dj in d:
        c = int(rng.choice([0, 0, 1, 1, 1, -1, 2, 3, -2]))
        if c:
            expr = expr + dj * c
    roll = rng.random()
    if depth < 2 and roll < 0.35:
        return _random_expr(rng, d, depth + 1) // int(rng.integers(2, 5))
    if depth < 2 and roll < 0.55:
        return _random_expr(rng, d, depth + 1) % int(rng.integers(2, 5))
    return expr


@pytest.mark.parametrize("seed", range(150))
def test_random_write_maps(seed: int) -> None:
    """Random quasi-affine write maps, a body linear in a `dy` read (or dividing by another read,
    so nothing vanishes), with and without phases: the gathers equal the scatter."""
    rng = np.random.default_rng(1000 + seed)
    box = tuple(int(e) for e in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    shape = tuple(int(e) for e in rng.integers(1, 8, size=int(rng.integers(1, 3))))
    d = [AffineExpr.dimension(j) for j in range(len(box))]
    write = AffineMap(len(box), 0, tuple(_random_expr(rng, d) for _ in shape))
    other_shape = tuple(int(e) for e in rng.integers(1, 6, size=2))
    other_map = AffineMap(len(box), 0, tuple(_random_expr(rng, d) for _ in other_shape))
    dy, other = rand(rng, *box), rand(rng, *other_shape) + 3.0
    identity = AffineMap(len(box), 0, tuple(d))
    divide = bool(rng.random() < 0.3)

    def body(r: Sequence[SSAValue]) -> SSAValue:
        return arith.DivfOp(r[0], r[1]).result if divide else mul(r[0], r[1])

    fill = 2.0 if divide else float(rng.choice([0.0, 1.5]))
    case = Case([dy, other], shape, box, write, [(0, identity, 0.0), (1, other_map, fill)], body)
    gathers(case)
    gathers(case, phase_limit=1)


def _residue_guarded(dy: SSAValue, modulus: int, residue: int, negated: bool) -> SSAValue:
    """`dy` where `ix.index 0 mod modulus == residue` and 0 elsewhere (written as the select of
    the negated condition with the sides swapped when `negated`)."""
    rem = arith.RemSIOp(ix.IndexOp(0).result, _index(modulus)).result
    cond = arith.CmpiOp(rem, _index(residue), "ne" if negated else "eq").result
    return arith.SelectOp(cond, const(0.0), dy).result if negated else arith.SelectOp(cond, dy, const(0.0)).result


@pytest.mark.parametrize("negated", [False, True])
def test_interleave_adjoint_is_a_copy(negated: bool) -> None:
    """The adjoint of interleaving two pieces, `y[u] = piece_{u mod 2}[u floordiv 2]`, into piece 1:
    `dy[u] * [u mod 2 == 1]` written to `u floordiv 2`. The guard restricts the box to `u = 2z + 1`
    before solving, so the gather is the copy `dy[2q + 1]`: no reduction and no residue test left
    (only the range check of piece 1's last row, which has no pre-image)."""
    rng = np.random.default_rng(31)
    piece, dy = rand(rng, 5), rand(rng, 9)  # 9 rows: piece 1 has 4 pre-images, its last row none
    case = Case([piece, dy], (5,), (9,), map_from(1, lambda u: [u // 2]), [(1, map_from(1, lambda u: [u]), 0.0)],
                lambda r: _residue_guarded(r[0], 2, 1, negated))
    _, f = gathers(case)
    (op,) = computes(f)
    assert op.reduction_extents == () and not any(isinstance(o, arith.RemSIOp) for o in op.body.block.ops)
    np.testing.assert_allclose(evaluate(f, case.arrays)[0], [*dy[1::2], 0.0], rtol=RTOL)
