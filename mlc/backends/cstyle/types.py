"""C types and literals: the C spelling of xDSL types and constants, byte sizes,
and `CEmitError`, raised for IR outside the loop-level contract."""

from __future__ import annotations

import math as pymath
import struct

from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    MemRefType,
    NoneAttr,
    VectorType,
    i1,
    i8,
)
from xdsl.ir import Attribute
from xdsl.utils.exceptions import DiagnosticException


class CEmitError(DiagnosticException, NotImplementedError):
    """IR outside the loop-level contract, naming what is wrong.

    From the API it is an internal error (the pipeline must reach loop level); from `mlc-opt -t c`
    with a pipeline that stops early it is the user's, so it is also a `DiagnosticException`,
    which the driver prints as one message.
    """


C_SIZES = {"float": 4, "double": 8, "int32_t": 4, "int64_t": 8, "intptr_t": 8, "long long": 8}
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
    if elt == i1:
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
    return isinstance(t, MemRefType) and t.get_element_type() == i8


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

