"""The op families printed from tables: binary operators, helper calls, max/min, casts, math
functions and comparison predicates (and the C text of the index helpers they call)."""

from __future__ import annotations

from xdsl.dialects import arith, math
from xdsl.ir import Operation

from mlc.dialects import vx

# Index arithmetic helpers. MLIR's floordivsi/ceildivsi round towards -inf/+inf while C's `/`
# truncates; both differ from `/` exactly when the remainder is non-zero and the quotient is
# negative (floor) or positive (ceil). Computing in int64_t covers i32, i64 and index.
C_HELPERS = """\
static inline int64_t mlc_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
static inline int64_t mlc_ceildiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) == (b < 0))) ? q + 1 : q;
}"""

INFIX_OPS: dict[type[Operation], str] = {
    arith.AddfOp: "+",
    arith.SubfOp: "-",
    arith.MulfOp: "*",
    arith.DivfOp: "/",
    arith.AddiOp: "+",
    arith.SubiOp: "-",
    arith.MuliOp: "*",
    arith.DivSIOp: "/",
    arith.RemSIOp: "%",
    arith.AndIOp: "&",
    arith.OrIOp: "|",
    arith.XOrIOp: "^",
}

HELPER_OPS: dict[type[Operation], str] = {
    arith.FloorDivSIOp: "mlc_floordiv",
    arith.CeilDivSIOp: "mlc_ceildiv",
}

# max/min as a ternary that keeps the first operand on ties. The float ones propagate NaN, as
# arith.maximumf/minimumf and PyTorch do (relu, max pooling, the clamped logs of bce): the first
# operand is also kept when it is NaN (`FLOAT_PICKS`), and a NaN second operand fails the test.
FLOAT_PICKS = (arith.MaximumfOp, arith.MinimumfOp)
PICK_OPS: dict[type[Operation], str] = {
    arith.MaximumfOp: ">=",
    arith.MinimumfOp: "<=",
    arith.MaxSIOp: ">=",
    arith.MinSIOp: "<=",
}

CAST_OPS: tuple[type[Operation], ...] = (
    arith.IndexCastOp,
    arith.SIToFPOp,
    arith.FPToSIOp,
    arith.ExtFOp,
    arith.TruncFOp,
    arith.ExtSIOp,
    arith.TruncIOp,
    vx.SIToFPOp,
)

# libm names of the f64 functions; f32 appends "f" (expf, sqrtf, ...).
MATH_FUNCS: dict[type[Operation], str] = {
    math.ExpOp: "exp",
    math.LogOp: "log",
    math.SqrtOp: "sqrt",
    math.AbsFOp: "fabs",
    math.TanhOp: "tanh",
    math.FloorOp: "floor",
    math.CeilOp: "ceil",
    math.Log1pOp: "log1p",
    math.ExpM1Op: "expm1",
    math.PowFOp: "pow",
    math.ErfOp: "erf",
}

# Comparison predicates with a C operator on vectors (ordered: false on NaN, as C's operators).
VECTOR_CMPF: dict[str, str] = {"oeq": "==", "ogt": ">", "oge": ">=", "olt": "<", "ole": "<=", "une": "!="}

# arith.cmpf predicates by number. Ordered predicates are false on NaN, which is what C's
# relational operators give; the unordered ones are the negation of the opposite ordered test.
CMPF_TEMPLATES: dict[int, str] = {
    0: "0",
    1: "{a} == {b}",
    2: "{a} > {b}",
    3: "{a} >= {b}",
    4: "{a} < {b}",
    5: "{a} <= {b}",
    6: "({a} < {b} || {a} > {b})",
    7: "({a} == {a} && {b} == {b})",
    8: "!({a} < {b} || {a} > {b})",
    9: "!({a} <= {b})",
    10: "!({a} < {b})",
    11: "!({a} >= {b})",
    12: "!({a} > {b})",
    13: "{a} != {b}",
    14: "({a} != {a} || {b} != {b})",
    15: "1",
}

# arith.cmpi predicates by number: (C operator, compare as unsigned).
CMPI_OPERATORS: dict[int, tuple[str, bool]] = {
    0: ("==", False),
    1: ("!=", False),
    2: ("<", False),
    3: ("<=", False),
    4: (">", False),
    5: (">=", False),
    6: ("<", True),
    7: ("<=", True),
    8: (">", True),
    9: (">=", True),
}
