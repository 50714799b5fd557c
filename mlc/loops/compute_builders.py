"""Building `ix.compute` ops from Python: reads given as index functions of the iteration variables.

Notation: `y[i]` is the output element at iteration point `i`; `Σ_r` / `max_r` range over the
reduction variables; `x[...]` outside `x` reads 0 unless a fill is given. The builders insert at
the implicit insertion point (inside an `ImplicitBuilder`), in program order:
  - `compute`   one compute op from reads given as Python index functions of the iteration vars;
  - `pointwise` `y[i] = f(a[i'], b[i''], ...)` with NumPy broadcasting of each operand to `y`;
  - `reduce`    `y[kept] = Σ_{axes} term(x[...]) * scale` (or `max`) for same-shaped operands;
  - `window`    `y[n,i,j,c] = Σ/max_{a,b} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c]`;
  - `conv`      that window's taps times HWIO weights, summed;
  - `scatter`   one `ix.scatter`, writes given as a Python index function like the reads;
  - `conv_transpose_scatter`  conv's adjoint: each input pixel times the taps, added where they land.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.dialects.builtin import DenseArrayBase, TensorType
from xdsl.ir import Attribute, SSAValue
from xdsl.ir.affine import AffineExpr, AffineMap

from mlc.dialects import ix, nn
from mlc.loops.affine import map_from
from mlc.loops.scalars import mul

Shape = tuple[int, ...]
Index = Callable[..., Sequence[AffineExpr | int]]
"""An index function: iteration variables (output dims, then reduction vars) -> tensor index."""


def shape_of(v: SSAValue) -> Shape:
    assert isinstance(v.type, TensorType), v.type
    return tuple(v.type.get_shape())


def element_type_of(v: SSAValue) -> Attribute:
    assert isinstance(v.type, TensorType), v.type
    return v.type.get_element_type()


@dataclass(frozen=True)
class Access:
    """A read of `value` at `index(*iteration_vars)` (or through a ready-made map); reads outside
    `value` give `fill`."""

    value: SSAValue
    index: Index | AffineMap
    fill: float = 0.0

    def map(self, num_dims: int) -> AffineMap:
        return self.index if isinstance(self.index, AffineMap) else map_from(num_dims, self.index)


def compute(
    shape: Sequence[int],
    reads: Sequence[Access],
    body: Callable[..., SSAValue],
    *,
    reduction: str = "none",
    extents: Sequence[int] = (),
    element_type: Attribute | None = None,
) -> SSAValue:
    """One `ix.compute` of the given output shape; `body(*read_scalars)` builds the scalar body.
    The element type is the first read's unless given (a compute op with no reads must give it)."""
    num_dims = len(shape) + len(extents)
    ix_reads = [ix.Read(r.value, r.map(num_dims), r.fill) for r in reads]
    elt = element_type or element_type_of(reads[0].value)
    op = ix.ComputeOp.build(TensorType(elt, list(shape)), ix_reads, lambda args: body(*args), reduction, extents)
    return op.result


def broadcast_index(operand: Shape, out_rank: int) -> Index:
    """NumPy broadcasting as a read map: dims aligned at the trailing end, size-1 dims read at 0."""
    lead = out_rank - len(operand)
    return lambda *d: [0 if n == 1 else d[lead + k] for k, n in enumerate(operand)]


def pointwise(shape: Sequence[int], operands: Sequence[SSAValue], body: Callable[..., SSAValue]) -> SSAValue:
    """y[i] = body(a[bcast(i)], b[bcast(i)], ...), every operand broadcast to `shape`."""
    return compute(shape, [Access(v, broadcast_index(shape_of(v), len(shape))) for v in operands], body)


def reduce(
    operands: Sequence[SSAValue],
    axes: Sequence[int],
    term: Callable[..., SSAValue],
    *,
    scale: float | None = None,
    kind: str = "sum",
    keepdims: bool = False,
) -> SSAValue:
    """y[kept] = Σ_{r over axes} term(a[k], b[k], ...) * scale, where k puts the output vars at the
    kept dims and the reduction vars r0.. at `axes` (all operands have the same shape). `kind="max"`
    takes the maximum instead. With `keepdims` the reduced dims stay as size-1 output dims."""
    shape = shape_of(operands[0])
    axes = sorted(set(axes))
    kept = [k for k in range(len(shape)) if k not in axes]
    out_shape = [1 if k in axes else n for k, n in enumerate(shape)] if keepdims else [shape[k] for k in kept]
    out_var = {k: (k if keepdims else kept.index(k)) for k in kept}

    def at(*v: AffineExpr) -> list[AffineExpr]:
        return [v[out_var[k]] if k in out_var else v[len(out_shape) + axes.index(k)] for k in range(len(shape))]

    def body(*xs: SSAValue) -> SSAValue:
        t = term(*xs)
        return t if scale is None else mul(t, scale)

    return compute(
        out_shape,
        [Access(v, at) for v in operands],
        body,
        reduction=kind if axes else "none",
        extents=[shape[k] for k in axes],
    )


@dataclass(frozen=True)
class Window:
    """Where tap (a, b) of output pixel (i, j) reads: h = i*sh + a*dh - pt, w = j*sw + b*dw - pl."""

    stride: tuple[int, ...]  # (sh, sw)
    dilation: tuple[int, ...]  # (dh, dw)
    padding: tuple[int, ...]  # (pt, pb, pl, pr)

    def at(self, i: AffineExpr, j: AffineExpr, a: AffineExpr, b: AffineExpr) -> tuple[AffineExpr, AffineExpr]:
        (sh, sw), (dh, dw), (pt, _, pl, _) = self.stride, self.dilation, self.padding
        return i * sh + a * dh - pt, j * sw + b * dw - pl

    @staticmethod
    def of(op: nn.Conv2DOp | nn.BinConv2DOp | nn.Conv2DTransposeOp | nn.MaxPool2DOp | nn.AvgPool2DOp) -> Window:
        convolution = isinstance(op, nn.Conv2DOp | nn.BinConv2DOp | nn.Conv2DTransposeOp)
        dilation = int_tuple(op.dilation) if convolution else op.window_dilation()
        return Window(int_tuple(op.stride), dilation, int_tuple(op.padding))


def window(
    x: SSAValue,
    win: Window,
    size: Sequence[int],
    out_shape: Sequence[int],
    body: Callable[[SSAValue], SSAValue],
    *,
    kind: str = "sum",
    fill: float = 0.0,
) -> SSAValue:
    """y[n,i,j,c] = Σ_{a<KH, b<KW} body(x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, c]) (or max),
    padded cells read as `fill`."""
    return compute(
        out_shape,
        [Access(x, lambda n, i, j, c, a, b: [n, *win.at(i, j, a, b), c], fill)],
        body,
        reduction=kind,
        extents=size,
    )


def conv(x: SSAValue, w: SSAValue, win: Window, out_shape: Sequence[int], *, fill: float = 0.0, groups: int = 1) -> SSAValue:
    """y[n,i,j,f] = Σ_{a,b,c} x[n, i*sh + a*dh - pt, j*sw + b*dw - pl, (f floordiv Fg) * Cg + c] * w[a,b,c,f]
    with Cg = C / groups channels (w's third dim) and Fg = F / groups filters per group; padded
    cells of x read as `fill`. Without groups the channel is c; with one filter per group
    (depthwise, Fg = 1) it is f * Cg + c, with no division for the vector lanes to cross."""
    kh, kw, channels, filters = shape_of(w)

    def channel(f: AffineExpr, c: AffineExpr) -> AffineExpr:
        return group_channel(f, c, groups, filters // groups, channels)

    return compute(
        out_shape,
        [
            Access(x, lambda n, i, j, f, a, b, c: [n, *win.at(i, j, a, b), channel(f, c)], fill),
            Access(w, lambda n, i, j, f, a, b, c: [a, b, c, f]),
        ],
        mul,
        reduction="sum",
        extents=(kh, kw, channels),
    )


def group_channel(f: AffineExpr, c: AffineExpr, groups: int, per_group: int, in_group: int) -> AffineExpr:
    """Channel `c` of the group of filter (or output channel) `f`: `(f floordiv Fg) * Cg + c`, with
    `Fg = per_group` filters and `Cg = in_group` channels per group; `c` itself for one group, and
    `f * Cg + c` for one filter per group, without a division for the vector lanes to cross."""
    if groups == 1:
        return c
    return (f if per_group == 1 else f // per_group) * in_group + c


def scatter(
    shape: Sequence[int],
    extents: Sequence[int],
    write: Index,
    reads: Sequence[Access],
    body: Callable[..., SSAValue],
) -> SSAValue:
    """One `ix.scatter`: `y = 0; y[write(v)] += body(reads at v)` for `v` in the box `extents`,
    writes outside `y` dropped. Reads and writes are index functions of all the box's variables."""
    num_dims = len(extents)
    ix_reads = [ix.Read(r.value, r.map(num_dims), r.fill) for r in reads]
    result_type = TensorType(element_type_of(reads[0].value), list(shape))
    op = ix.ScatterOp.build(result_type, extents, map_from(num_dims, write), ix_reads, lambda args: body(*args))
    return op.result


def conv_transpose_scatter(x: SSAValue, w: SSAValue, win: Window, out_shape: Sequence[int], *, groups: int = 1) -> SSAValue:
    """y[n, i*sh + a*dh - pt, j*sw + b*dw - pl, o] += x[n, i, j, g*Cg + c] * w[a, b, o mod Fg, g*Cg + c]
    over the box (n, i, j, a, b, o, c), with g = o floordiv Fg the group of output channel o,
    Fg = w's third dim and Cg = C / groups (conv's read turned into the write). The box names the
    output channel o rather than (g, f), so that the write needs no division and solving it for a
    gather keeps o an output index; with one group the channel is c, and with one output per
    group (Fg = 1) it is o * Cg + c, without a division."""
    n, h, wd, _ = shape_of(x)
    kh, kw, per_group, channels = shape_of(w)
    in_group = channels // groups

    def channel(o: AffineExpr, c: AffineExpr) -> AffineExpr:
        return group_channel(o, c, groups, per_group, in_group)

    def filter_index(o: AffineExpr) -> AffineExpr | int:
        return o if groups == 1 else (0 if per_group == 1 else o % per_group)

    return scatter(
        out_shape,
        (n, h, wd, kh, kw, out_shape[3], in_group),
        lambda n, i, j, a, b, o, c: [n, *win.at(i, j, a, b), o],
        [
            Access(x, lambda n, i, j, a, b, o, c: [n, i, j, channel(o, c)]),
            Access(w, lambda n, i, j, a, b, o, c: [a, b, filter_index(o), channel(o, c)]),
        ],
        mul,
    )


def int_tuple(attr: DenseArrayBase) -> tuple[int, ...]:
    return tuple(int(v) for v in attr.get_values())
