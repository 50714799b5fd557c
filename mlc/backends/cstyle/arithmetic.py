"""Arithmetic and math of the C-style printer: the table-driven op families, constants,
selects, comparisons, fused multiply-adds, and math functions (mlc's own f32 `exp`/`log`/`tanh`,
libm lane by lane on vectors otherwise)."""

from __future__ import annotations

from xdsl.dialects import arith, math
from xdsl.dialects.builtin import Float32Type, VectorType
from xdsl.ir import Operation, SSAValue

from mlc.backends.cstyle import mathlib
from mlc.backends.cstyle.ops import (
    CAST_OPS,
    CMPF_TEMPLATES,
    CMPI_OPERATORS,
    FLOAT_PICKS,
    HELPER_OPS,
    INFIX_OPS,
    MATH_FUNCS,
    PICK_OPS,
)
from mlc.backends.cstyle.types import CEmitError, c_type, c_unsigned_type
from mlc.backends.cstyle.vector import VectorPrinter


class ArithmeticPrinter(VectorPrinter):
    """The handlers of `arith` and `math` ops, on scalars and vectors."""

    def print_family(self, op: Operation) -> None:
        """Table-driven families; anything else is outside the contract."""
        kind = type(op)
        if kind in INFIX_OPS:
            a, b = (self.expr(v) for v in op.operands)
            self.assign(op.results[0], f"{a} {INFIX_OPS[kind]} {b}")
        elif kind in HELPER_OPS:
            a, b = (self.expr(v) for v in op.operands)
            self.assign(op.results[0], f"{HELPER_OPS[kind]}({a}, {b})")
        elif kind in PICK_OPS:
            a, b = (self.expr(v) for v in op.operands)
            vector = isinstance(op.results[0].type, VectorType)
            keep_a = f"{a} {PICK_OPS[kind]} {b}"
            if kind in FLOAT_PICKS:
                keep_a = f"(({keep_a}) {'|' if vector else '||'} ({a} != {a}))"
            if vector:
                self.assign(op.results[0], self.blend(op.results[0], keep_a, a, b))
            else:
                self.assign(op.results[0], f"{keep_a} ? {a} : {b}")
        elif kind in CAST_OPS:
            result = op.results[0]
            if isinstance(result.type, VectorType):
                self.assign(result, f"__builtin_convertvector({self.expr(op.operands[0])}, {self.value_type(result)})")
            else:
                self.assign(result, f"({c_type(result.type)}){self.expr(op.operands[0])}")
        elif kind in MATH_FUNCS:
            result = op.results[0]
            vector_type = result.type if isinstance(result.type, VectorType) else None
            elt = vector_type.get_element_type() if vector_type else result.type
            name = MATH_FUNCS[kind]
            function = name + ("f" if isinstance(elt, Float32Type) else "")
            if isinstance(elt, Float32Type) and name in mathlib.FUNCTIONS:
                function = self.mlc_math(name, vector_type.get_shape()[0] if vector_type else 1)
            elif vector_type is not None:
                function = self.lanewise(function, result, len(op.operands))
            args = ", ".join(self.expr(v) for v in op.operands)
            self.assign(result, f"{function}({args})")
        else:
            raise CEmitError(f"C backend: no C emission for '{op.name}'")

    def print_constant(self, op: arith.ConstantOp) -> None:
        self.constant_literal(op)  # inlined at each use; checked here so errors name the op

    def print_negf(self, op: arith.NegfOp) -> None:
        self.assign(op.result, f"-{self.expr(op.operand)}")

    def print_select(self, op: arith.SelectOp) -> None:
        c, a, b = (self.expr(v) for v in (op.cond, op.lhs, op.rhs))
        self.assign(op.result, f"{c} ? {a} : {b}")

    def print_cmpf(self, op: arith.CmpfOp) -> None:
        template = CMPF_TEMPLATES[op.predicate.value.data]
        self.assign(op.result, template.format(a=self.expr(op.lhs), b=self.expr(op.rhs)))

    def mlc_math(self, name: str, lanes: int) -> str:
        """mlc's own f32 `name` (`mlc/backends/cstyle/mathlib.py`) for scalars or vectors of `lanes`."""
        flavour = mathlib.Flavour(lanes)
        if lanes == 1:
            self.helper("mlc_bits", mathlib.SCALAR_BITS)
        else:
            self.vector_types[flavour.real] = (lanes, "float")
            self.vector_types[flavour.int] = (lanes, "int32_t")
        for dependency in mathlib.DEPENDS.get(name, ()):
            self.mlc_math(dependency, lanes)
        function = f"mlc_{name}f{flavour.suffix}"
        return self.helper(function, mathlib.FUNCTIONS[name](flavour))

    def lanewise(self, function: str, result: SSAValue, arity: int) -> str:
        """A helper applying a scalar C function lane by lane."""
        vtype = self.value_type(result)
        t = result.type
        assert isinstance(t, VectorType)
        name = f"mlc_{function}_{vtype[4:]}"
        params = ", ".join(f"{vtype} a{k}" for k in range(arity))
        args = ", ".join(f"a{k}[l]" for k in range(arity))
        return self.helper(name, f"static inline {vtype} {name}({params}) {{\n  {vtype} r;\n"
                                 f"  for (int l = 0; l < {t.get_shape()[0]}; l++) r[l] = {function}({args});\n"
                                 f"  return r;\n}}")

    def print_fma(self, op: math.FmaOp) -> None:
        a, b, c = (self.expr(v) for v in (op.a, op.b, op.c))
        if not isinstance(op.result.type, VectorType):
            suffix = "f" if isinstance(op.result.type, Float32Type) else ""
            self.assign(op.result, f"fma{suffix}({a}, {b}, {c})")
            return
        self.assign(op.result, f"{self.vector_fma(op.result)}({a}, {b}, {c})")

    def print_cmpi(self, op: arith.CmpiOp) -> None:
        operator, unsigned = CMPI_OPERATORS[op.predicate.value.data]
        a, b = self.expr(op.lhs), self.expr(op.rhs)
        if unsigned:
            cast = f"({c_unsigned_type(op.lhs.type)})"
            a, b = cast + a, cast + b
        self.assign(op.result, f"{a} {operator} {b}")

    def print_shli(self, op: arith.ShLIOp) -> None:
        """`a << b` on the unsigned type of the same width, so that a bit shifted into (or beyond)
        the sign is defined C, wrapping as `arith.shli` does."""
        a, b = self.expr(op.lhs), self.expr(op.rhs)
        if isinstance(op.result.type, VectorType):
            raise CEmitError("C backend: 'arith.shli' on vectors is not supported")
        self.assign(op.result, f"({c_type(op.result.type)})(({c_unsigned_type(op.result.type)}){a} << {b})")

    def print_ctpop(self, op: math.CtPopOp) -> None:
        """The set bits of each lane: `__builtin_popcountll`, which GCC and Clang make one `popcnt`
        (on x86 with POPCNT), and lane by lane on vectors, which GCC at -O2 makes one AVX-512
        `vpopcntq` where the target has VPOPCNTDQ (and scalar `popcnt`s elsewhere)."""
        result = op.result
        vector = result.type if isinstance(result.type, VectorType) else None
        elt = vector.get_element_type() if vector else result.type
        builtin = "__builtin_popcountll" if elt.bitwidth > 32 else "__builtin_popcount"  # pyright: ignore[reportAttributeAccessIssue]
        unsigned = c_unsigned_type(elt)
        if vector is None:
            self.assign(result, f"{builtin}(({unsigned}){self.expr(op.operand)})")
            return
        vtype = self.value_type(result)
        name = f"mlc_popcount_{vtype[4:]}"
        self.helper(name, f"static inline {vtype} {name}({vtype} a) {{\n  {vtype} r;\n"
                          f"  for (int l = 0; l < {vector.get_shape()[0]}; l++) r[l] = {builtin}(({unsigned})a[l]);\n"
                          f"  return r;\n}}")
        self.assign(result, f"{name}({self.expr(op.operand)})")

    def print_rsqrt(self, op: math.RsqrtOp) -> None:
        single = isinstance(op.result.type, Float32Type)
        one, sqrt = ("1.0f", "sqrtf") if single else ("1.0", "sqrt")
        self.assign(op.result, f"{one} / {sqrt}({self.expr(op.operand)})")

    handlers = VectorPrinter.handlers | {
        Operation: print_family,
        arith.ConstantOp: print_constant,
        arith.NegfOp: print_negf,
        arith.SelectOp: print_select,
        arith.CmpfOp: print_cmpf,
        math.FmaOp: print_fma,
        arith.CmpiOp: print_cmpi,
        math.RsqrtOp: print_rsqrt,
        arith.ShLIOp: print_shli,
        math.CtPopOp: print_ctpop,
    }
