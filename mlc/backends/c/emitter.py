"""Loop-level xDSL IR (`func`/`scf`/`memref`/`arith`/`math`) printed as self-contained C99.

The op handlers are the shared C-style renderer's (`mlc/backends/cstyle/`), which a CUDA backend
reuses, replacing only the framing, thread indexing and memory spaces:

* `cstyle.types`: C types and literals, byte sizes, and `CEmitError`;
* `cstyle.names`: C identifiers from IR names, and the exported name of a function (`c_symbol`);
* `cstyle.ops`: the tables of the binary, comparison, cast and math families;
* `cstyle.core`: `PrinterCore`, the printer's state (names of values, vector types, helpers),
  `expr`, `flat_index`, `print_block`, and `print_op`, which dispatches on `handlers`, a table
  from op type to handler method that each layer extends (and a subclass may change);
* `cstyle.vector`, `cstyle.arithmetic`, `cstyle.printer`: the handlers of vector, `arith`/`math`
  and `memref`/`scf` ops, layered up to `CStylePrinter`;
* `cstyle.analyses`: read-only arguments, the arena's size, views that may be `restrict`;
* `cstyle.mathlib`: mlc's own f32 `exp`, `log`, `tanh` and `erf` as C text.

This module is C's framing: `CPrinter(CStylePrinter)` adds `print_module`, `print_prologue`
(includes, index helpers, vector typedefs, helper functions), `print_function`,
`print_packed_entry` and `param_decl`, and the target hooks `pointer_decl` (C99 `restrict`) and
`parallel_pragma` (OpenMP). A CUDA printer would override the same: the framing (kernels, the
helpers as `__device__` functions), the hooks (`__restrict__`; a parallel loop indexed by thread
and block, through its own `scf.for` entry in `handlers`), and the memory spaces of allocations.

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

A large function (more than `SPLIT_OPS` ops: one training step is one function) has each
top-level loop nest printed as a hidden function of its own, which GCC compiles faster than one
function of them all, and may be printed for several translation units, so that as many compiler
processes share the work: a nest goes to the unit its place in the function gives it (about as
many ops per unit). An outlined nest takes the buffers and values it reads and defines again the
arena views, splats and index arithmetic it uses, so its code is what it was inline. The units
share the prologue; `UNIT_BREAK` separates them in the one C text (`translation_units`).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import IO

from xdsl.context import Context
from xdsl.dialects import arith, func, memref, vector
from xdsl.dialects.builtin import MemRefType, ModuleOp, StringAttr
from xdsl.ir import BlockArgument, Operation, OpResult, SSAValue
from xdsl.utils.target import Target

from mlc.backends.cstyle.analyses import arena_bytes, disjoint_views, is_read_only
from mlc.backends.cstyle.names import c_symbol
from mlc.backends.cstyle.ops import C_HELPERS
from mlc.backends.cstyle.printer import CStylePrinter
from mlc.backends.cstyle.types import C_SIZES, CEmitError, c_type, checked_memref, is_arena_type, pointee_type

__all__ = ["CEmitError", "CPrinter", "CTarget", "c_type", "emit_c", "translation_units"]
"""`CEmitError` and `c_type` live in `mlc.backends.cstyle.types`; they are also importable from here."""

INCLUDES = ("stdint.h", "stddef.h", "math.h", "stdlib.h", "string.h")

UNIT_BREAK = "\n/* ---- mlc: next translation unit ---- */\n"
"""Between the translation units of one C text; the text before the first is the prologue that
every unit starts with (`translation_units`)."""

SPLIT_OPS = 1500
"""A function of more ops than this has its loop nests outlined into functions of their own,
spread over the translation units `emit_c` is asked for."""

PURE_TOP_LEVEL = (memref.ViewOp, vector.BroadcastOp, vector.CreateMaskOp)
"""Top-level ops an outlined nest defines again instead of taking their value (with `arith` and
`math` ops): views of the arena, splatted constants, masks, index arithmetic."""


def translation_units(source: str) -> list[str]:
    """The translation units of an emitted C text (one unless `emit_c` split a function)."""
    prologue, *units = source.split(UNIT_BREAK)
    return [prologue + unit for unit in units] if units else [source]


@dataclass(eq=False, repr=False)
class CPrinter(CStylePrinter):
    """Prints loop-level IR as C99; every SSA value becomes one local variable.

    The op handlers are `CStylePrinter`'s; this class adds the C file and function framing,
    `restrict` pointers (unless `restrict=False`) and OpenMP for loops marked parallel.
    """

    restrict: bool = True
    units: int = 1
    """Translation units a large function may be spread over."""
    split_ops: int = SPLIT_OPS
    """Ops of a function beyond which its nests are outlined (`SPLIT_OPS`)."""
    earlier_units: list[str] = field(default_factory=list[str], init=False)

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
        for unit in self.earlier_units:
            self.print_string(UNIT_BREAK + unit, indent=0)
        self.print_string((UNIT_BREAK if self.earlier_units else "") + body + "\n", indent=0)

    def print_prologue(self) -> None:
        self.print_string("/* Generated by mlc: C backend. */")
        for header in INCLUDES:
            self.line(f"#include <{header}>")
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
            self.line(f"typedef {elt} {name} __attribute__((vector_size({lanes * C_SIZES[elt]})));")
        for name in self.helpers:  # in first use order: a helper's own helpers come before it
            for text in self.helpers[name].splitlines():
                self.line(text)

    def print_function(self, op: func.FuncOp) -> None:
        if op.is_declaration:
            raise CEmitError(f"C backend: function declaration @{op.sym_name.data} has no body")
        name = op.sym_name.data
        if not re.fullmatch(r"[A-Za-z_]\w*", name, flags=re.ASCII):
            raise CEmitError(f"C backend: function name '{name}' is not a C identifier")
        symbol = c_symbol(name)
        if op.function_type.outputs.data:
            raise CEmitError(
                f"C backend: function @{name} returns values, so it is not loop-level IR yet; lower it first "
                "(mlc-lower-loops,mlc-plan-memory, or -t c without -p for the default pipeline)"
            )
        self.names.clear()
        self.counter = 0
        self.restrict_views = disjoint_views(op)
        unit_of = self.nest_units(op)
        left_out = self.only_outlined(op, unit_of) if unit_of else set()
        streams = [io.StringIO() for _ in range(max(unit_of.values(), default=-1) + 1)]
        declarations: list[str] = []
        outer, self.stream = self.stream, io.StringIO()
        args = op.body.block.args
        params = ", ".join(self.param_decl(arg) for arg in args) or "void"
        self.line(f"void {symbol}({params}) {{")
        with self.indented():
            for inner in op.body.block.ops:
                if isinstance(inner, func.ReturnOp):
                    if inner.operands:
                        raise CEmitError(f"C backend: 'func.return' with operands in @{name}")
                    continue
                if inner in left_out:
                    continue
                if isinstance(nest := inner.attributes.get("mlc.nest"), StringAttr):
                    self.line(f"/* {nest.data.replace('*/', '* /')} */")
                if inner in unit_of:
                    self.outline(inner, f"mlc_{symbol}_nest{len(declarations)}", streams[unit_of[inner]], declarations)
                else:
                    self.print_op(inner)
        self.line("}")
        function, self.stream = self.stream.getvalue(), outer
        self.earlier_units.extend(unit.getvalue() for unit in streams[:-1])
        for declaration in declarations:
            self.line(declaration + ";")
        if streams:
            self.print_string(streams[-1].getvalue(), indent=0)
        self.line("")
        self.line(f"const size_t {symbol}_arena_bytes = {arena_bytes(op)};")
        self.line("")
        self.print_string(function, indent=0)
        self.print_packed_entry(op)

    # ---- a large function over several translation units ---------------------------------

    def nest_units(self, op: func.FuncOp) -> dict[Operation, int]:
        """The unit of each top-level loop nest to outline: none unless the function has more
        than `split_ops` ops; else consecutive nests, about as many ops per unit (even in one
        unit, GCC compiles the nests faster as functions of their own: 4.5 -> 3.0 s for the conv
        autoencoder's training step)."""
        nests = [o for o in op.body.block.ops if o.regions and not o.results]
        sizes = [sum(1 for _ in o.walk()) for o in nests]
        total = sum(sizes)
        if total <= self.split_ops:
            return {}
        unit_of, before = {}, 0
        for nest, size in zip(nests, sizes):  # by the middle of the nest
            unit_of[nest] = min(self.units - 1, (2 * before + size) * self.units // (2 * total))
            before += size
        return unit_of

    def only_outlined(self, op: func.FuncOp, unit_of: dict[Operation, int]) -> set[Operation]:
        """Top-level ops the outlined nests define again and nothing else reads: left out of the
        function itself."""
        left_out: set[Operation] = set()
        block = op.body.block
        for inner in reversed(list(block.ops)):
            if _is_pure(inner) and not inner.regions and all(
                    block.find_ancestor_op_in_block(use.operation) in unit_of.keys() | left_out
                    for result in inner.results for use in result.uses):
                left_out.add(inner)
        return left_out

    def outline(self, nest: Operation, name: str, stream: io.StringIO, declarations: list[str]) -> None:
        """Print `nest` as the function `name` into `stream` and a call of it here. The function
        takes the values the nest reads from outside it, except what it can define again the same
        way (`PURE_TOP_LEVEL`, `arith`, `math`), so its code is the code the nest had inline."""
        inside = set(nest.walk())
        redefined: list[Operation] = []
        params: list[SSAValue] = []

        def need(value: SSAValue) -> None:
            owner = value.owner
            if value in params or isinstance(owner, arith.ConstantOp) or owner in redefined:
                return
            if isinstance(value, OpResult) and _is_pure(owner) and not owner.regions:
                for operand in owner.operands:
                    need(operand)
                redefined.append(owner)
            else:
                params.append(value)

        for op in nest.walk():
            for value in op.operands:
                if not (value.owner in inside if isinstance(value, OpResult) else value.owner.parent_op() in inside):
                    need(value)
        outer_names, outer_stream, outer_indent = self.names, self.stream, self._indent
        self.names, self.stream, self._indent = dict(self.names), stream, 0
        decls = ", ".join(self.outlined_param(value) for value in params) or "void"
        declarations.append(f'__attribute__((visibility("hidden"))) void {name}({decls})')
        self.line("")
        self.line(declarations[-1] + " {")
        with self.indented():
            for op in redefined:
                self.print_op(op)
            self.print_op(nest)
        self.line("}")
        self.names, self.stream, self._indent = outer_names, outer_stream, outer_indent
        self.line(f"{name}({', '.join(self.expr(value) for value in params)});")

    def outlined_param(self, value: SSAValue) -> str:
        """A value passed to an outlined nest, declared as the caller declares it."""
        if isinstance(value, BlockArgument):  # of the function: the nest is at its top level
            return self.param_decl(value)
        if isinstance(value.type, MemRefType):
            return self.pointer_decl(value, restrict=value in self.restrict_views)
        return f"{self.value_type(value)} {self.define(value)}"

    def print_packed_entry(self, op: func.FuncOp) -> None:
        """`void <symbol>_packed(void* const* args)`: the function called with its pointers in one
        array, so that a caller with many buffers (a training step) makes one cheap call."""
        symbol = c_symbol(op.sym_name.data)
        casts = [f"({self.pointee(arg)}*)args[{k}]" for k, arg in enumerate(op.body.block.args)]
        self.line("")
        self.line(f"void {symbol}_packed(void* const* args) {{")
        with self.indented():
            self.line(f"{symbol}({', '.join(casts)});")
        self.line("}")

    def pointee(self, arg: BlockArgument) -> str:
        return pointee_type(checked_memref(arg.type))

    def param_decl(self, arg: BlockArgument) -> str:
        """A memref parameter; read-only inputs are `const` so they may alias each other."""
        decl = self.pointer_decl(arg, restrict=True)
        if is_read_only(arg) and not is_arena_type(arg.type):
            decl = "const " + decl
        return decl

    # ---- target hooks ----------------------------------------------------------------------

    def pointer_decl(self, value: SSAValue, restrict: bool) -> str:
        """`float* restrict v3`: the C declarator of a memref value."""
        t = checked_memref(value.type)
        qualifier = " restrict" if restrict and self.restrict and not is_arena_type(t) else ""
        return f"{pointee_type(t)}*{qualifier} {self.define(value)}"

    def parallel_pragma(self) -> str:
        return "#pragma omp parallel for schedule(static)"


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def emit_c(module: ModuleOp, *, restrict: bool = True, units: int = 1) -> str:
    """The C99 source of a loop-level module; with `units` > 1, a large function's outlined nests
    are spread over that many translation units (`translation_units` splits the text)."""
    out = io.StringIO()
    CPrinter(stream=out, restrict=restrict, units=units).print_module(module)
    return out.getvalue()


def _is_pure(op: Operation) -> bool:
    return isinstance(op, PURE_TOP_LEVEL) or op.name.startswith(("arith.", "math."))


@dataclass(frozen=True)
class CTarget(Target):
    """`-t c`: print the module as C99 (`-t 'c{restrict=false}'` drops `restrict`; `units=N` spreads
    the outlined nests of a function of more than `split_ops` ops over N translation units, as the
    runtime does)."""

    name = "c"
    restrict: bool = True
    units: int = 1
    split_ops: int = SPLIT_OPS

    def emit(self, ctx: Context, module: ModuleOp, output: IO[str]) -> None:
        CPrinter(stream=output, restrict=self.restrict, units=self.units, split_ops=self.split_ops).print_module(module)
