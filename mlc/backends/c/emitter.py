"""Loop-level xDSL IR (`func`/`scf`/`memref`/`arith`/`math`) printed as self-contained C99.

`CPrinter` is the one C-style renderer of mlc. It is split in two layers so a CUDA backend can
reuse the op handlers and replace only the file and function framing:

* framing: `print_module`, `print_prologue`, `print_function`, `param_decl`;
* op handlers: `print_op` (one `singledispatchmethod` handler per op, plus tables for the
  binary, comparison, cast and math families), `print_block`, `expr`, `flat_index`.

It accepts the loop-level contract of the lowering: `func.func`s over static identity-layout
memrefs (plus an optional trailing `memref<Nxi8>` arena) returning nothing, with `scf.for/if`,
`memref` load/store/view/alloc/alloca/dealloc/copy, `arith` and `math` on scalars and 1-d
vectors, and `vector` load/store/broadcast/insert/extract. Anything else raises `CEmitError`, a
`NotImplementedError` that names the op.

Vectors are GCC/Clang vector extensions (`mlc_v16f32` is 16 floats): arithmetic and comparisons
are C operators on them, loads and stores `memcpy` (any alignment), a fused multiply-add is the
target's instruction where the compiler says it has one (`__AVX512F__`, `__FMA__`) and `fma` lane
by lane elsewhere, and functions without a vector form (`expf`, ...) run lane by lane. A loop
marked `mlc.parallel` is an OpenMP `parallel for`; a `memref.alloca` is a local array.
"""

from __future__ import annotations

import io
import math as pymath
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import singledispatchmethod
from typing import IO, NamedTuple

from xdsl.context import Context
from xdsl.dialects import arith, func, math, memref, scf, vector
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    Float32Type,
    Float64Type,
    FloatAttr,
    IndexType,
    IntegerAttr,
    IntegerType,
    MemRefType,
    ModuleOp,
    NoneAttr,
    StringAttr,
    VectorType,
)
from xdsl.ir import Attribute, Block, BlockArgument, Operation, SSAValue
from xdsl.utils.base_printer import BasePrinter
from xdsl.utils.exceptions import DiagnosticException
from xdsl.utils.target import Target

from mlc.backends.c import mathlib
from mlc.dialects import vx
from mlc.loops.builders import PARALLEL


class CEmitError(DiagnosticException, NotImplementedError):
    """IR outside the loop-level contract, naming what is wrong.

    From the API it is an internal error (the pipeline must reach loop level); from `mlc-opt -t c`
    with a pipeline that stops early it is the user's, so it is also a `DiagnosticException`,
    which the driver prints as one message.
    """


# --------------------------------------------------------------------------------------------
# Types and literals
# --------------------------------------------------------------------------------------------

INCLUDES = ("stdint.h", "stddef.h", "math.h", "stdlib.h", "string.h")

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

_C_SIZES = {"float": 4, "double": 8, "int32_t": 4, "int64_t": 8, "intptr_t": 8}
"""Bytes of the C types vectors are made of."""

_INT_C_TYPES = {1: "_Bool", 8: "int8_t", 16: "int16_t", 32: "int32_t", 64: "int64_t"}
_UINT_C_TYPES = {1: "_Bool", 8: "uint8_t", 16: "uint16_t", 32: "uint32_t", 64: "uint64_t"}


def c_type(t: Attribute) -> str:
    """The C type of an xDSL scalar or 1-d vector type (`mlc_v16f32`: 16 floats; a vector of i1
    is the mask a comparison gives, see `CPrinter.mask_type`)."""
    if isinstance(t, VectorType):
        return vector_type_name(t)
    if isinstance(t, Float32Type):
        return "float"
    if isinstance(t, Float64Type):
        return "double"
    if isinstance(t, IndexType):
        return "intptr_t"
    if isinstance(t, IntegerType) and t.width.data in _INT_C_TYPES:
        return _INT_C_TYPES[t.width.data]
    raise CEmitError(f"C backend: no C type for '{t}'")


_VECTOR_ELEMENTS = {"float": "f32", "double": "f64", "int32_t": "i32", "int64_t": "i64", "intptr_t": "ix"}


def vector_type_name(t: VectorType) -> str:
    """`mlc_v<lanes><element>` for a 1-d vector of a C scalar type."""
    shape = t.get_shape()
    if len(shape) != 1:
        raise CEmitError(f"C backend: only 1-d vectors are supported, got '{t}'")
    elt = t.get_element_type()
    if elt == IntegerType(1):
        raise CEmitError(f"C backend: '{t}' (a mask) has no C type of its own")
    return f"mlc_v{shape[0]}{_VECTOR_ELEMENTS[c_type(elt)]}"


def c_unsigned_type(t: Attribute) -> str:
    """The unsigned C type of the same width, for the unsigned `cmpi` predicates."""
    if isinstance(t, IndexType):
        return "uintptr_t"
    if isinstance(t, IntegerType) and t.width.data in _UINT_C_TYPES:
        return _UINT_C_TYPES[t.width.data]
    raise CEmitError(f"C backend: no unsigned C type for '{t}'")


def is_arena_type(t: Attribute) -> bool:
    """An i8 memref is a raw byte buffer (the planner's arena), typed `uint8_t*` in C."""
    return isinstance(t, MemRefType) and t.get_element_type() == IntegerType(8)


def checked_memref(t: Attribute) -> MemRefType:
    """The memref type, if it is one C can index with a flat static offset."""
    if not isinstance(t, MemRefType):
        raise CEmitError(f"C backend: expected a memref type, got '{t}'")
    if not isinstance(t.layout, NoneAttr) or not isinstance(t.memory_space, NoneAttr):
        raise CEmitError(f"C backend: only identity-layout memrefs are supported, got '{t}'")
    if DYNAMIC_INDEX in t.get_shape():
        raise CEmitError(f"C backend: only static shapes are supported, got '{t}'")
    return t


def pointee_type(t: MemRefType) -> str:
    """C element type of a memref pointer (`uint8_t` for byte buffers)."""
    return "uint8_t" if is_arena_type(t) else c_type(t.get_element_type())


def num_elements(t: MemRefType) -> int:
    return pymath.prod(t.get_shape())


def byte_size(t: MemRefType) -> int:
    """Bytes spanned by a static memref (element sizes of the supported C types)."""
    elem = t.get_element_type()
    width = 64 if isinstance(elem, IndexType) else elem.bitwidth  # type: ignore[attr-defined]
    return num_elements(t) * max(1, width // 8)


def _f32_literal(value: float) -> str:
    """Shortest decimal that rounds back to the same float32, so the text stays readable."""
    target = struct.pack("<f", value)
    for digits in range(6, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == target:
            return text
    return repr(value)


def c_float_literal(value: float, t: Attribute) -> str:
    """Exact C literal for an f32/f64 constant, with INFINITY/NAN from <math.h>."""
    single = isinstance(t, Float32Type)
    if pymath.isnan(value):
        return "NAN" if single else "(double)NAN"
    if pymath.isinf(value):
        text = "INFINITY" if single else "(double)INFINITY"
        return text if value > 0 else f"(-{text})"
    text = _f32_literal(value) if single else repr(value)
    if not any(c in text for c in ".eE"):
        text += ".0"
    if single:
        text += "f"
    return f"({text})" if text.startswith("-") else text


def c_int_literal(value: int, t: Attribute) -> str:
    """C literal for a signless integer, wrapped to the signed range of its width."""
    if isinstance(t, IntegerType) and t.width.data == 1:
        return "1" if value else "0"
    width = 64 if isinstance(t, IndexType) else t.width.data  # type: ignore[attr-defined]
    half = 1 << (width - 1)
    value = (value + half) % (1 << width) - half
    if value == -(1 << 63):
        return "INT64_MIN"
    text = str(value) if -(1 << 31) <= value < (1 << 31) else f"INT64_C({value})"
    return f"({text})" if value < 0 else text


def c_identifier(name: str) -> str:
    """A C identifier made from an IR name hint (letters, digits, underscores)."""
    text = re.sub(r"\W", "_", name, flags=re.ASCII)
    return text if text and text[0].isalpha() else f"v{text}"


def is_read_only(value: SSAValue) -> bool:
    """A memref only ever loaded from (or copied from): printed `const`, may alias other inputs."""
    for use in value.uses:
        op = use.operation
        if isinstance(op, memref.LoadOp | vector.LoadOp | vector.MaskedLoadOp):
            continue
        if isinstance(op, memref.CopyOp) and use.index == 0:
            continue
        return False
    return True


# --------------------------------------------------------------------------------------------
# Op tables
# --------------------------------------------------------------------------------------------

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

# max/min as a ternary that keeps the first operand on ties (NaN propagation is not required).
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


# --------------------------------------------------------------------------------------------
# The printer
# --------------------------------------------------------------------------------------------



X86_VECTORS = {512: ("_mm512", "__m512"), 256: ("_mm256", "__m256"), 128: ("_mm", "__m128")}
"""Intrinsic prefix and register type of the x86 vectors of each width in bits."""


def x86_or_fallback(t: VectorType, guards: dict[int, str], intrinsic: str, fallback: str) -> str:
    """A vector helper's body: `intrinsic` (a template over `{prefix}`, `{suffix}` and `{mtype}`)
    under `#if guards[bits]` when x86 has f32/f64 registers of `t`'s width, else `fallback`."""
    elt = c_type(t.get_element_type())
    bits = t.get_shape()[0] * _C_SIZES[elt] * 8
    if elt not in ("float", "double") or bits not in X86_VECTORS or bits not in guards:
        return fallback
    prefix, mtype = X86_VECTORS[bits]
    suffix, mtype = ("ps", mtype) if elt == "float" else ("pd", mtype + "d")
    call = intrinsic.format(prefix=prefix, suffix=suffix, mtype=mtype)
    return f"#if {guards[bits]}\n  {call}\n#else\n{fallback}\n#endif"

@dataclass(eq=False, repr=False)
class CPrinter(BasePrinter):
    """Prints loop-level IR as C99; every SSA value becomes one local variable.

    A CUDA printer subclasses this and overrides the framing methods. Handlers for new op
    types registered with `CPrinter.print_op.register` are shared by all subclasses (one
    singledispatch table), which is harmless as long as the op types are distinct.
    """

    restrict: bool = True
    names: dict[SSAValue, str] = field(default_factory=dict[SSAValue, str], init=False)
    counter: int = field(default=0, init=False)
    restrict_views: set[SSAValue] = field(default_factory=set[SSAValue], init=False)
    vector_types: dict[str, tuple[int, str]] = field(default_factory=dict[str, tuple[int, str]], init=False)
    helpers: dict[str, str] = field(default_factory=dict[str, str], init=False)

    # ---- naming and small utilities -------------------------------------------------------

    def line(self, text: str) -> None:
        """One line at the current indentation (BasePrinter indents after each newline)."""
        self.print_string("\n" + text)

    def define(self, value: SSAValue) -> str:
        """A fresh name: `v<n>`, or `<hint>_<n>`; the counter suffix keeps names unique."""
        hint = value.name_hint
        name = f"{c_identifier(hint)}_{self.counter}" if hint else f"v{self.counter}"
        self.counter += 1
        self.names[value] = name
        return name

    def expr(self, value: SSAValue) -> str:
        """A value as a C expression: constants inline as literals, others by their name."""
        owner = value.owner
        if isinstance(owner, arith.ConstantOp):
            return self.constant_literal(owner)
        if value not in self.names:
            raise CEmitError(f"C backend: value {value} used before it was printed")
        return self.names[value]

    def constant_literal(self, op: arith.ConstantOp) -> str:
        attr, t = op.value, op.result.type
        if isinstance(attr, FloatAttr):
            return c_float_literal(attr.value.data, t)
        if isinstance(attr, IntegerAttr):
            return c_int_literal(attr.value.data, t)
        raise CEmitError(f"C backend: unsupported constant {attr} in '{op.name}'")

    def assign(self, result: SSAValue, expression: str) -> None:
        """Declare the local for a result, initialised to `expression`."""
        self.line(f"{self.value_type(result)} {self.define(result)} = {expression};")

    def value_type(self, value: SSAValue) -> str:
        """The C type of a value; vector types are recorded for the prologue's typedefs."""
        t = value.type
        if not isinstance(t, VectorType):
            return c_type(t)
        if t.get_element_type() == IntegerType(1):
            return self.mask_type(value)
        name = vector_type_name(t)
        self.vector_types[name] = (t.get_shape()[0], c_type(t.get_element_type()))
        return name

    def mask_type(self, value: SSAValue) -> str:
        """A comparison of vectors gives a vector of signed integers as wide as the compared
        elements (all ones where true); logic on masks keeps that type."""
        owner = value.owner
        if isinstance(owner, vx.CmpfOp | arith.CmpiOp):
            compared = owner.lhs.type
        elif isinstance(owner, arith.AndIOp | arith.OrIOp | arith.XOrIOp):
            return self.mask_type(owner.lhs)
        else:
            raise CEmitError(f"C backend: a vector of i1 must come from a comparison, not '{getattr(owner, 'name', owner)}'")
        assert isinstance(compared, VectorType)
        width = _C_SIZES[c_type(compared.get_element_type())] * 8
        name = f"mlc_v{compared.get_shape()[0]}i{width}"
        self.vector_types[name] = (compared.get_shape()[0], f"int{width}_t")
        return name

    def helper(self, name: str, text: str) -> str:
        """Use the helper function `name` (defined once in the prologue)."""
        self.helpers.setdefault(name, text)
        return name

    def pointer_decl(self, value: SSAValue, restrict: bool) -> str:
        """`float* restrict v3`: the C declarator of a memref value."""
        t = checked_memref(value.type)
        qualifier = " restrict" if restrict and self.restrict and not is_arena_type(t) else ""
        return f"{pointee_type(t)}*{qualifier} {self.define(value)}"

    def flat_index(self, ref: SSAValue, indices: Sequence[SSAValue]) -> str:
        """Row-major offset `(i*d1 + j)*d2 + k` of a static identity-layout memref."""
        shape = checked_memref(ref.type).get_shape()
        if not indices:
            return "0"
        text = self.expr(indices[0])
        for dim, index in zip(shape[1:], indices[1:]):
            lhs = f"({text})" if " " in text else text
            text = f"{lhs}*{dim} + {self.expr(index)}"
        return text

    def print_block(self, block: Block, targets: Sequence[str] = ()) -> None:
        """The ops of a region body; a trailing `scf.yield` assigns `targets`."""
        for op in block.ops:
            if isinstance(op, scf.YieldOp):
                if len(op.operands) != len(targets):
                    raise CEmitError("C backend: 'scf.yield' arity does not match its parent")
                for target, value in zip(targets, op.operands):
                    self.line(f"{target} = {self.expr(value)};")
            else:
                self.print_op(op)

    # ---- framing: file prologue and function signatures -----------------------------------

    def print_module(self, module: ModuleOp) -> None:
        """The functions are printed first, so that the prologue declares just the vector types
        and helpers they use."""
        stream, self.stream = self.stream, io.StringIO()
        for op in module.ops:
            if not isinstance(op, func.FuncOp):
                raise CEmitError(f"C backend: unsupported top-level op '{op.name}'")
            self.print_function(op)
        body, self.stream = self.stream.getvalue(), stream
        self.print_prologue()
        self.print_string(body + "\n", indent=0)

    def print_prologue(self) -> None:
        self.print_string("/* Generated by mlc: C backend. */")
        for header in INCLUDES:
            self.line(f"#include <{header}>")
        if any(name.startswith(("mlc_fma_", "mlc_load_prefix_", "mlc_store_prefix_")) for name in self.helpers):
            self.line("#if defined(__AVX512F__) || defined(__FMA__)")
            self.line("#include <immintrin.h>")
            self.line("#endif")
        if self.vector_types:
            # Vector helpers are static (inlined), so the note that passing vectors by value
            # without the vector ISA would change the ABI does not concern them.
            self.line("#if defined(__GNUC__) && !defined(__clang__)")
            self.line('#pragma GCC diagnostic ignored "-Wpsabi"')
            self.line("#endif")
        self.line("")
        for text in C_HELPERS.splitlines():
            self.line(text)
        for name in sorted(self.vector_types, key=lambda n: (len(n), n)):
            lanes, elt = self.vector_types[name]
            self.line(f"typedef {elt} {name} __attribute__((vector_size({lanes * _C_SIZES[elt]})));")
        for name in self.helpers:  # in first use order: a helper's own helpers come before it
            for text in self.helpers[name].splitlines():
                self.line(text)

    def print_function(self, op: func.FuncOp) -> None:
        if op.is_declaration:
            raise CEmitError(f"C backend: function declaration @{op.sym_name.data} has no body")
        name = op.sym_name.data
        if not re.fullmatch(r"[A-Za-z_]\w*", name, flags=re.ASCII):
            raise CEmitError(f"C backend: function name '{name}' is not a C identifier")
        if op.function_type.outputs.data:
            raise CEmitError(
                f"C backend: function @{name} returns values, so it is not loop-level IR yet; lower it first "
                "(mlc-lower-loops,mlc-plan-memory, or -t c without -p for the default pipeline)"
            )
        self.names.clear()
        self.counter = 0
        self.restrict_views = disjoint_views(op)

        self.line("")
        self.line(f"const size_t {name}_arena_bytes = {arena_bytes(op)};")
        self.line("")
        args = op.body.block.args
        params = ", ".join(self.param_decl(arg) for arg in args) or "void"
        self.line(f"void {name}({params}) {{")
        with self.indented():
            for inner in op.body.block.ops:
                if isinstance(inner, func.ReturnOp):
                    if inner.operands:
                        raise CEmitError(f"C backend: 'func.return' with operands in @{name}")
                    continue
                if isinstance(nest := inner.attributes.get("mlc.nest"), StringAttr):
                    self.line(f"/* {nest.data.replace('*/', '* /')} */")
                self.print_op(inner)
        self.line("}")
        self.print_packed_entry(op)

    def print_packed_entry(self, op: func.FuncOp) -> None:
        """`void <name>_packed(void* const* args)`: the function called with its pointers in one
        array, so that a caller with many buffers (a training step) makes one cheap call."""
        name = op.sym_name.data
        casts = [f"({self.pointee(arg)}*)args[{k}]" for k, arg in enumerate(op.body.block.args)]
        self.line("")
        self.line(f"void {name}_packed(void* const* args) {{")
        with self.indented():
            self.line(f"{name}({', '.join(casts)});")
        self.line("}")

    def pointee(self, arg: BlockArgument) -> str:
        return pointee_type(checked_memref(arg.type))

    def param_decl(self, arg: BlockArgument) -> str:
        """A memref parameter; read-only inputs are `const` so they may alias each other."""
        decl = self.pointer_decl(arg, restrict=True)
        if is_read_only(arg) and not is_arena_type(arg.type):
            decl = "const " + decl
        return decl

    # ---- op handlers -----------------------------------------------------------------------

    @singledispatchmethod
    def print_op(self, op: Operation) -> None:
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
            if isinstance(op.results[0].type, VectorType):
                self.assign(op.results[0], self.blend(op.results[0], f"{a} {PICK_OPS[kind]} {b}", a, b))
            else:
                self.assign(op.results[0], f"{a} {PICK_OPS[kind]} {b} ? {a} : {b}")
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

    @print_op.register
    def _(self, op: arith.ConstantOp) -> None:
        self.constant_literal(op)  # inlined at each use; checked here so errors name the op

    @print_op.register
    def _(self, op: arith.NegfOp) -> None:
        self.assign(op.result, f"-{self.expr(op.operand)}")

    @print_op.register
    def _(self, op: arith.SelectOp) -> None:
        c, a, b = (self.expr(v) for v in (op.cond, op.lhs, op.rhs))
        self.assign(op.result, f"{c} ? {a} : {b}")

    @print_op.register
    def _(self, op: arith.CmpfOp) -> None:
        template = CMPF_TEMPLATES[op.predicate.value.data]
        self.assign(op.result, template.format(a=self.expr(op.lhs), b=self.expr(op.rhs)))

    @print_op.register
    def _(self, op: vx.CmpfOp) -> None:
        predicate = op.predicate.data
        if predicate not in VECTOR_CMPF:
            raise CEmitError(f"C backend: no vector form of the cmpf predicate '{predicate}'")
        self.assign(op.result, f"{self.expr(op.lhs)} {VECTOR_CMPF[predicate]} {self.expr(op.rhs)}")

    @print_op.register
    def _(self, op: vx.SelectOp) -> None:
        self.assign(op.result, self.blend(op.result, *(self.expr(v) for v in (op.cond, op.lhs, op.rhs))))

    def blend(self, result: SSAValue, mask: str, a: str, b: str) -> str:
        """`mask ? a : b` lane by lane, as bit operations on the mask (all ones or all zeros)."""
        vtype = self.value_type(result)
        t = result.type
        assert isinstance(t, VectorType)
        bits = _C_SIZES[c_type(t.get_element_type())] * 8
        itype = f"mlc_v{t.get_shape()[0]}i{bits}"
        self.vector_types[itype] = (t.get_shape()[0], f"int{bits}_t")
        return f"({vtype})(({mask} & ({itype}){a}) | (~({mask}) & ({itype}){b}))"

    def mlc_math(self, name: str, lanes: int) -> str:
        """mlc's own f32 `name` (`mlc/backends/c/mathlib.py`) for scalars or vectors of `lanes`."""
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

    @print_op.register
    def _(self, op: math.FmaOp) -> None:
        a, b, c = (self.expr(v) for v in (op.a, op.b, op.c))
        if not isinstance(op.result.type, VectorType):
            suffix = "f" if isinstance(op.result.type, Float32Type) else ""
            self.assign(op.result, f"fma{suffix}({a}, {b}, {c})")
            return
        self.assign(op.result, f"{self.vector_fma(op.result)}({a}, {b}, {c})")

    def vector_fma(self, result: SSAValue) -> str:
        """`mlc_fma_v16f32(a, b, c)`: the target's fused multiply-add instruction where the compiler
        has one for this width, `fma` lane by lane otherwise (the same value either way)."""
        vtype = self.value_type(result)
        t = result.type
        assert isinstance(t, VectorType)
        lanes, single = t.get_shape()[0], isinstance(t.get_element_type(), Float32Type)
        fallback = f"  {vtype} r;\n  for (int l = 0; l < {lanes}; l++) r[l] = fma{'f' if single else ''}(a[l], b[l], c[l]);\n  return r;"
        name = f"mlc_fma_{vtype[4:]}"
        body = x86_or_fallback(t, {512: "defined(__AVX512F__)", 256: "defined(__FMA__)", 128: "defined(__FMA__)"},
                               f"return ({vtype}){{prefix}}_fmadd_{{suffix}}(({{mtype}})a, ({{mtype}})b, ({{mtype}})c);", fallback)
        return self.helper(name, f"static inline {vtype} {name}({vtype} a, {vtype} b, {vtype} c) {{\n{body}\n}}")

    @print_op.register
    def _(self, op: arith.CmpiOp) -> None:
        operator, unsigned = CMPI_OPERATORS[op.predicate.value.data]
        a, b = self.expr(op.lhs), self.expr(op.rhs)
        if unsigned:
            cast = f"({c_unsigned_type(op.lhs.type)})"
            a, b = cast + a, cast + b
        self.assign(op.result, f"{a} {operator} {b}")

    @print_op.register
    def _(self, op: math.RsqrtOp) -> None:
        single = isinstance(op.result.type, Float32Type)
        one, sqrt = ("1.0f", "sqrtf") if single else ("1.0", "sqrt")
        self.assign(op.result, f"{one} / {sqrt}({self.expr(op.operand)})")

    @print_op.register
    def _(self, op: memref.LoadOp) -> None:
        ref = self.expr(op.memref)
        self.assign(op.res, f"{ref}[{self.flat_index(op.memref, op.indices)}]")

    @print_op.register
    def _(self, op: memref.StoreOp) -> None:
        ref, value = self.expr(op.memref), self.expr(op.value)
        self.line(f"{ref}[{self.flat_index(op.memref, op.indices)}] = {value};")

    @print_op.register
    def _(self, op: vector.LoadOp) -> None:
        name = self.define(op.result)
        self.line(f"{self.value_type(op.result)} {name};")
        self.line(f"memcpy(&{name}, &{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}], sizeof {name});")

    @print_op.register
    def _(self, op: vector.StoreOp) -> None:
        value = self.expr(op.vector)
        self.line(f"memcpy(&{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}], &{value}, sizeof {value});")

    @print_op.register
    def _(self, op: vector.CreateMaskOp) -> None:
        """A mask of the first lanes: no C value of its own, its masked loads and stores copy
        that many elements (`prefix_lanes`)."""
        for use in op.results[0].uses:
            if not isinstance(use.operation, vector.MaskedLoadOp | vector.MaskedStoreOp):
                raise CEmitError("C backend: a 'vector.create_mask' is supported only as the mask of masked loads and stores")

    def prefix_lanes(self, mask: SSAValue) -> int:
        """The lanes a `vector.create_mask` of one constant count sets."""
        owner = mask.owner
        if not isinstance(owner, vector.CreateMaskOp) or len(owner.operands) != 1 \
                or not isinstance(count := owner.operands[0].owner, arith.ConstantOp):
            raise CEmitError("C backend: the mask of a masked load or store must be a 'vector.create_mask' of a constant")
        return count.value.value.data  # pyright: ignore[reportAttributeAccessIssue]

    @print_op.register
    def _(self, op: vector.MaskedLoadOp) -> None:
        count, at = self.prefix_lanes(op.mask), f"&{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}]"
        function = self.prefix_access(op.result, "load")
        self.assign(op.result, f"{function}({at}, {self.expr(op.pass_thru)}, {count})")

    @print_op.register
    def _(self, op: vector.MaskedStoreOp) -> None:
        count, at = self.prefix_lanes(op.mask), f"&{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}]"
        function = self.prefix_access(op.value_to_store, "store")
        self.line(f"{function}({at}, {self.expr(op.value_to_store)}, {count});")

    def prefix_access(self, value: SSAValue, kind: str) -> str:
        """`mlc_load_prefix_v8f32(p, passthru, n)` / `mlc_store_prefix_v8f32(p, v, n)`: the first
        `n` lanes from or to memory, the rest untouched (the pass-through lanes of a load); an
        AVX-512 masked move where the target has one, else `memcpy` of `n` elements (through
        the stack: correct, slower)."""
        vtype = self.value_type(value)
        t = value.type
        assert isinstance(t, VectorType)
        lanes, elt = t.get_shape()[0], c_type(t.get_element_type())
        name = f"mlc_{kind}_prefix_{vtype[4:]}"
        mask = f"(__mmask{max(lanes, 8)})((1u << n) - 1u)"
        if kind == "load":
            signature = f"static inline {vtype} {name}(const {elt}* p, {vtype} v, int n)"
            fallback = f"  memcpy(&v, p, (size_t)n * sizeof({elt}));\n  return v;"
            call = f"return ({vtype}){{prefix}}_mask_loadu_{{suffix}}(({{mtype}})v, {mask}, p);"
        else:
            signature = f"static inline void {name}({elt}* p, {vtype} v, int n)"
            fallback = f"  memcpy(p, &v, (size_t)n * sizeof({elt}));"
            call = f"{{prefix}}_mask_storeu_{{suffix}}(p, {mask}, ({{mtype}})v);"
        masked = "defined(__AVX512F__) && defined(__AVX512VL__)"
        body = x86_or_fallback(t, {512: "defined(__AVX512F__)", 256: masked, 128: masked}, call, fallback)
        return self.helper(name, f"{signature} {{\n{body}\n}}")

    @print_op.register
    def _(self, op: vector.BroadcastOp) -> None:
        t = op.vector.type
        assert isinstance(t, VectorType)
        if isinstance(op.source.type, VectorType):
            raise CEmitError("C backend: 'vector.broadcast' of a vector is not supported")
        x = self.expr(op.source)
        self.assign(op.vector, "{" + ", ".join([x] * t.get_shape()[0]) + "}")

    @print_op.register
    def _(self, op: vector.InsertOp) -> None:
        if op.dynamic_position or isinstance(op.source.type, VectorType):
            raise CEmitError("C backend: only 'vector.insert' of a scalar at a constant position is supported")
        self.assign(op.result, self.expr(op.dest))
        (lane,) = op.static_position.get_values()
        self.line(f"{self.names[op.result]}[{lane}] = {self.expr(op.source)};")

    @print_op.register
    def _(self, op: vector.ExtractOp) -> None:
        if op.dynamic_position or isinstance(op.result.type, VectorType):
            raise CEmitError("C backend: only 'vector.extract' of a scalar at a constant position is supported")
        (lane,) = op.static_position.get_values()
        self.assign(op.result, f"{self.expr(op.vector)}[{lane}]")

    @print_op.register
    def _(self, op: memref.AllocaOp) -> None:
        if op.dynamic_sizes or op.symbol_operands:
            raise CEmitError("C backend: 'memref.alloca' with dynamic sizes is not supported")
        t = checked_memref(op.memref.type)
        name = self.define(op.memref)
        self.line(f"{pointee_type(t)} {name}[{num_elements(t)}] __attribute__((aligned(64)));")

    @print_op.register
    def _(self, op: memref.ViewOp) -> None:
        if op.sizes:
            raise CEmitError("C backend: 'memref.view' with dynamic sizes is not supported")
        source, offset = self.expr(op.source), self.expr(op.byte_shift)
        restrict = op.result in self.restrict_views
        decl = self.pointer_decl(op.result, restrict=restrict)
        cast = pointee_type(checked_memref(op.result.type))
        self.line(f"{decl} = ({cast}*)({source} + {offset});")

    @print_op.register
    def _(self, op: memref.AllocOp) -> None:
        if op.dynamic_sizes or op.symbol_operands:
            raise CEmitError("C backend: 'memref.alloc' with dynamic sizes is not supported")
        t = checked_memref(op.memref.type)
        elem = pointee_type(t)
        decl = self.pointer_decl(op.memref, restrict=True)
        self.line(f"{decl} = ({elem}*)malloc(sizeof({elem}) * {num_elements(t)});")

    @print_op.register
    def _(self, op: memref.DeallocOp) -> None:
        self.line(f"free({self.expr(op.memref)});")

    @print_op.register
    def _(self, op: memref.CopyOp) -> None:
        t = checked_memref(op.source.type)
        checked_memref(op.destination.type)
        src, dst = self.expr(op.source), self.expr(op.destination)
        self.line(f"memmove({dst}, {src}, sizeof({pointee_type(t)}) * {num_elements(t)});")

    @print_op.register
    def _(self, op: scf.ForOp) -> None:
        """Loop-carried values live in the result variables; the body reads copies of them,
        so a yield that permutes the iter_args cannot clobber a value it still needs."""
        results = [self.define(r) for r in op.res]
        for result, init in zip(results, op.iter_args):
            self.line(f"{self.value_type(init)} {result} = {self.expr(init)};")
        block = op.body.block
        lb, ub, step = self.expr(op.lb), self.expr(op.ub), self.expr(op.step)
        iv = self.define(block.args[0])
        if PARALLEL in op.attributes:
            self.line("#pragma omp parallel for schedule(static)")
        self.line(f"for ({c_type(op.lb.type)} {iv} = {lb}; {iv} < {ub}; {iv} += {step}) {{")
        with self.indented():
            for arg, result in zip(block.args[1:], results):
                self.line(f"{self.value_type(arg)} {self.define(arg)} = {result};")
            self.print_block(block, results)
        self.line("}")

    @print_op.register
    def _(self, op: scf.IfOp) -> None:
        results = [self.define(r) for r in op.output]
        for value, name in zip(op.output, results):
            self.line(f"{self.value_type(value)} {name};")
        self.line(f"if ({self.expr(op.cond)}) {{")
        with self.indented():
            self.print_block(op.true_region.block, results)
        if op.false_region.blocks:
            self.line("} else {")
            with self.indented():
                self.print_block(op.false_region.block, results)
        self.line("}")


# --------------------------------------------------------------------------------------------
# Function-level analyses used by the framing
# --------------------------------------------------------------------------------------------


def arena_bytes(op: func.FuncOp) -> int:
    """`mlc.arena_bytes` if present, else the size of a trailing i8 arena argument, else 0."""
    attr = op.attributes.get("mlc.arena_bytes")
    if isinstance(attr, IntegerAttr):
        return attr.value.data
    args = op.function_type.inputs.data
    if args and is_arena_type(args[-1]):
        return num_elements(checked_memref(args[-1]))
    return 0


class _ViewSpan(NamedTuple):
    view: SSAValue
    source: SSAValue
    start: int | None  # None: the byte offset is not a constant
    size: int

    def overlaps(self, other: _ViewSpan) -> bool:
        if self.source != other.source:
            return False
        if self.start is None or other.start is None:
            return True
        return self.start < other.start + other.size and other.start < self.start + self.size


def disjoint_views(op: func.FuncOp) -> set[SSAValue]:
    """Views whose byte range overlaps no other view of the same buffer.

    The memory planner reuses arena bytes for tensors with disjoint lifetimes. Two `restrict`
    pointers to the same bytes declared in one scope are undefined behaviour even if their
    uses never interleave (C99 6.7.3.1), so only views at a constant offset that overlap
    nothing else are marked `restrict`.
    """
    spans: list[_ViewSpan] = []
    for view in op.walk():
        if isinstance(view, memref.ViewOp):
            owner = view.byte_shift.owner
            start = None
            if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
                start = owner.value.value.data
            size = byte_size(checked_memref(view.result.type))
            spans.append(_ViewSpan(view.result, view.source, start, size))
    return {
        span.view
        for span in spans
        if span.start is not None and not any(span.overlaps(o) for o in spans if o is not span)
    }


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def emit_c(module: ModuleOp, *, restrict: bool = True) -> str:
    """The C99 source of a loop-level module."""
    out = io.StringIO()
    CPrinter(stream=out, restrict=restrict).print_module(module)
    return out.getvalue()


@dataclass(frozen=True)
class CTarget(Target):
    """`-t c`: print the module as C99 (`-t 'c{restrict=false}'` drops `restrict`)."""

    name = "c"
    restrict: bool = True

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        CPrinter(stream=output, restrict=self.restrict).print_module(module)
