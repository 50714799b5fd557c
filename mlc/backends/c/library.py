"""A standalone C library: one compiled function's C with its fixed arguments baked in as
`static const` arrays, and an entry point over its `_packed` one that takes the rest.

    int <name>_run(const T* <input>..., T* <output>..., void* workspace);

Inputs and outputs in the function's order, each named as in the model, or `arg<k>` for all
where a name is no C identifier of its own (a C keyword, `workspace`, two alike). `workspace` is
`<NAME>_WORKSPACE_BYTES` bytes aligned to 64, or NULL for a static buffer (then calls must not
overlap). The header lists each input's and output's element type and shape. What is baked is
exact: floats as `c_float_literal` writes them, integer words in unsigned hexadecimal (a word
with its top bit set has no signed literal of its type).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import f32, f64

from mlc.backends.cstyle.names import c_symbol, is_reserved
from mlc.backends.cstyle.types import c_float_literal
from mlc.graph.signature import ModelSignature


@dataclass(frozen=True)
class Library:
    source: str
    header: str
    baked_bytes: int
    """The bytes of the arrays baked into `source`."""


def c_library(name: str, description: str, c_source: str, signature: ModelSignature, arena_bytes: int | None,
              values: Mapping[str, np.ndarray]) -> Library:
    """The `<name>.c` and `<name>.h` of the function `signature` describes (compiled to `c_source`,
    with an arena of `arena_bytes` or none), every argument that is no input baked from `values`."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"'{name}' is not a C identifier")
    inputs = [s for s in signature.args if s.kind == "input"]
    baked = {s.name: np.ascontiguousarray(values[s.name], dtype=s.dtype) for s in signature.args if s.kind != "input"}
    symbols = {n: f"mlc_{name}_p{k}" for k, n in enumerate(baked)}
    names = _parameter_names([s.name for s in (*inputs, *signature.outputs)])
    pointers = [f"(void*){names[s.name]}" if s.kind == "input" else f"(void*){symbols[s.name]}" for s in signature.args]
    pointers += [f"(void*){names[s.name]}" for s in signature.outputs]
    if arena_bytes is not None:
        pointers.append(f"workspace ? workspace : (void*)mlc_{name}_workspace")
    params = [f"const {_c_element(s.dtype)}* {names[s.name]}" for s in inputs]
    params += [f"{_c_element(s.dtype)}* {names[s.name]}" for s in signature.outputs]
    prototype = f"int {name}_run({', '.join([*params, 'void* workspace'])})"
    guard = f"MLC_{name.upper()}_H"
    header = [f"/* {name}.h: {description}, compiled by mlc with its parameters baked in. */",
              f"#ifndef {guard}", f"#define {guard}", "", "#include <stddef.h>", "",
              "/* Scratch memory of one call: pass a 64-byte aligned buffer of this size, or NULL. */",
              f"#define {name.upper()}_WORKSPACE_BYTES {arena_bytes or 0}", ""]
    for s in (*inputs, *signature.outputs):
        kind = "input" if s in inputs else "output"
        header.append(f"/* {kind} {s.name}: {_c_element(s.dtype)}[{_dims(s.shape)}] */")
    header += ["", "/* Runs the model on the inputs, writing the outputs; returns 0. */", f"{prototype};", "",
               f"#endif /* {guard} */", ""]
    source = [f'#include "{name}.h"', "", c_source, ""]
    for n, array in baked.items():
        source.append(f"/* {n}: {array.dtype}[{_dims(array.shape)}] */")
        source.append(f"static const {_c_element(array.dtype, unsigned=True)} {symbols[n]}[{max(array.size, 1)}] "
                      f"__attribute__((aligned(64))) = {{{_literals(array)}}};")
    if arena_bytes is not None:
        source.append(f"static unsigned char mlc_{name}_workspace[{max(arena_bytes, 1)}] __attribute__((aligned(64)));")
    source += ["", f"{prototype} {{", f"  void* mlc_args[] = {{{', '.join(pointers)}}};",
               f"  {c_symbol(signature.name)}_packed(mlc_args);", "  return 0;", "}", ""]
    return Library("\n".join(source), "\n".join(header), sum(a.nbytes for a in baked.values()))


def _parameter_names(names: list[str]) -> dict[str, str]:
    """Each input's and output's C parameter (module docstring)."""
    if len(set(names)) == len(names) and all(
            re.fullmatch(r"[A-Za-z]\w*", n, flags=re.ASCII) and not is_reserved(n) and not n.startswith("mlc_")
            and n != "workspace" for n in names):
        return {n: n for n in names}
    return {n: f"arg{k}" for k, n in enumerate(names)}


def _dims(shape: tuple[int, ...]) -> str:
    return "][".join(map(str, shape)) or "1"


def _c_element(dtype: np.dtype, unsigned: bool = False) -> str:
    kind = np.dtype(dtype)
    if kind == np.float32:
        return "float"
    if kind == np.float64:
        return "double"
    return f"{'u' if unsigned else ''}int{kind.itemsize * 8}_t"


def _literals(array: np.ndarray) -> str:
    flat = array.reshape(-1)
    if flat.dtype.kind == "f":
        if not np.all(np.isfinite(flat)):
            raise ValueError("a parameter to bake is not finite")
        t = f32 if flat.dtype == np.float32 else f64
        return ", ".join(c_float_literal(v, t) for v in flat.tolist())
    suffix = "ull" if flat.dtype.itemsize == 8 else "u"
    return ", ".join(f"0x{v:x}{suffix}" for v in flat.view(f"u{flat.dtype.itemsize}").tolist())
