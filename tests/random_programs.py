"""A seeded generator of random valid mlc models, for differential tests (mlc vs PyTorch).

    m = generate(seed)          # GeneratedModel: .text, .dtype, .output_shapes
    m = generate(seed, "f32")

Each model is a chain of 1..6 random steps from one input (an NHWC image, a matrix or a small
rank-1/3 tensor), mixing every built-in (convolutions with random stride/dilation/padding,
binary convolutions, pools, upsampling, dense/matmul, reshapes, concatenations, every unary op,
clamps with tensor bounds, broadcasting binary ops with tensors and literals, reductions, softmaxes, batchnorm with batch or running statistics) and small custom `op`s in
index notation. The first output is a scalar `loss` (a reduction or a loss op); some
intermediate values are extra outputs.

Shapes are tracked here with this file's own formulas (not mlc's), so the test can also check
the compiled program's output shapes. Values are kept numerically sane by a rough typical
magnitude (`scale`) per value: `exp` only of small values, `log`/`sqrt` only of positive
expressions, divisions only by expressions bounded away from 0, a `tanh` or a rescale when the
magnitude grows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

Shape = tuple[int, ...]

MAX_ELEMENTS = 160
"""The largest tensor a step may produce: keeps programs (and their C) small."""


@dataclass(frozen=True)
class GeneratedModel:
    seed: int
    dtype: str
    text: str
    output_shapes: dict[str, Shape]


@dataclass(frozen=True)
class Value:
    """An expression (a name, a call or a parenthesised expression: safe as an operand), its
    shape and a rough typical magnitude of its elements."""

    text: str
    shape: Shape
    scale: float = 1.0

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def generate(seed: int, dtype: str = "f64") -> GeneratedModel:
    """A random valid model; the same seed and dtype always give the same text."""
    return _Builder(seed, dtype).model()


# ---------------------------------------------------------------------------------------------
def window_out(size: int, k: int, stride: int, dilation: int, lo: int, hi: int, ceil: bool = False) -> int:
    """LANGUAGE.md: floor((H + pt + pb - d*(K-1) - 1) / s) + 1; with ceil_mode the ceiling, less one
    when the last window would start in the bottom padding."""
    if not ceil:
        return (size + lo + hi - dilation * (k - 1) - 1) // stride + 1
    out = math.ceil((size + lo + hi - dilation * (k - 1) - 1) / stride) + 1
    return out - 1 if (out - 1) * stride >= size + lo else out


def tf_same(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """LANGUAGE.md's `same`: Ho = ceil(H / s), total pad split with the extra cell at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def _pair_text(p: tuple[int, int]) -> str:
    return str(p[0]) if p[0] == p[1] else f"({p[0]}, {p[1]})"


def _strip(text: str) -> str:
    """An expression without one pair of enclosing parentheses (for the right of `=`)."""
    if text.startswith("(") and text.endswith(")"):
        depth = 0
        for k, ch in enumerate(text):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0 and k < len(text) - 1:
                return text
        return text[1:-1]
    return text


@dataclass
class _Builder:
    seed: int
    dtype: str
    rng: random.Random = field(init=False)
    decls: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    bound: list[Value] = field(default_factory=list)
    extra_outputs: list[Value] = field(default_factory=list)
    counter: int = 0
    has_param: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed * 7919 + (1 if self.dtype == "f32" else 0))

    # -- declarations ------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def ty(self, shape: Shape) -> str:
        return f"{self.dtype}[{', '.join(map(str, shape))}]"

    def input(self, shape: Shape) -> Value:
        name = self.fresh("x")
        self.decls.append(f"  input {name}: {self.ty(shape)}")
        return Value(name, shape, 0.6)

    def param(self, shape: Shape, kind: str = "weight") -> Value:
        """A parameter with a random initialiser; `kind` is weight, bias, gamma or vector."""
        init, rms = self._init(shape, kind)
        name = self.fresh({"weight": "w", "bias": "b", "gamma": "g", "vector": "v"}[kind])
        self.decls.append(f"  param {name}: {self.ty(shape)}" + (f" = {init}" if init else ""))
        self.has_param = True
        return Value(name, shape, rms)

    def state(self, shape: Shape, kind: str) -> Value:
        """A state with a random initialiser: a running `mean` (any sign) or `var` (positive)."""
        init = self.rng.choice({"mean": [None, "zeros", "normal(0.3)"], "var": ["ones", "uniform(0.5, 1.5)"]}[kind])
        name = self.fresh({"mean": "m", "var": "s"}[kind])
        self.decls.append(f"  state {name}: {self.ty(shape)}" + (f" = {init}" if init else ""))
        return Value(name, shape, 1.0)

    def _init(self, shape: Shape, kind: str) -> tuple[str | None, float]:
        r = self.rng
        if kind == "bias":
            return r.choice([(None, 0.0), ("zeros", 0.0), ("normal(0.1)", 0.1), ("uniform(-0.2, 0.2)", 0.12)])
        if kind == "gamma":
            return r.choice([("ones", 1.0), ("uniform(0.5, 1.5)", 1.0), ("normal(1)", 1.0)])
        if kind == "vector":
            return r.choice([("normal(0.5)", 0.5), ("uniform(-1, 1)", 0.6), ("glorot", 0.6)])
        fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (math.prod(shape[:-1]), math.prod(shape[:-2]) * shape[-1])
        glorot = math.sqrt(2.0 / (fan_in + fan_out))
        default = None if len(shape) >= 2 else "glorot"
        return r.choice([(default, glorot), ("glorot", glorot), ("normal(0.3)", 0.3), ("uniform(-0.5, 0.5)", 0.29)])

    def bind(self, v: Value) -> Value:
        """`tK = EXPR`; later steps may reuse the name."""
        if v.text.isidentifier():
            return v
        name = self.fresh("t")
        self.lines.append(f"  {name} = {_strip(v.text)}")
        bound = Value(name, v.shape, v.scale)
        self.bound.append(bound)
        return bound

    def literal(self, choices: tuple[float, ...] = (0.5, 2, 1.5, 0.25, 3, 0.1)) -> str:
        return str(self.rng.choice(choices))

    # -- the model ---------------------------------------------------------------------------
    def model(self) -> GeneratedModel:
        v = self.start()
        for _ in range(self.rng.randint(1, 6)):
            v = self.step(v)
            if self.rng.random() < 0.6 or len(v.text) > 70:
                v = self.bind(v)
            if v.text.isidentifier() and v.rank and self.rng.random() < 0.12 and len(self.extra_outputs) < 2:
                self.extra_outputs.append(v)
        if not self.has_param or self.rng.random() < 0.15:
            v = self.with_bias(v)
        loss = self.loss(v)
        self.lines.append(f"  loss = {_strip(loss)}")
        outputs = ["loss", *dict.fromkeys(o.text for o in self.extra_outputs)]
        self.lines.append(f"  output {', '.join(outputs)}")
        shapes = {"loss": ()} | {o.text: o.shape for o in self.extra_outputs}
        body = "\n".join(self.decls + self.lines)
        text = "".join(self.ops) + f"model random_{self.seed} {{\n{body}\n}}\n"
        return GeneratedModel(self.seed, self.dtype, text, shapes)

    def start(self) -> Value:
        r = self.rng
        kind = r.choices(["image", "matrix", "other"], weights=[6, 3, 1])[0]
        if kind == "image":
            return self.input((r.randint(1, 3), r.randint(3, 7), r.randint(3, 7), r.randint(1, 3)))
        if kind == "matrix":
            return self.input((r.randint(1, 4), r.randint(2, 9)))
        return self.input(r.choice([(r.randint(2, 9),), (r.randint(1, 3), r.randint(2, 4), r.randint(2, 5))]))

    def step(self, v: Value) -> Value:
        """One random applicable transformation, then a rescale if the magnitude grew."""
        kinds = [k for k in STEPS.values() if k.applies(v)]
        weights = [k.weight for k in kinds]
        for _ in range(30):
            out = self.rng.choices(kinds, weights=weights)[0].fn(self, v)
            if out is not None and 0 < out.size <= MAX_ELEMENTS:
                return self.tame(out)
        return self.tame(self.unary(v))

    def tame(self, v: Value) -> Value:
        if v.scale <= 6:
            return v
        if self.rng.random() < 0.5:
            return Value(f"tanh({_strip(v.text)})", v.shape, 1.0)
        k = max(2, round(v.scale))
        return Value(f"({v.text} / {k})", v.shape, v.scale / k)

    def with_bias(self, v: Value) -> Value:
        if v.rank == 0:
            v = Value(f"reshape({_strip(v.text)}, (1,))", (1,), v.scale)
        b = self.param(v.shape[-1:], "bias")
        return Value(f"({v.text} + {b.text})", v.shape, v.scale + b.scale)

    # -- losses ------------------------------------------------------------------------------
    def loss(self, v: Value) -> str:
        r = self.rng
        if v.rank == 0:
            return r.choice([v.text, f"({v.text} * {v.text})"])
        small = v if v.scale <= 2 else Value(f"tanh({_strip(v.text)})", v.shape, 1.0)
        choices: list[Callable[[], str]] = [
            lambda: f"mean({_strip(v.text)})",
            lambda: f"sum({_strip(v.text)})",
            lambda: f"mean({v.text} * {v.text})",
            lambda: f"mse({_strip(v.text)}, {self.input(v.shape).text})",
            lambda: f"bce(sigmoid({_strip(small.text)}), sigmoid({self.input(v.shape).text}))",
            lambda: f"kl_normal({_strip(v.text)}, tanh({_strip(v.text)}))",
            lambda: f"bce_logits({_strip(v.text)}, sigmoid({self.input(v.shape).text}))",
            lambda: f"softmax_cross_entropy({self.as_matrix(v).text}, softmax({self.input(self.as_matrix(v).shape).text}))",
            lambda: f"mse({_strip(v.text)}, {self.input(v.shape).text}) + 0.1 * kl_normal({_strip(small.text)}, {small.text} * 0.5)",
        ]
        return r.choice(choices)()

    def as_matrix(self, v: Value) -> Value:
        """A rank-2 view: flatten for rank >= 3, a row for rank 1."""
        if v.rank == 2:
            return v
        if v.rank == 1:
            return Value(f"reshape({_strip(v.text)}, (1, -1))", (1, v.shape[0]), v.scale)
        return Value(f"flatten({_strip(v.text)})", (v.shape[0], math.prod(v.shape[1:])), v.scale)

    # -- steps used by other steps ------------------------------------------------------------
    def unary(self, v: Value) -> Value:
        r, t = self.rng, _strip(v.text)
        name = r.choice(["relu", "sigmoid", "tanh", "abs", "sign", "neg", "minus", "exp", "log", "sqrt", "square", "silu",
                         "softplus", "leaky_relu", "elu", "hardtanh", "clamp", "clamp_tensor", "erf", "gelu"])
        if name == "clamp_tensor":
            if v.rank:
                return self.clamp_between(v)
            name = "clamp"  # a scalar gets number bounds
        if name == "gelu":
            return Value(f"gelu({t}{r.choice(['', '', ', approximate=tanh', ', approximate=none'])})", v.shape, v.scale)
        if name == "square":
            return Value(f"square({t})", v.shape, v.scale * v.scale) if v.scale <= 2 else Value(f"square(tanh({t}))", v.shape, 1.0)
        if name in ("leaky_relu", "elu", "hardtanh", "clamp"):
            call, scale = {"leaky_relu": (f"leaky_relu({t}, alpha=0.1)", v.scale), "elu": (f"elu({t}, alpha=0.5)", v.scale),
                           "hardtanh": (f"hardtanh({t})", min(v.scale, 1.0)),
                           "clamp": (f"clamp({t}, -0.5, 0.75)", min(v.scale, 0.75))}[name]
            return Value(call, v.shape, scale)
        if name == "exp":
            return Value(f"exp({t})", v.shape, math.exp(v.scale)) if v.scale <= 1.5 else Value(f"exp(tanh({t}))", v.shape, 2.0)
        if name == "log":
            arg = r.choice([f"abs({t}) + 0.5", f"sigmoid({t})", f"{v.text} * {v.text} + 1"])
            return Value(f"log({arg})", v.shape, 1.0 + math.log1p(v.scale))
        if name == "sqrt":
            arg = r.choice([f"abs({t}) + 0.1", f"{v.text} * {v.text} + 0.5"] + ([f"exp({t})"] if v.scale <= 2 else []))
            return Value(f"sqrt({arg})", v.shape, math.sqrt(v.scale) + 0.5)
        if name == "minus":
            return Value(f"(-{v.text})", v.shape, v.scale)
        scale = {"sigmoid": 0.5, "tanh": min(v.scale, 1.0), "sign": 1.0, "softplus": v.scale + 0.7, "erf": 1.0}.get(name, v.scale)
        return Value(f"{name}({t})", v.shape, scale)

    def clamp_between(self, v: Value) -> Value:
        """`clamp` with a tensor bound or two (inputs or parameters of shapes that broadcast to
        v's; sometimes lo > hi), the other maybe a number: positionally, the tensors shifted to
        centre on -0.5 and 0.5, or by keyword (whose values are names or numbers) as they are."""
        r = self.rng
        kinds = r.choice([("tensor", "tensor"), ("number", "tensor"), ("tensor", "number")])
        by_keyword = r.random() < 0.5
        bounds = []
        for kind, centre in zip(kinds, (-0.5, 0.5)):
            if kind == "number":
                bounds.append(str(centre))
                continue
            shape = list(v.shape[r.randint(0, v.rank - 1):]) if r.random() < 0.5 else list(v.shape)
            shape = [1 if r.random() < 0.4 else d for d in shape]
            source = self.param(tuple(shape), "vector") if r.random() < 0.5 else self.input(tuple(shape))
            bounds.append(source.text if by_keyword else f"{source.text} {'-' if centre < 0 else '+'} 0.5")
        args = f"lo={bounds[0]}, hi={bounds[1]}" if by_keyword else ", ".join(bounds)
        return Value(f"clamp({_strip(v.text)}, {args})", v.shape, min(v.scale, 1.6))


# ---------------------------------------------------------------------------------------------
# Steps: (builder, value) -> value, or None when the random choice does not fit
# ---------------------------------------------------------------------------------------------
Step = Callable[[_Builder, Value], "Value | None"]


@dataclass(frozen=True)
class StepKind:
    """A step, how often to pick it, and which values it applies to."""

    fn: Step
    weight: float
    applies: Callable[[Value], bool]


STEPS: dict[str, StepKind] = {}


def step(name: str, weight: float, applies: Callable[[Value], bool] = lambda v: v.rank >= 1) -> Callable[[Step], Step]:
    """Register the decorated function as the step `name`."""

    def register(fn: Step) -> Step:
        STEPS[name] = StepKind(fn, weight, applies)
        return fn

    return register


def _is_image(v: Value) -> bool:
    return v.rank == 4


def _padding(b: _Builder, h: int, w: int, k: tuple[int, int], stride: tuple[int, int], dil: tuple[int, int], below_k: bool):
    """(keyword text or None for the default, explicit pads); `below_k` keeps each pad < the
    window (pools: every window must hold a real cell)."""
    r = b.rng
    kind = r.choice(["valid", "default", "same", "same", "int", "tuple"])
    if kind in ("valid", "default"):
        return (None if kind == "default" else "valid"), (0, 0, 0, 0)
    if kind == "same":
        return "same", (*tf_same(h, k[0], stride[0], dil[0]), *tf_same(w, k[1], stride[1], dil[1]))
    limit_h, limit_w = (k[0] - 1, k[1] - 1) if below_k else (2, 2)
    if kind == "int":
        p = r.randint(0, min(limit_h, limit_w))
        return str(p), (p, p, p, p)
    pads = (r.randint(0, limit_h), r.randint(0, limit_h), r.randint(0, limit_w), r.randint(0, limit_w))
    return str(pads), pads


def _window_args(b: _Builder, v: Value, k: tuple[int, int], pool: bool, ceil: bool = False):
    """Random stride/dilation/padding keywords and the output (H, W), None when empty.

    Convolutions: stride and dilation default to 1. Pools: no dilation, the stride defaults
    to the window size, and every pad is below the window (each window holds a real cell)."""
    r = b.rng
    _, h, w, _ = v.shape
    default = k if pool else (1, 1)
    stride = r.choice([default, default, (1, 1), (2, 2), (1, 2), (2, 1), (3, 3)])
    dil = (1, 1) if pool else r.choice([(1, 1), (1, 1), (2, 2), (2, 1)])
    pad_kw, pads = _padding(b, h, w, k, stride, dil, pool)
    ho = window_out(h, k[0], stride[0], dil[0], pads[0], pads[1], ceil)
    wo = window_out(w, k[1], stride[1], dil[1], pads[2], pads[3], ceil)
    kws = []
    if stride != default or r.random() < 0.3:
        kws.append(f"stride={_pair_text(stride)}")
    if pad_kw is not None:
        kws.append(f"padding={pad_kw}")
    if dil != (1, 1) or (not pool and r.random() < 0.2):
        kws.append(f"dilation={_pair_text(dil)}")
    return kws, ((ho, wo) if ho >= 1 and wo >= 1 else None)


@step("conv2d", 6, _is_image)
def _conv2d(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    n, _, _, c = v.shape
    k, f = (r.randint(1, 3), r.randint(1, 3)), r.randint(1, 4)
    kws, out = _window_args(b, v, k, pool=False)
    if out is None:
        return None
    groups = r.choice([g for g in range(2, c + 1) if c % g == 0] or [1]) if r.random() < 0.3 else 1
    if groups > 1:
        f = groups * r.randint(1, 2)
        kws.append(f"groups={groups}")
    w = b.param((*k, c // groups, f))
    y = Value(f"conv2d({', '.join([_strip(v.text), w.text, *kws])})", (n, *out, f), v.scale * w.scale * math.sqrt(k[0] * k[1] * c))
    if r.random() < 0.5:
        bias = b.param((f,), "bias")
        y = Value(f"({y.text} + {bias.text})", y.shape, y.scale + bias.scale)
    if r.random() < 0.5:
        y = Value(f"{r.choice(['relu', 'tanh', 'sigmoid'])}({_strip(y.text)})", y.shape, min(y.scale, 1.0))
    return y


def transposed_out(size: int, k: int, stride: int, dilation: int, lo: int, hi: int, extra: int) -> int:
    """LANGUAGE.md: (H-1)*s - pt - pb + d*(K-1) + 1 + output_padding."""
    return (size - 1) * stride - lo - hi + dilation * (k - 1) + 1 + extra


@step("conv2d_transpose", 3, _is_image)
def _conv2d_transpose(b: _Builder, v: Value) -> Value | None:
    """Output padding below max(stride, dilation) per dim; `same` is H * s (no output padding)."""
    r = b.rng
    n, h, w, c = v.shape
    k = (r.randint(1, 3), r.randint(1, 3))
    stride = r.choice([(1, 1), (2, 2), (2, 2), (1, 2), (2, 1), (3, 3)])
    dil = r.choice([(1, 1), (1, 1), (2, 2), (1, 2)])
    kws = [f"stride={_pair_text(stride)}"] if stride != (1, 1) or r.random() < 0.2 else []
    kind = r.choice(["valid", "default", "same", "same", "int", "tuple"])
    extra = (0, 0)
    if kind == "same":
        kws.append("padding=same")
        out = (h * stride[0], w * stride[1])
    else:
        pads: tuple[int, ...] = (0, 0, 0, 0)
        if kind == "valid":
            kws.append("padding=valid")
        elif kind == "int":
            pads = (r.randint(0, 2),) * 4
            kws.append(f"padding={pads[0]}")
        elif kind == "tuple":
            pads = tuple(r.randint(0, 2) for _ in range(4))
            kws.append(f"padding={pads}")
        if r.random() < 0.4:
            extra = (r.randrange(max(stride[0], dil[0])), r.randrange(max(stride[1], dil[1])))
            kws.append(f"output_padding={_pair_text(extra)}")
        out = (transposed_out(h, k[0], stride[0], dil[0], pads[0], pads[1], extra[0]),
               transposed_out(w, k[1], stride[1], dil[1], pads[2], pads[3], extra[1]))
    if min(out) < 1:
        return None
    if dil != (1, 1):
        kws.append(f"dilation={_pair_text(dil)}")
    groups = r.choice([g for g in range(2, c + 1) if c % g == 0] or [1]) if r.random() < 0.3 else 1
    per_group = r.randint(1, 2) if groups > 1 else r.randint(1, 3)
    if groups > 1:
        kws.append(f"groups={groups}")
    wt = b.param((*k, per_group, c))
    taps = max(1, k[0] * k[1] // (stride[0] * stride[1]))
    return Value(f"conv2d_transpose({', '.join([_strip(v.text), wt.text, *kws])})", (n, *out, groups * per_group),
                 v.scale * wt.scale * math.sqrt(taps * c))


@step("binconv2d", 7, _is_image)
def _binconv2d(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    n, _, _, c = v.shape
    k, f = (r.randint(1, 3), r.randint(1, 3)), r.randint(1, 3)
    kws, out = _window_args(b, v, k, pool=False)
    if out is None:
        return None
    mode = r.choice(["xnor", "xnor", "bwn"])
    if mode == "bwn" or r.random() < 0.5:
        kws.append(f"mode={mode}")
    if mode == "xnor" and r.random() < 0.7:
        kws.append(f"pad_value={r.choice([0, 1, -1])}")
    w = b.param((*k, c, f))
    scale = v.scale * w.scale * math.sqrt(k[0] * k[1] * c) * 1.5
    return Value(f"binconv2d({', '.join([_strip(v.text), w.text, *kws])})", (n, *out, f), scale)


@step("pool", 6, _is_image)
def _pool(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    n, _, _, c = v.shape
    size = r.choice([(2, 2), (2, 2), (3, 3), (2, 3), (3, 2), (1, 2)])
    ceil = r.random() < 0.3
    kws, out = _window_args(b, v, size, pool=True, ceil=ceil)
    if out is None:
        return None
    kind = r.choice(["max", "avg"])
    kws += ["ceil_mode=true"] if ceil else []
    kws += ["count_pad=true"] if kind == "avg" and r.random() < 0.3 else []
    args = ", ".join([_strip(v.text), f"size={_pair_text(size)}", *kws])
    return Value(f"{kind}pool2d({args})", (n, *out, c), v.scale)


@step("flatten", 1, lambda v: v.rank >= 3)
def _flatten(b: _Builder, v: Value) -> Value | None:
    return Value(f"flatten({_strip(v.text)})", (v.shape[0], math.prod(v.shape[1:])), v.scale)


@step("reshape", 2, lambda v: v.rank >= 1)
def _reshape(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    dims: list[int] = []
    rest = v.size
    for _ in range(r.randint(0, 3)):
        divisors = [d for d in range(1, rest + 1) if rest % d == 0 and d <= 9]
        d = r.choice(divisors)
        dims.append(d)
        rest //= d
    dims.append(rest)
    r.shuffle(dims)
    written = list(dims)
    if r.random() < 0.4:
        written[r.randrange(len(written))] = -1
    text = f"({written[0]},)" if len(written) == 1 else f"({', '.join(map(str, written))})"
    return Value(f"reshape({_strip(v.text)}, {text})", tuple(dims), v.scale)


@step("upsample2d", 2, _is_image)
def _upsample2d(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    scale = r.choice([2, 2, 3, (1, 2), (2, 1), (3, 2), (1, 3)])
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    mode = r.choice(["", ", mode=nearest", ", mode=bilinear", ", mode=bilinear"])
    n, h, w, c = v.shape
    return Value(f"upsample2d({_strip(v.text)}, {scale}{mode})", (n, h * sh, w * sw, c), v.scale)


@step("transpose", 1, lambda v: v.rank >= 2)
def _transpose(b: _Builder, v: Value) -> Value | None:
    perm = list(range(v.rank))
    b.rng.shuffle(perm)
    return Value(f"transpose({_strip(v.text)}, ({', '.join(map(str, perm))}))", tuple(v.shape[p] for p in perm), v.scale)


@step("slice", 1)
def _slice(b: _Builder, v: Value) -> Value | None:
    """A Python slice of one axis (negative bounds and steps included) that keeps something."""
    r = b.rng
    axis = r.randrange(-v.rank, v.rank)
    size = v.shape[axis]
    start, stop = r.choice([None, r.randint(-size, size)]), r.choice([None, r.randint(-size - 1, size + 1)])
    step = r.choice([1, 1, 2, 3, -1, -2])
    picked = range(size)[slice(start, stop, step)]
    if not picked:
        return None
    keywords = [f"axis={axis}"] + [f"{k}={x}" for k, x in (("start", start), ("stop", stop)) if x is not None]
    keywords += [f"step={step}"] if step != 1 else []
    shape = list(v.shape)
    shape[axis] = len(picked)
    return Value(f"slice({_strip(v.text)}, {', '.join(keywords)})", tuple(shape), v.scale)


@step("pad", 1)
def _pad(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    pairs = [(r.randint(0, 2), r.randint(0, 2)) for _ in range(r.randint(1, min(v.rank, 2)))]
    shape = tuple(d + sum(pairs[k]) if k < len(pairs) else d for k, d in enumerate(v.shape))
    value = r.choice(["", "", ", value=0.5", ", value=-1"])
    return Value(f"pad({_strip(v.text)}, ({', '.join(str(x) for pair in pairs for x in pair)}){value})", shape, v.scale)


@step("concat", 2)
def _concat(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    axis = r.randrange(-v.rank, v.rank)
    kind = r.choice(["input", "self", "unary"])
    if kind == "input":
        shape = list(v.shape)
        shape[axis] = r.randint(1, 3)
        other = b.input(tuple(shape))
    elif kind == "self":
        other = v
    else:
        other = b.unary(v)
    shape = list(v.shape)
    shape[axis] += other.shape[axis]
    axis_kw = "" if axis == -1 and r.random() < 0.5 else f", axis={axis}"
    return Value(f"concat({_strip(v.text)}, {_strip(other.text)}{axis_kw})", tuple(shape), max(v.scale, other.scale))


@step("unary", 5)
def _unary(b: _Builder, v: Value) -> Value | None:
    return b.unary(v)


@step("binary", 6)
def _binary(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    kind = r.choice(["bias", "scale", "literal", "literal", "same", "broadcast", "outer", "divide"])
    if kind == "bias":
        p = b.param(v.shape[-1:], "bias")
        return Value(f"({v.text} + {p.text})", v.shape, v.scale + p.scale)
    if kind == "scale":
        p = b.param(v.shape[-1:], "gamma")
        return Value(f"({v.text} * {p.text})", v.shape, v.scale * 1.5)
    if kind == "literal":
        c = b.literal()
        form, scale = r.choice([
            (f"({c} * {v.text})", v.scale * float(c)), (f"({v.text} - {c})", v.scale + float(c)),
            (f"({c} - {v.text})", v.scale + float(c)), (f"({v.text} / {c})", v.scale / float(c)),
            (f"({v.text} + {c})", v.scale + float(c)),
        ])  # fmt: skip
        return Value(form, v.shape, scale)
    other = _operand_like(b, v, kind)
    if other is None:
        return None
    shape = _broadcast(v.shape, other.shape)
    if kind == "divide":
        return Value(f"({v.text} / (abs({_strip(other.text)}) + 1))", shape, v.scale)
    op = r.choice(["+", "-", "*"])
    scale = v.scale * other.scale if op == "*" else v.scale + other.scale
    return Value(f"({v.text} {op} {other.text})", shape, scale)


def _operand_like(b: _Builder, v: Value, kind: str) -> Value | None:
    """A second operand: an earlier value or a new input of the same or a broadcastable shape."""
    r = b.rng
    if kind == "same":
        reuse = [u for u in b.bound if u.shape == v.shape and u.text != v.text]
        if reuse and r.random() < 0.6:
            return r.choice(reuse)
        return b.unary(v) if r.random() < 0.4 else b.input(v.shape)
    if kind == "outer":
        if v.rank >= 3:
            return None
        return b.input((r.randint(2, 3), *([1] * v.rank)))
    shape = list(v.shape[r.randint(0, v.rank - 1) :]) if r.random() < 0.5 else list(v.shape)
    for k in range(len(shape)):
        if r.random() < 0.4:
            shape[k] = 1
    return b.input(tuple(shape))


def _broadcast(a: Shape, c: Shape) -> Shape:
    rank = max(len(a), len(c))
    pa, pc = (1,) * (rank - len(a)) + a, (1,) * (rank - len(c)) + c
    return tuple(max(x, y) for x, y in zip(pa, pc))


@step("reduce", 3, lambda v: v.rank >= 2)
def _reduce(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    axes = sorted(r.sample(range(v.rank), r.randint(1, v.rank - 1)))
    written = [a - v.rank if r.random() < 0.3 else a for a in axes]
    r.shuffle(written)
    axis_text = str(written[0]) if len(written) == 1 and r.random() < 0.6 else f"({', '.join(map(str, written))}{',' if len(written) == 1 else ''})"
    kind = r.choice(["sum", "mean", "sum", "mean", "max", "min"])
    count = math.prod(v.shape[a] for a in axes)
    shape = tuple(d for k, d in enumerate(v.shape) if k not in axes)
    return Value(f"{kind}({_strip(v.text)}, axis={axis_text})", shape, v.scale * (count if kind == "sum" else 1))


@step("softmax", 2)
def _softmax(b: _Builder, v: Value) -> Value | None:
    if b.rng.random() < 0.5:
        return Value(f"softmax({_strip(v.text)})", v.shape, 0.5)
    return Value(f"log_softmax({_strip(v.text)})", v.shape, 2 * v.scale + math.log(v.shape[-1]) + 0.5)


@step("batchnorm", 2, lambda v: v.rank >= 2)
def _batchnorm(b: _Builder, v: Value) -> Value | None:
    """Batch statistics, or (with two values per channel at least, as training mode needs)
    running statistics in states, with or without the affine parameters."""
    c, r = v.shape[-1], b.rng
    eps = r.choice(["", "", ", eps=0.001", ", eps=1e-3", ", eps=0.01"])
    running = math.prod(v.shape[:-1]) >= 2 and r.random() < 0.4
    affine = not running or r.random() < 0.7
    if affine:
        g, beta = b.param((c,), "gamma"), b.param((c,), "bias")
    stats = ""
    if running:
        mean, var = b.state((c,), "mean"), b.state((c,), "var")
        stats = f", mean={mean.text}, var={var.text}" + r.choice(["", ", momentum=0.3", ", momentum=1"])
    args = f", {g.text}, {beta.text}" if affine else ""
    return Value(f"batchnorm({_strip(v.text)}{args}{eps}{stats})", v.shape, 1.5 + (beta.scale if affine else 0.0) + 2.0 * running)


@step("layernorm", 1, lambda v: v.rank >= 2)
def _layernorm(b: _Builder, v: Value) -> Value | None:
    axes = b.rng.randint(1, v.rank - 1)
    normalised = v.shape[v.rank - axes:]
    g, beta = b.param(normalised, "gamma"), b.param(normalised, "bias")
    keywords = (f", axes={axes}" if axes > 1 or b.rng.random() < 0.3 else "") + b.rng.choice(["", ", eps=0.001"])
    return Value(f"layernorm({_strip(v.text)}, {g.text}, {beta.text}{keywords})", v.shape, 1.5 + beta.scale)


@step("dense", 4, lambda v: v.rank == 2)
def _dense(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    n, i = v.shape
    o = r.randint(1, 8)
    w = b.param((i, o))
    scale = v.scale * w.scale * math.sqrt(i)
    if r.random() < 0.6:
        bias = b.param((o,), "bias")
        return Value(f"dense({_strip(v.text)}, {w.text}, {bias.text})", (n, o), scale + bias.scale)
    return Value(f"dense({_strip(v.text)}, {w.text})", (n, o), scale)


@step("matmul", 2, lambda v: v.rank == 2)
def _matmul(b: _Builder, v: Value) -> Value | None:
    r = b.rng
    n, i = v.shape
    if r.random() < 0.5:
        m = b.param((i, r.randint(1, 6))) if r.random() < 0.7 else b.input((i, r.randint(1, 6)))
        return Value(f"matmul({_strip(v.text)}, {m.text})", (n, m.shape[1]), v.scale * m.scale * math.sqrt(i))
    m = b.param((r.randint(1, 5), n)) if r.random() < 0.7 else b.input((r.randint(1, 5), n))
    return Value(f"matmul({m.text}, {_strip(v.text)})", (m.shape[0], i), v.scale * m.scale * math.sqrt(n))


@step("custom", 5)
def _custom(b: _Builder, v: Value) -> Value | None:
    options = [t for t in CUSTOM_OPS if t.applies(v)]
    return b.rng.choice(options).build(b, v) if options else None


# ---------------------------------------------------------------------------------------------
# Custom ops in index notation: small templates over rank-2 [N, H] (or NHWC) operands
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CustomTemplate:
    """An op definition (`{name}`, `{T}` and the random constants filled in by `str.format`), the
    shapes of its extra tensor parameters and its result shape, from the operand's shape and
    the constants."""

    signature: str
    body: str
    result: Callable[[Shape, dict[str, int]], Shape]
    applies: Callable[[Value], bool] = lambda v: v.rank >= 1
    choices: Callable[[random.Random, Shape], dict[str, int]] = lambda r, s: {}
    extra: Callable[[Shape, dict[str, int]], list[Shape]] = lambda s, c: []
    scale: float = 2.0

    @property
    def on_images(self) -> bool:
        return self.signature.startswith("(x: {T}[N, H, W, C]")

    def build(self, b: _Builder, v: Value) -> Value | None:
        x = v if self.on_images else b.as_matrix(v)
        consts = self.choices(b.rng, x.shape)
        shape = self.result(x.shape, consts)
        if min(shape, default=1) < 1:
            return None
        name = b.fresh("op")
        fill = {"name": name, "T": b.dtype, **consts}
        b.ops.append(f"op {name}{self.signature.format(**fill)} {{\n  {self.body.format(**fill)}\n}}\n")
        args = [_strip(x.text)] + [b.param(s, "vector").text for s in self.extra(x.shape, consts)]
        return Value(f"{name}({', '.join(args)})", shape, max(x.scale, 1.0) * self.scale)


def _h_at_least(k: int) -> Callable[[Value], bool]:
    """The operand, as a matrix, has at least `k` columns."""

    def ok(v: Value) -> bool:
        return v.rank >= 1 and (v.shape[-1] if v.rank == 1 else math.prod(v.shape[1:])) >= k

    return ok


def _box_size(r: random.Random, s: Shape) -> dict[str, int]:
    k = r.randint(2, min(3, s[1], s[2]))
    return {"k": k, "kk": k * k}


def _images_at_least(k: int) -> Callable[[Value], bool]:
    return lambda v: v.rank == 4 and min(v.shape[1:3]) >= k


CUSTOM_OPS: list[CustomTemplate] = [
    CustomTemplate(  # shifts with zero fill
        "(x: {T}[N, H]) -> {T}[N, H]", "out[n, i] = x[n, i - {s}] + 0.5 * x[n, i + {t}]",
        lambda s, c: s, choices=lambda r, s: {"s": r.randint(1, 2), "t": r.randint(1, 2)},
    ),
    CustomTemplate(  # strided correlation with a filter parameter; the result dim is an expression
        "(x: {T}[N, H], w: {T}[K]) -> {T}[N, (H - K) / {s} + 1]", "out[n, i] = sum(k: K) x[n, {s} * i + k] * w[k]",
        lambda s, c: (s[0], (s[1] - c["k"]) // c["s"] + 1), _h_at_least(1),
        choices=lambda r, s: {"s": r.randint(1, 3), "k": r.randint(1, min(3, s[1]))},
        extra=lambda s, c: [(c["k"],)],
    ),
    CustomTemplate(  # upsampling by floor division
        "(x: {T}[N, H]) -> {T}[N, {u} * H]", "out[n, i] = x[n, i / {u}]",
        lambda s, c: (s[0], c["u"] * s[1]), choices=lambda r, s: {"u": r.randint(2, 3)}, scale=1.0,
    ),
    CustomTemplate(  # remainder and a flip
        "(x: {T}[N, H]) -> {T}[N, H]", "out[n, i] = x[n, i % {m}] - x[n, H - 1 - i]",
        lambda s, c: s, choices=lambda r, s: {"m": r.randint(2, 3)},
    ),
    CustomTemplate(  # a diagonal (zero beyond the columns)
        "(x: {T}[N, H]) -> {T}[N]", "out[i] = x[i, i] * 2.0", lambda s, c: (s[0],),
    ),
    CustomTemplate(  # a max hoisted out of an arithmetic expression, next to a sum
        "(x: {T}[N, H]) -> {T}[N]", "out[n] = 2.0 * (max(k: H) x[n, k]) + sum(j: H) relu(x[n, j])",
        lambda s, c: (s[0],), scale=6.0,
    ),
    CustomTemplate(  # a sliding max window (zero fill at the borders)
        "(x: {T}[N, H]) -> {T}[N, H]", "out[n, i] = max(k: 3) x[n, i + k - 1]", lambda s, c: s, scale=1.0,
    ),
    CustomTemplate(  # a max whose body uses the reduction variable as a value
        "(x: {T}[N, H]) -> {T}[N]", "out[n] = max(k: H) x[n, k] - k * 0.25", lambda s, c: (s[0],), scale=1.5,
    ),
    CustomTemplate(  # a sum of maxima: the inner reduction becomes its own compute op
        "(x: {T}[N, H]) -> {T}[N]", "out[n] = sum(a: 2) max(k: H - 1) x[n, a + k]",
        lambda s, c: (s[0],), _h_at_least(2),
    ),
    CustomTemplate(  # transpose
        "(x: {T}[N, H]) -> {T}[H, N]", "out[i, n] = x[n, i]", lambda s, c: (s[1], s[0]), scale=1.0,
    ),
    CustomTemplate(  # x @ y^T with a parameter
        "(x: {T}[N, H], y: {T}[J, H]) -> {T}[N, J]", "out[n, j] = sum(k: H) x[n, k] * y[j, k]",
        lambda s, c: (s[0], c["j"]), choices=lambda r, s: {"j": r.randint(1, 4)},
        extra=lambda s, c: [(c["j"], s[1])], scale=3.0,
    ),
    CustomTemplate(  # scalar functions, comparisons and select
        "(x: {T}[N, H]) -> {T}[N, H]",
        "out[n, i] = select(x[n, i] > 0.0, tanh(x[n, i]), exp(min(x[n, i], 0.0)) - 1.0) "
        "+ sigmoid(i * 0.5) * max(x[n, i], 0.1 * x[n, i]) + sqrt(abs(x[n, i]) + 1.0) * 0.5",
        lambda s, c: s,
    ),
    CustomTemplate(  # a reverse cumulative sum: a comparison of index variables
        "(x: {T}[N, H]) -> {T}[N, H]", "out[n, i] = sum(k: H) select(k >= i, x[n, k], 0.0)",
        lambda s, c: s, scale=4.0,
    ),
    CustomTemplate(  # a box filter on NHWC
        "(x: {T}[N, H, W, C]) -> {T}[N, H - {k} + 1, W - {k} + 1, C]",
        "out[n, i, j, c] = sum(a: {k}, b: {k}) x[n, i + a, j + b, c] / {kk}.0",
        lambda s, c: (s[0], s[1] - c["k"] + 1, s[2] - c["k"] + 1, s[3]), _images_at_least(2),
        choices=_box_size, scale=1.0,
    ),
    CustomTemplate(  # a strided 2x2 max pool on NHWC
        "(x: {T}[N, H, W, C]) -> {T}[N, H / 2, W / 2, C]", "out[n, i, j, c] = max(a: 2, b: 2) x[n, 2 * i + a, 2 * j + b, c]",
        lambda s, c: (s[0], s[1] // 2, s[2] // 2, s[3]), _images_at_least(2), scale=1.0,
    ),
    CustomTemplate(  # a channel mix on NHWC with a parameter
        "(x: {T}[N, H, W, C], m: {T}[C, D]) -> {T}[N, H, W, D]", "out[n, i, j, d] = sum(c: C) x[n, i, j, c] * m[c, d]",
        lambda s, c: (*s[:3], c["d"]), lambda v: v.rank == 4,
        choices=lambda r, s: {"d": r.randint(1, 3)}, extra=lambda s, c: [(s[3], c["d"])],
    ),
]
