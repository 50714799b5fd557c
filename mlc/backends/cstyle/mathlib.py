"""mlc's own `expf`, `logf`, `tanhf` and `erff`, in C, one algorithm for scalars and for vectors.

A vectorised loop must compute exactly what the same loop computes one element at a time, or a
schedule would change values. libm has no vector forms (and glibc's vector library rounds
differently from its scalar one), so mlc brings its own: each function below is written once,
as a branch-free sequence of IEEE operations (no fused multiply-adds, which the C flags forbid
the compiler to introduce), and printed once per width, for `float` and for `mlc_v<N>f32`. Every
lane of a vector then performs the scalar function's operations in the same order: the results
are bitwise equal. The algorithms are the classic ones (Cody and Waite's argument reduction and
short polynomials, as in the Cephes library), accurate to about one unit in the last place.

exp(x) = 2^n exp(r): n = round(x / ln 2), found by adding and subtracting 1.5 * 2^23 (which
  leaves n in the low bits of the sum); r = x - n ln 2 with ln 2 split in a part exact in 9 bits
  and the rest, so that n * hi is exact; exp(r) = 1 + r + r^2 P(r) on |r| <= ln 2 / 2; the scale
  by 2^n is two multiplications by 2^(n/2), exact and right in the subnormal range. Inputs
  beyond the range of f32 results give inf or 0; NaN gives NaN.
log(x) = e ln 2 + log(m) with x = 2^e m, m in [sqrt(1/2), sqrt(2)) (subnormals scaled by 2^23
  first): log(m) = f - f^2/2 + f^3 P(f), f = m - 1, and e ln 2 added in two parts. log(0) =
  -inf, log(x < 0) = NaN, log(inf) = inf.
tanh(x) = x + x z P(z), z = x^2, for |x| < 0.625; else sign(x) (1 - 2 / (exp(2|x|) + 1)), which
  is 1 once exp overflows.
erf(x) = sign(x) erf(a), a = |x|, with erf(a) = a + a R(a^2) below 0.75, E + P(a - 1.125) (E =
  erf(1.125) rounded) below 1.5, 1 - exp(-a^2) Q(a - 2.75) below 4 (Q approximates erfcx, the
  scaled complement exp(a^2) erfc(a)), and 1 from 4 on; NaN gives NaN. In each piece the
  polynomial is small next to the part added exactly (a, E or 1), so its rounding errors shrink;
  the fits are near-minimax least-squares polynomials at Chebyshev nodes, computed by
  `tools/fit_erf.py` (the pieces' layout is that of fdlibm's `s_erf.c`, after W. J. Cody,
  "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969): a series
  near 0, an expansion about a point in the middle, exp(-x^2) times a fit of erfcx beyond).
  Measured: within 0.8 ulp of the correctly rounded value (tests/test_schedules.py checks 1 ulp).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flavour:
    """How the shared text is spelled for scalars (`lanes == 1`) or vectors of `lanes` floats."""

    lanes: int

    @property
    def real(self) -> str:
        return "float" if self.lanes == 1 else f"mlc_v{self.lanes}f32"

    @property
    def int(self) -> str:
        return "int32_t" if self.lanes == 1 else f"mlc_v{self.lanes}i32"

    @property
    def suffix(self) -> str:
        return "" if self.lanes == 1 else f"_v{self.lanes}f32"

    def select(self, mask: str, a: str, b: str, kind: str = "real") -> str:
        """`mask ? a : b` (lane by lane for vectors, whose masks are all ones or all zeros)."""
        if self.lanes == 1:
            return f"(({mask}) ? ({a}) : ({b}))"
        if kind == "int":
            return f"((({mask}) & ({a})) | (~({mask}) & ({b})))"
        return f"({self.real})((({mask}) & ({self.int})({a})) | (~({mask}) & ({self.int})({b})))"

    def const(self, c: str) -> str:
        """A constant as a value of the flavour's type (a vector of `c` in every lane)."""
        return c if self.lanes == 1 else f"(({self.real}){{0}} + {c})"

    def bits(self, x: str) -> str:
        return f"mlc_bits({x})" if self.lanes == 1 else f"({self.int})({x})"

    def from_bits(self, i: str) -> str:
        return f"mlc_from_bits({i})" if self.lanes == 1 else f"({self.real})({i})"

    def to_real(self, i: str) -> str:
        return f"(float)({i})" if self.lanes == 1 else f"__builtin_convertvector({i}, {self.real})"


SCALAR_BITS = """\
static inline int32_t mlc_bits(float x) { int32_t i; memcpy(&i, &x, sizeof i); return i; }
static inline float mlc_from_bits(int32_t i) { float x; memcpy(&x, &i, sizeof x); return x; }"""


def expf(v: Flavour) -> str:
    T, I, s = v.real, v.int, v.suffix
    return f"""\
static inline {T} mlc_expf{s}({T} x) {{
  {T} c = {v.select("x > 89.0f", v.const("89.0f"), v.select("x < -104.0f", v.const("-104.0f"), "x"))};
  {T} t = c * 1.44269504088896341f + 12582912.0f;
  {T} n = t - 12582912.0f;
  {T} r = c - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  {T} p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r
           + 1.6666665459e-1f) * r + 5.0000001201e-1f) * (r * r) + r + 1.0f;
  {I} k = {v.bits("t")} - 0x4b400000;
  {I} k1 = k >> 1;
  {I} k2 = k - k1;
  {T} y = p * {v.from_bits("(k1 + 127) << 23")} * {v.from_bits("(k2 + 127) << 23")};
  y = {v.select("x > 88.72283935546875f", v.const("INFINITY"), "y")};
  y = {v.select("x < -103.972076416015625f", v.const("0.0f"), "y")};
  return {v.select("x != x", "x", "y")};
}}"""


def logf(v: Flavour) -> str:
    T, I, s = v.real, v.int, v.suffix
    return f"""\
static inline {T} mlc_logf{s}({T} x) {{
  {I} tiny = x < 1.17549435e-38f;
  {T} a = {v.select("tiny", "x * 8388608.0f", "x")};
  {I} i = {v.bits("a")};
  {I} e = ((i >> 23) & 0xff) - 126;
  e = {v.select("tiny", "e - 23", "e", "int")};
  {T} m = {v.from_bits("(i & 0x007fffff) | 0x3f000000")};
  {I} low = m < 0.707106781186547524f;
  e = {v.select("low", "e - 1", "e", "int")};
  m = {v.select("low", "m + m", "m")};
  {T} f = m - 1.0f;
  {T} z = f * f;
  {T} y = ((((((((7.0376836292e-2f * f - 1.1514610310e-1f) * f + 1.1676998740e-1f) * f - 1.2420140846e-1f) * f
            + 1.4249322787e-1f) * f - 1.6668057665e-1f) * f + 2.0000714765e-1f) * f - 2.4999993993e-1f) * f
            + 3.3333331174e-1f) * f * z;
  {T} k = {v.to_real("e")};
  y = y + k * -2.12194440e-4f;
  y = y - 0.5f * z;
  {T} r = f + y;
  r = r + k * 0.693359375f;
  r = {v.select("x == INFINITY", "x", "r")};
  r = {v.select("x == 0.0f", v.const("-INFINITY"), "r")};
  return {v.select("x < 0.0f", v.const("NAN"), v.select("x != x", "x", "r"))};
}}"""


def tanhf(v: Flavour) -> str:
    T, s = v.real, v.suffix
    return f"""\
static inline {T} mlc_tanhf{s}({T} x) {{
  {T} a = {v.from_bits(v.bits("x") + " & 0x7fffffff")};
  {T} z = x * x;
  {T} near = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z
              + 1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  {T} far = 1.0f - 2.0f / (mlc_expf{s}(a + a) + 1.0f);
  far = {v.from_bits(f"{v.bits('far')} | ({v.bits('x')} & (int32_t)0x80000000)")};
  return {v.select("a < 0.625f", "near", "far")};
}}"""


ERF_R = ("1.283791661e-01f", "-3.761262000e-01f", "1.128338948e-01f", "-2.683527581e-02f", "5.115657113e-03f",
         "-6.758787786e-04f")
"""R(z) ~ erf(sqrt z) / sqrt z - 1 on [0, 0.75^2], constant first (`tools/fit_erf.py` prints these)."""
ERF_E = "8.883882165e-01f"
"""erf(1.125) rounded to f32."""
ERF_P = ("1.532429650e-08f", "3.182739615e-01f", "-3.580582440e-01f", "1.624523401e-01f", "2.797569707e-02f",
         "-6.132421643e-02f", "1.548880991e-02f", "9.615655057e-03f", "-5.637193564e-03f", "-4.240057606e-04f")
"""P(t) ~ erf(1.125 + t) - E on [-0.375, 0.375] (its constant is E's rounding error)."""
ERF_Q = ("1.936620921e-01f", "-6.323765218e-02f", "1.975858025e-02f", "-5.934135523e-03f", "1.719615073e-03f",
         "-4.829270474e-04f", "1.312072418e-04f", "-3.363428914e-05f", "8.798696399e-06f", "-2.905131396e-06f",
         "6.782749438e-07f")
"""Q(u) ~ exp(x^2) erfc(x), x = 2.75 + u, on [-1.25, 1.25] (fitted for relative error)."""


def horner(coefficients: tuple[str, ...], t: str) -> str:
    """`c0 + t (c1 + t (c2 + ...))` as C text, evaluated from the highest coefficient down."""
    text = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        text = f"({text}) * {t} + {c}"
    return text


def erff(v: Flavour) -> str:
    T, s = v.real, v.suffix
    return f"""\
static inline {T} mlc_erff{s}({T} x) {{
  {T} a = {v.from_bits(v.bits("x") + " & 0x7fffffff")};
  {T} z = a * a;
  {T} near = a + a * ({horner(ERF_R, "z")});
  {T} t = a - 1.125f;
  {T} middle = {ERF_E} + ({horner(ERF_P, "t")});
  {T} u = a - 2.75f;
  {T} far = 1.0f - mlc_expf{s}(-z) * ({horner(ERF_Q, "u")});
  {T} r = {v.select("a < 0.75f", "near", v.select("a < 1.5f", "middle", v.select("a < 4.0f", "far", v.const("1.0f"))))};
  r = {v.from_bits(f"{v.bits('r')} | ({v.bits('x')} & (int32_t)0x80000000)")};
  return {v.select("x != x", "x", "r")};
}}"""


FUNCTIONS = {"exp": expf, "log": logf, "tanh": tanhf, "erf": erff}
"""The libm functions mlc replaces in f32 code, by name; tanh and erf use exp."""

DEPENDS = {"tanh": ("exp",), "erf": ("exp",)}
