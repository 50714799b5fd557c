"""The built-in operations of the mlc language as a table: parameters, keyword values, IR builders.

Each entry of :data:`BUILTINS` says, for one built-in (LANGUAGE.md, "Built-in operations"):

* its parameters in order (:class:`Param`): tensor operands are positional only; options are
  keywords, and a *required* option (a pool's ``size``, reshape's ``shape``) may also be given
  positionally, as in ``maxpool2d(h, 2)``;
* how each option's value is read (a parser of `options`, from the AST value to a Python value, raising a
  located :class:`CompileError` that lists what is allowed) and its default;
* how the ``nn`` op is built from the evaluated tensors and option values.

Builders work on SSA values inside the caller's ``ImplicitBuilder`` and may raise
:class:`~mlc.dialects.nn.ShapeError` (the caller reports it at the call) or :class:`CompileError`
for an option that does not fit the operands (reported at the option).  Everything model-level
(evaluating the arguments, literals, element types) is the caller's job (``emit.py``).

Resolution rules implemented here:

* ``stride``/``dilation``/``size``: an int ``k`` means ``(k, k)``; otherwise a pair ``(h, w)``.
* ``padding``: ``valid`` = no padding; ``same`` = TensorFlow's (:func:`nn.same_padding` per
  spatial dim, with the op's dilation for convolutions and dilation 1 for pools); an int ``p`` =
  ``p`` on all sides; ``(ph, pw)`` as PyTorch; or ``(top, bottom, left, right)``.
* ``conv2d_transpose``: ``same`` means ``Ho = H * sh``, with the padding ``same`` gives conv2d on an
  input of size ``Ho`` (and the output padding that size needs).
* pools: ``stride`` defaults to ``size``.
* ``concat`` and ``sum``/``mean`` normalise negative axes (``-1`` is the last).
* ``flatten`` is a reshape to ``[N, prod(rest)]``; ``reshape`` allows one ``-1``.
* ``batchnorm``: ``gamma``/``beta`` omitted together are the constants 1 and 0; ``mean=``/``var=``
  (together) name the model's states and make it ``nn.batchnorm_running``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from mlc.dialects import nn
from mlc.errors import CompileError, SourceLocation
from mlc.frontend.language.options import (
    OptionParser,
    axes,
    boolean,
    enum,
    fraction,
    int_choice,
    int_list,
    integer,
    non_negative_pair,
    number,
    optional_int,
    padding,
    pair,
    positive_int,
    positive_number,
    shape,
)

# ---------------------------------------------------------------------------- diagnostics helpers


def word_loc(loc: SourceLocation, word: str) -> SourceLocation:
    """The span of ``word`` written at the start of ``loc`` (a call's function name)."""
    return SourceLocation(loc.file, loc.line, loc.col, loc.line, loc.col + len(word), loc.source)


def fmt_type(t: Any) -> str:
    """A tensor type as the user writes it: ``f32[2, 3]``."""
    return nn.fmt(t)


# ---------------------------------------------------------------------------- the table's types

MAX_ELEMENTS = 2**40
"""The largest element count of a tensor (keeps every shape product far inside i64)."""

REQUIRED: Any = object()
"""Default of a parameter that must be given."""

@dataclass(frozen=True)
class Param:
    """One parameter of a built-in: a tensor operand (``parse is None``), an option, or a keyword
    naming one of the model's states (``state``: batchnorm's ``mean=``; its value is the state's
    SSA value, resolved by the caller).

    A tensor operand with ``numbers`` may also be a number (``clamp``'s bounds): a value that
    folds to a number reaches the builder as an option of the parameter's name, a tensor as an
    operand; either may be given by keyword."""

    name: str
    parse: OptionParser | None = None
    default: Any = REQUIRED
    numbers: bool = False
    state: bool = False

    @property
    def is_tensor(self) -> bool:
        return self.parse is None and not self.state

    @property
    def positional(self) -> bool:
        """Tensors and required options may be given positionally; optional options only by keyword."""
        return self.is_tensor or (self.default is REQUIRED and not self.state)

    @property
    def keyword(self) -> bool:
        return not self.is_tensor or self.numbers


@dataclass(frozen=True)
class Opt:
    """An option's value and where it was written (the call itself for a default)."""

    value: Any
    loc: SourceLocation


Builder = Callable[[list[SSAValue], dict[str, Opt]], Operation]
"""Builds the op from the tensor operands (in parameter order) and the resolved options."""


@dataclass(frozen=True)
class Builtin:
    """A built-in: its parameters, whether it takes any number of tensors (``concat``), its builder."""

    name: str
    params: tuple[Param, ...]
    build: Builder
    variadic: bool = False

    @property
    def positional(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.positional)

    @property
    def keywords(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.keyword)

    def arity(self) -> tuple[int, int | None]:
        """(minimum, maximum) number of positional arguments; maximum None = unbounded.

        The minimum counts required tensors only: a required option may come by keyword.
        """
        if self.variadic:
            return 1, None
        pos = self.positional
        return sum(not p.keyword and p.default is REQUIRED for p in pos), len(pos)


# ---------------------------------------------------------------------------- builders


def _shape(v: SSAValue) -> tuple[int, ...]:
    assert isinstance(v.type, TensorType)
    return tuple(v.type.get_shape())


def resolve_padding(
    pad: str | tuple[int, int, int, int],
    x: tuple[int, ...],
    window: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    """Explicit ``(top, bottom, left, right)`` padding of an NHWC window op.

    ``same`` needs the input's H and W; for an input that is not rank 4 it resolves to zeros
    and the op itself reports the rank.
    """
    if pad == "valid" or (pad == "same" and len(x) != 4):
        return 0, 0, 0, 0
    if pad == "same":
        top, bottom = nn.same_padding(x[1], window[0], stride[0], dilation[0])
        left, right = nn.same_padding(x[2], window[1], stride[1], dilation[1])
        return top, bottom, left, right
    assert isinstance(pad, tuple)
    return pad


def _conv(cls: type[nn.Conv2DOp] | type[nn.BinConv2DOp], extra: Sequence[str] = ()) -> Builder:
    """conv2d / binconv2d: padding resolved with the filter's KH, KW and the dilation."""

    def build(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
        x, w = args
        stride, dilation = opts["stride"].value, opts["dilation"].value
        kernel = _shape(w)[:2] if len(_shape(w)) == 4 else (1, 1)
        pads = resolve_padding(opts["padding"].value, _shape(x), kernel, stride, dilation)  # type: ignore[arg-type]
        more = {k: opts[k].value for k in extra}
        return cls(x, w, stride=stride, padding=pads, dilation=dilation, **more)

    return build


def _conv_transpose(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    """conv2d_transpose: ``same`` gives ``Ho = H * sh`` with the padding conv2d(padding=same) uses
    on an input of size ``Ho`` (so conv2d maps ``Ho`` back to ``H``); the output padding is what
    that size needs beyond the padded length, so none may be given with it."""
    x, w = args
    stride, dilation, extra = opts["stride"].value, opts["dilation"].value, opts["output_padding"].value
    kernel = _shape(w)[:2] if len(_shape(w)) == 4 else (1, 1)
    pad = opts["padding"].value
    if pad == "same" and len(_shape(x)) == 4:
        if extra != (0, 0):
            raise CompileError(opts["output_padding"].loc, "conv2d_transpose: output_padding cannot be given with padding=same, "
                               "whose output size is H * stride")
        n, h, wd, c = _shape(x)
        pads = resolve_padding("same", (n, h * stride[0], wd * stride[1], c), kernel, stride, dilation)
        extra = tuple(size * s - nn.transposed_out(size, k, s, d, lo, hi, 0)
                      for size, k, s, d, lo, hi in zip((h, wd), kernel, stride, dilation, pads[::2], pads[1::2]))
    else:
        pads = resolve_padding(pad, _shape(x), kernel, stride, dilation)
    return nn.Conv2DTransposeOp(x, w, stride=stride, padding=pads, dilation=dilation, output_padding=extra,
                                groups=opts["groups"].value)


def _pool(cls: type[nn.MaxPool2DOp] | type[nn.AvgPool2DOp]) -> Builder:
    """Pools: stride defaults to the window size; ``same`` padding uses the pool's dilation (1 for avg)."""

    def build(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
        (x,) = args
        size = opts["size"].value
        stride = opts["stride"].value or size
        dilation = opts["dilation"].value if "dilation" in opts else (1, 1)
        pads = resolve_padding(opts["padding"].value, _shape(x), size, stride, dilation)
        more = {k: opts[k].value for k in ("dilation", "count_pad") if k in opts}
        return cls(x, size=size, stride=stride, padding=pads, ceil_mode=opts["ceil_mode"].value, **more)

    return build


def _dense(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.DenseOp(*args)


def _bindense(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.BinDenseOp(*args, opts["mode"].value)


def _flatten(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    (x,) = args
    s = _shape(x)
    if not s:
        raise nn.ShapeError(f"flatten needs a tensor of rank >= 1, got {fmt_type(x.type)}")
    return nn.ReshapeOp(x, (s[0], math.prod(s[1:])))


def _reshape(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    """The one ``-1`` (if any) takes whatever the other dimensions leave."""
    (x,) = args
    asked = opts["shape"].value
    count, want = math.prod(_shape(x)), list(asked)
    if -1 in want:
        rest = -math.prod(want)
        if rest > 0 and count % rest == 0:
            want[want.index(-1)] = count // rest
    if -1 in want or math.prod(want) != count:
        raise nn.ShapeError(f"cannot reshape {fmt_type(x.type)} ({count} elements) to {nn.fmt(asked)}")
    return nn.ReshapeOp(x, want)


def _normalise_axis(axis: int, rank: int, x: SSAValue, loc: SourceLocation) -> int:
    if not -rank <= axis < rank:
        raise CompileError(loc, f"axis {axis} is out of range for {fmt_type(x.type)}")
    return axis % rank


def _concat(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    axis = opts["axis"]
    return nn.ConcatOp(args, _normalise_axis(axis.value, len(_shape(args[0])), args[0], axis.loc))


def _reduce(cls: type[nn.SumOp] | type[nn.MeanOp] | type[nn.MaxOp] | type[nn.MinOp]) -> Builder:
    """sum/mean/max/min: ``axis=None`` reduces every axis (to a scalar)."""

    def build(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
        (x,) = args
        rank, axis = len(_shape(x)), opts["axis"]
        if axis.value is None:
            return cls(x, range(rank))
        chosen = [_normalise_axis(a, rank, x, axis.loc) for a in axis.value]
        for k, a in enumerate(chosen):
            if a in chosen[:k]:
                first = axis.value[chosen.index(a)]
                raise CompileError(axis.loc, f"axes {first} and {axis.value[k]} are the same axis of {fmt_type(x.type)}")
        return cls(x, chosen)

    return build


def _layernorm(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.LayerNormOp(*args, eps=opts["eps"].value, axes=opts["axes"].value)


def _batchnorm(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    """Without gamma and beta: the constants 1 and 0 (no affine); with mean= and var=: running
    statistics (momentum only means something then)."""
    if len(args) == 2:
        raise nn.ShapeError("batchnorm: gamma and beta go together (give both, or neither for no affine parameters)")
    x, *affine = args
    if not affine:
        elt = x.type.get_element_type()  # type: ignore[attr-defined]
        affine = [nn.ConstantOp(1.0, elt).results[0], nn.ConstantOp(0.0, elt).results[0]]
    mean, var, momentum = opts["mean"], opts["var"], opts["momentum"]
    if (mean.value is None) != (var.value is None):
        given = mean if var.value is None else var
        raise CompileError(given.loc, "batchnorm: mean= and var= go together (the running statistics)")
    if mean.value is None:
        if momentum.value is not None:
            raise CompileError(momentum.loc, "batchnorm: momentum= needs the running statistics it updates (mean= and var=)")
        return nn.BatchNormOp(x, *affine, eps=opts["eps"].value)
    rate = 0.1 if momentum.value is None else momentum.value
    return nn.RunningBatchNormOp(x, *affine, mean.value, var.value, eps=opts["eps"].value, momentum=rate)


def _transpose(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.TransposeOp(args[0], opts["perm"].value)


def _broadcast_to(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.BroadcastToOp(args[0], opts["shape"].value)


def _slice(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    """Python's slicing (negative start/stop from the end, clamped) on the axis; an empty result
    is an error, as a size-0 dimension is."""
    shape = _shape(args[0])
    axis = _normalise_axis(opts["axis"].value, len(shape), args[0], opts["axis"].loc)
    step = opts["step"].value
    if step == 0:
        raise CompileError(opts["step"].loc, "slice step cannot be 0")
    picked = range(*slice(opts["start"].value, opts["stop"].value, step).indices(shape[axis]))
    if not picked:
        raise CompileError(opts["axis"].loc, f"start={opts['start'].value} stop={opts['stop'].value} step={step} selects nothing "
                           f"of axis {axis} (size {shape[axis]})")
    return nn.SliceOp(args[0], axis, picked.start, step, len(picked))


def _upsample(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.UpsampleOp(args[0], opts["scale"].value, opts["mode"].value)


def _gelu(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.GeluOp(args[0], opts["approximate"].value)


def _clamp(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    """Number bounds make `nn.clamp` (lo <= hi checked); a tensor bound makes `nn.clamp_tensor`,
    the other bound, if a number, a scalar constant of x's element type."""
    x, *tensors = args
    if "lo" in opts and "hi" in opts:
        return nn.ClampOp(x, lo=opts["lo"].value, hi=opts["hi"].value)
    assert isinstance(x.type, TensorType)
    elt = x.type.get_element_type()
    lo, hi = (nn.ConstantOp(opts[k].value, elt).results[0] if k in opts else tensors.pop(0) for k in ("lo", "hi"))
    return nn.ClampTensorOp(x, lo, hi)


def _pad(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
    return nn.PadOp(args[0], opts["pads"].value, opts["value"].value)


def _activation(cls: type[nn.ActivationOp]) -> Builder:
    """An elementwise op with number options, given to it by name."""

    def build(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
        return cls(*args, **{name: opts[name].value for name in cls.OPTIONS})

    return build


def _operands(cls: type[Operation]) -> Builder:
    """An op whose constructor takes just the tensor operands."""

    def build(args: list[SSAValue], opts: dict[str, Opt]) -> Operation:
        return cls(*args)  # type: ignore[call-arg]

    return build


# ---------------------------------------------------------------------------- the table

X = Param("x")
CONV_OPTIONS = (Param("stride", pair, (1, 1)), Param("padding", padding, "valid"), Param("dilation", pair, (1, 1)),
                Param("groups", positive_int, 1))
POOL_PARAMS = (X, Param("size", pair), Param("stride", pair, None), Param("padding", padding, "valid"))


def _table() -> dict[str, Builtin]:
    entries = [
        Builtin("conv2d", (X, Param("w"), *CONV_OPTIONS), _conv(nn.Conv2DOp, ("groups",))),
        Builtin(
            "binconv2d",
            (X, Param("w"), *CONV_OPTIONS, Param("mode", enum("xnor", "bwn"), "xnor"), Param("pad_value", int_choice(0, 1, -1), 0)),
            _conv(nn.BinConv2DOp, ("mode", "pad_value", "groups")),
        ),
        Builtin("conv2d_transpose", (X, Param("w"), Param("stride", pair, (1, 1)), Param("padding", padding, "valid"),
                                     Param("output_padding", non_negative_pair, (0, 0)), Param("dilation", pair, (1, 1)),
                                     Param("groups", positive_int, 1)), _conv_transpose),
        Builtin("dense", (X, Param("w"), Param("b", None, None)), _dense),
        Builtin("bindense", (X, Param("w"), Param("mode", enum("xnor", "bwn"), "xnor")), _bindense),
        Builtin("matmul", (Param("a"), Param("b")), _operands(nn.MatmulOp)),
        Builtin("maxpool2d", (*POOL_PARAMS, Param("dilation", pair, (1, 1)), Param("ceil_mode", boolean, False)),
                _pool(nn.MaxPool2DOp)),
        Builtin("avgpool2d", (*POOL_PARAMS, Param("ceil_mode", boolean, False), Param("count_pad", boolean, False)),
                _pool(nn.AvgPool2DOp)),
        Builtin("flatten", (X,), _flatten),
        Builtin("reshape", (X, Param("shape", shape)), _reshape),
        Builtin("concat", (Param("axis", integer, -1),), _concat, variadic=True),
        Builtin("sum", (X, Param("axis", axes, None)), _reduce(nn.SumOp)),
        Builtin("mean", (X, Param("axis", axes, None)), _reduce(nn.MeanOp)),
        Builtin("max", (X, Param("axis", axes, None)), _reduce(nn.MaxOp)),
        Builtin("min", (X, Param("axis", axes, None)), _reduce(nn.MinOp)),
        Builtin("maximum", (Param("a"), Param("b")), _operands(nn.MaximumOp)),
        Builtin("minimum", (Param("a"), Param("b")), _operands(nn.MinimumOp)),
        Builtin("pow", (Param("a"), Param("b")), _operands(nn.PowOp)),
        Builtin("softmax", (X,), _operands(nn.SoftmaxOp)),
        Builtin("log_softmax", (X,), _operands(nn.LogSoftmaxOp)),
        Builtin("batchnorm", (X, Param("gamma", None, None), Param("beta", None, None), Param("eps", positive_number, 1e-5),
                              Param("mean", None, None, state=True), Param("var", None, None, state=True),
                              Param("momentum", fraction, None)), _batchnorm),
        Builtin("layernorm", (X, Param("gamma"), Param("beta"), Param("eps", positive_number, 1e-5),
                              Param("axes", positive_int, 1)), _layernorm),
        Builtin("bce_logits", (Param("z"), Param("target")), _operands(nn.BCELogitsOp)),
        Builtin("mse", (Param("pred"), Param("target")), _operands(nn.MSEOp)),
        Builtin("bce", (Param("pred"), Param("target")), _operands(nn.BCEOp)),
        Builtin("softmax_cross_entropy", (Param("logits"), Param("onehot")), _operands(nn.SoftmaxCrossEntropyOp)),
        Builtin("kl_normal", (Param("mu"), Param("logvar")), _operands(nn.KLNormalOp)),
    ]
    entries += [Builtin(name, (X,), _operands(cls)) for name, cls in nn.UNARY.items()]
    entries += [
        Builtin("transpose", (X, Param("perm", int_list)), _transpose),
        Builtin("broadcast_to", (X, Param("shape", shape)), _broadcast_to),
        Builtin("slice", (X, Param("axis", integer), Param("start", optional_int, None),
                          Param("stop", optional_int, None), Param("step", integer, 1)), _slice),
        Builtin("pad", (X, Param("pads", int_list), Param("value", number, 0.0)), _pad),
        Builtin("upsample2d", (X, Param("scale", pair), Param("mode", enum("nearest", "bilinear"), "nearest")), _upsample),
        Builtin("leaky_relu", (X, Param("alpha", number, 0.01)), _activation(nn.LeakyReluOp)),
        Builtin("elu", (X, Param("alpha", number, 1.0)), _activation(nn.EluOp)),
        Builtin("softplus", (X, Param("beta", number, 1.0), Param("threshold", number, 20.0)), _activation(nn.SoftplusOp)),
        Builtin("hardtanh", (X, Param("lo", number, -1.0), Param("hi", number, 1.0)), _activation(nn.HardtanhOp)),
        Builtin("clamp", (X, Param("lo", numbers=True), Param("hi", numbers=True)), _clamp),
        Builtin("gelu", (X, Param("approximate", enum("none", "tanh"), "none")), _gelu),
    ]
    return {b.name: b for b in entries}


BUILTINS: dict[str, Builtin] = _table()
"""Every built-in operation by name."""
