"""Vector code of the C-style printer: GCC/Clang vector extensions for 1-d vectors, comparisons
and blends on their masks, `memcpy` loads and stores, prefix-masked loads and stores, and fused
multiply-adds, with x86 intrinsics where the compiler says it has them and a portable fallback."""

from __future__ import annotations

from xdsl.dialects import arith, vector
from xdsl.dialects.arith import CMPI_COMPARISON_OPERATIONS
from xdsl.dialects.builtin import Float32Type, VectorType
from xdsl.ir import SSAValue

from mlc.backends.cstyle.core import PrinterCore
from mlc.backends.cstyle.ops import CMPI_OPERATORS, VECTOR_CMPF
from mlc.backends.cstyle.types import C_SIZES, CEmitError, c_type
from mlc.dialects import vx

X86_WIDTHS = {512: "512", 256: "256", 128: ""}
"""How GCC's and Clang's x86 builtins name each vector width in bits (`__builtin_ia32_vfmaddps256`).
The helpers call these builtins, which `<immintrin.h>` only wraps: parsing that header cost
0.3 s of every translation unit with GCC 12, more than many of mlc's units take to compile."""


def x86_kind(t: VectorType) -> tuple[str, str] | None:
    """`("ps", "256")` when `t` is an f32/f64 vector of an x86 register's width: the builtins'
    element kind and width suffix; else None."""
    elt = c_type(t.get_element_type())
    bits = t.get_shape()[0] * C_SIZES[elt] * 8
    if elt not in ("float", "double") or bits not in X86_WIDTHS:
        return None
    return ("ps" if elt == "float" else "pd"), X86_WIDTHS[bits]


def lane_mask_type(lanes: int) -> str:
    """The C type of an AVX-512 mask register over `lanes` lanes (a bit per lane, 8 at least)."""
    return f"uint{max(lanes, 8)}_t"


def guarded(condition: str, x86: str, fallback: str) -> str:
    """A helper's body: the builtin call `x86` under `#if condition`, else the portable `fallback`."""
    return f"#if {condition}\n  {x86}\n#else\n{fallback}\n#endif"


class VectorPrinter(PrinterCore):
    """The handlers of vector ops (`vector`, `vx`) and the vector helpers other handlers use."""

    def print_vector_cmpf(self, op: vx.CmpfOp) -> None:
        predicate = op.predicate.data
        if predicate not in VECTOR_CMPF:
            raise CEmitError(f"C backend: no vector form of the cmpf predicate '{predicate}'")
        self.assign(op.result, f"{self.expr(op.lhs)} {VECTOR_CMPF[predicate]} {self.expr(op.rhs)}")

    def print_vector_cmpi(self, op: vx.CmpiOp) -> None:
        predicate = op.predicate.data
        operator, unsigned = CMPI_OPERATORS[CMPI_COMPARISON_OPERATIONS.index(predicate)]
        if unsigned:  # would need the vector cast to unsigned lanes, which no lowering asks for yet
            raise CEmitError(f"C backend: no vector form of the cmpi predicate '{predicate}'")
        self.assign(op.result, f"{self.expr(op.lhs)} {operator} {self.expr(op.rhs)}")

    def print_vector_select(self, op: vx.SelectOp) -> None:
        mask = self.expr(op.cond)
        if self.mask_type(op.cond) != self.integer_vector_type(op.result):  # compared f32, picks i64: widen it
            mask = f"__builtin_convertvector({mask}, {self.integer_vector_type(op.result)})"
        self.assign(op.result, self.blend(op.result, mask, self.expr(op.lhs), self.expr(op.rhs)))

    def integer_vector_type(self, value: SSAValue) -> str:
        """The vector of signed integers as wide as `value`'s elements (the type of its masks)."""
        t = value.type
        assert isinstance(t, VectorType)
        bits = C_SIZES[c_type(t.get_element_type())] * 8
        itype = f"mlc_v{t.get_shape()[0]}i{bits}"
        self.vector_types[itype] = (t.get_shape()[0], f"int{bits}_t")
        return itype

    def blend(self, result: SSAValue, mask: str, a: str, b: str) -> str:
        """`mask ? a : b` lane by lane, as bit operations on the mask (all ones or all zeros, as
        wide as the result's elements)."""
        vtype, itype = self.value_type(result), self.integer_vector_type(result)
        return f"({vtype})(({mask} & ({itype}){a}) | (~({mask}) & ({itype}){b}))"

    def vector_fma(self, result: SSAValue) -> str:
        """`mlc_fma_v16f32(a, b, c)`: the target's fused multiply-add instruction where the compiler
        has one for this width, `fma` lane by lane otherwise (the same value either way)."""
        vtype = self.value_type(result)
        t = result.type
        assert isinstance(t, VectorType)
        lanes, single = t.get_shape()[0], isinstance(t.get_element_type(), Float32Type)
        fallback = f"  {vtype} r;\n  for (int l = 0; l < {lanes}; l++) r[l] = fma{'f' if single else ''}(a[l], b[l], c[l]);\n  return r;"
        name = f"mlc_fma_{vtype[4:]}"
        body = fallback
        if (x86 := x86_kind(t)) is not None:
            kind, width = x86
            if width == "512":  # every lane (mask of ones), rounding as the current mode (4)
                body = guarded("defined(__AVX512F__)", f"return __builtin_ia32_vfmadd{kind}512_mask(a, b, c, "
                               f"({lane_mask_type(lanes)})-1, 4);", fallback)
            else:
                body = guarded("defined(__FMA__)", f"return __builtin_ia32_vfmadd{kind}{width}(a, b, c);", fallback)
        return self.helper(name, f"static inline {vtype} {name}({vtype} a, {vtype} b, {vtype} c) {{\n{body}\n}}")

    def print_vector_load(self, op: vector.LoadOp) -> None:
        name = self.define(op.result)
        self.line(f"{self.value_type(op.result)} {name};")
        self.line(f"memcpy(&{name}, &{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}], sizeof {name});")

    def print_vector_store(self, op: vector.StoreOp) -> None:
        value = self.expr(op.vector)
        self.line(f"memcpy(&{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}], &{value}, sizeof {value});")

    def print_create_mask(self, op: vector.CreateMaskOp) -> None:
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

    def print_masked_load(self, op: vector.MaskedLoadOp) -> None:
        count, at = self.prefix_lanes(op.mask), f"&{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}]"
        function = self.prefix_access(op.result, "load")
        self.assign(op.result, f"{function}({at}, {self.expr(op.pass_thru)}, {count})")

    def print_masked_store(self, op: vector.MaskedStoreOp) -> None:
        count, at = self.prefix_lanes(op.mask), f"&{self.expr(op.base)}[{self.flat_index(op.base, op.indices)}]"
        function = self.prefix_access(op.value_to_store, "store")
        self.line(f"{function}({at}, {self.expr(op.value_to_store)}, {count});")

    def prefix_access(self, value: SSAValue, kind: str) -> str:
        """`mlc_load_prefix_v8f32(p, passthru, n)` / `mlc_store_prefix_v8f32(p, v, n)`: the first
        `n` lanes from or to memory, the rest untouched (the pass-through lanes of a load). An
        AVX-512 masked move where the target has one; else AVX's `vmaskmov` with the lane mask
        read from a table (`n` is a constant once inlined, so the mask is too); else `memcpy`
        of `n` elements, through the stack: correct, slower (a store of `n` lanes and a load of
        all of them defeat store forwarding)."""
        vtype = self.value_type(value)
        t = value.type
        assert isinstance(t, VectorType)
        lanes, elt = t.get_shape()[0], c_type(t.get_element_type())
        name = f"mlc_{kind}_prefix_{vtype[4:]}"
        if kind == "load":
            signature = f"static inline {vtype} {name}(const {elt}* p, {vtype} v, int n)"
            fallback = f"  memcpy(&v, p, (size_t)n * sizeof({elt}));\n  return v;"
        else:
            signature = f"static inline void {name}({elt}* p, {vtype} v, int n)"
            fallback = f"  memcpy(p, &v, (size_t)n * sizeof({elt}));"
        if (x86 := x86_kind(t)) is None:
            return self.helper(name, f"{signature} {{\n{fallback}\n}}")
        ps, width = x86
        if width != "512":  # AVX: vmaskmov with the lanes' mask (all ones or zeros) from a table
            bits = C_SIZES[elt] * 8
            per = 256 // bits  # lanes of a 256-bit vector: the table serves both widths
            table = self.helper(f"mlc_lanes{bits}", f"static const int{bits}_t mlc_lanes{bits}[{2 * per}] = "
                                + "{" + ", ".join(["-1"] * per + ["0"] * per) + "};")
            mtype = f"mlc_mask_{vtype[4:]}"  # the builtins take int (f32) or long long (f64) lanes
            self.vector_types[mtype] = (lanes, "int32_t" if elt == "float" else "long long")
            mask = f"{mtype} m;\n  memcpy(&m, {table} + {per} - n, sizeof m);\n  "
            avx = mask + (f"return __builtin_ia32_blendv{ps}{width}(v, __builtin_ia32_maskload{ps}{width}"
                          f"((const {vtype}*)p, m), ({vtype})m);" if kind == "load"
                          else f"__builtin_ia32_maskstore{ps}{width}(({vtype}*)p, m, v);")
            fallback = guarded("defined(__AVX__)", avx, fallback)
        lane_bits = f"({lane_mask_type(lanes)})((1u << n) - 1u)"
        pointer = "(const void*)p" if kind == "load" else "(void*)p"  # GCC's take elements, Clang's vectors
        masked = f"__builtin_ia32_{kind}u{ps}{width or '128'}_mask({pointer}, v, {lane_bits});"
        vl = "defined(__AVX512F__)" + (" && defined(__AVX512VL__)" if width != "512" else "")
        body = guarded(vl, ("return " if kind == "load" else "") + masked, fallback)
        return self.helper(name, f"{signature} {{\n{body}\n}}")

    def print_broadcast(self, op: vector.BroadcastOp) -> None:
        t = op.vector.type
        assert isinstance(t, VectorType)
        if isinstance(op.source.type, VectorType):
            raise CEmitError("C backend: 'vector.broadcast' of a vector is not supported")
        x = self.expr(op.source)
        self.assign(op.vector, "{" + ", ".join([x] * t.get_shape()[0]) + "}")

    def print_insert(self, op: vector.InsertOp) -> None:
        if op.dynamic_position or isinstance(op.source.type, VectorType):
            raise CEmitError("C backend: only 'vector.insert' of a scalar at a constant position is supported")
        self.assign(op.result, self.expr(op.dest))
        (lane,) = op.static_position.get_values()
        self.line(f"{self.names[op.result]}[{lane}] = {self.expr(op.source)};")

    def print_extract(self, op: vector.ExtractOp) -> None:
        if op.dynamic_position or isinstance(op.result.type, VectorType):
            raise CEmitError("C backend: only 'vector.extract' of a scalar at a constant position is supported")
        (lane,) = op.static_position.get_values()
        self.assign(op.result, f"{self.expr(op.vector)}[{lane}]")

    handlers = PrinterCore.handlers | {
        vx.CmpfOp: print_vector_cmpf,
        vx.CmpiOp: print_vector_cmpi,
        vx.SelectOp: print_vector_select,
        vector.LoadOp: print_vector_load,
        vector.StoreOp: print_vector_store,
        vector.CreateMaskOp: print_create_mask,
        vector.MaskedLoadOp: print_masked_load,
        vector.MaskedStoreOp: print_masked_store,
        vector.BroadcastOp: print_broadcast,
        vector.InsertOp: print_insert,
        vector.ExtractOp: print_extract,
    }
