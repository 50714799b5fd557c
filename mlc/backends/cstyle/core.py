"""The state and op dispatch of the C-style printer: SSA values named as locals, the types of
values (vector typedefs recorded for the prologue), helper functions defined once, flat indices,
region bodies, and the table from op types to the handlers of the layers above."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from xdsl.dialects import arith, scf
from xdsl.dialects.builtin import FloatAttr, IntegerAttr, VectorType, i1
from xdsl.ir import Block, Operation, SSAValue
from xdsl.utils.base_printer import BasePrinter

from mlc.backends.cstyle.names import c_identifier
from mlc.backends.cstyle.types import (
    C_SIZES,
    CEmitError,
    c_float_literal,
    c_int_literal,
    c_type,
    checked_memref,
    vector_type_name,
)
from mlc.dialects import vx


@dataclass(eq=False, repr=False)
class PrinterCore(BasePrinter):
    """Prints loop-level IR as C-style source; every SSA value becomes one local variable.

    `print_op` dispatches on `handlers`, which maps an op type to the method printing it; each
    layer above adds its handlers to its base's table (a subclass may replace one). Targets
    define the hooks at the end: how a memref pointer is declared and how a loop marked parallel
    is shared out.
    """

    handlers: ClassVar[dict[type[Operation], Callable[[Any, Any], None]]] = {}
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
        if t.get_element_type() == i1:
            return self.mask_type(value)
        name = vector_type_name(t)
        self.vector_types[name] = (t.get_shape()[0], c_type(t.get_element_type()))
        return name

    def mask_type(self, value: SSAValue) -> str:
        """A comparison of vectors gives a vector of signed integers as wide as the compared
        elements (all ones where true); logic on masks keeps that type."""
        owner = value.owner
        if isinstance(owner, vx.CmpfOp | vx.CmpiOp | arith.CmpiOp):
            compared = owner.lhs.type
        elif isinstance(owner, arith.AndIOp | arith.OrIOp | arith.XOrIOp):
            return self.mask_type(owner.lhs)
        else:
            raise CEmitError(f"C backend: a vector of i1 must come from a comparison, not '{getattr(owner, 'name', owner)}'")
        assert isinstance(compared, VectorType)
        width = C_SIZES[c_type(compared.get_element_type())] * 8
        name = f"mlc_v{compared.get_shape()[0]}i{width}"
        self.vector_types[name] = (compared.get_shape()[0], f"int{width}_t")
        return name

    def helper(self, name: str, text: str) -> str:
        """Use the helper function `name` (defined once in the prologue)."""
        self.helpers.setdefault(name, text)
        return name

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

    # ---- op dispatch ----------------------------------------------------------------------

    def print_op(self, op: Operation) -> None:
        """The handler of the op's class, or of its nearest base class in `handlers` (the one
        `functools.singledispatch` would choose; `Operation`'s prints the table-driven families)."""
        for kind in type(op).__mro__:
            if kind in self.handlers:
                self.handlers[kind](self, op)
                return
        raise CEmitError(f"C backend: no C emission for '{op.name}'")

    # ---- target hooks ----------------------------------------------------------------------

    def pointer_decl(self, value: SSAValue, restrict: bool) -> str:
        """The declarator of a memref value (`float* restrict v3` in C)."""
        raise NotImplementedError

    def parallel_pragma(self) -> str:
        """The line before a loop marked `mlc.parallel` (an OpenMP pragma in C)."""
        raise NotImplementedError
