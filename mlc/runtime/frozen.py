"""Inference with fixed parameters: `mlc.freeze(program, params)`, and the standalone C library it exports.

A frozen program is the model split by `mlc-split-params`: `@<model>_prepare` runs once, when
the program is frozen, on the given parameters (the binary weights' signs packed into words, the
per-filter scales, ...), and every call runs `@<model>_apply` on the inputs and those prepared
values. So a call does only the work that depends on its inputs, and the same values can be
baked into C: `export_c` writes one `.c` and one `.h` that a C program compiles and links with
nothing but libm, the binary layers' weights stored as their packed words (a bit per weight).

The C entry point (see the header it writes):

    int <model>_run(const float* <input>..., float* <output>..., void* workspace);

Inputs and outputs are the model's, in declaration order, row-major (images NHWC), of the
element type and shape the header lists, each named as in the model (or `arg<k>` for all, where
a name is no C identifier of its own). `workspace` is `<MODEL>_WORKSPACE_BYTES` bytes aligned
to 64 (NULL: a static buffer, so calls with NULL must not overlap). It returns 0. Compile with
`cc -std=c99 -O2` (add `-march=native` for the host's vector units, `-fopenmp` for threads).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from mlc.backends.c.runtime import buffer_address
from mlc.backends.cstyle.names import c_symbol, is_reserved
from mlc.runtime.arguments import check_names, checked
from mlc.runtime.program import Program, build_programs


@dataclass(frozen=True)
class Export:
    """What `FrozenProgram.export_c` wrote: the two files, and the bytes of parameters baked into
    the `.c` against the parameters as the model declares them."""

    source: Path
    header: Path
    baked_bytes: int
    parameter_bytes: int


class FrozenProgram:
    """An inference program with its parameters fixed: `run(inputs)`, and `export_c`.

    The fixed values are its own arrays (copies), so their addresses go into each argument
    array once, when it is made; a call checks and places only its inputs and outputs."""

    def __init__(self, apply: Program, values: dict[str, np.ndarray], parameter_bytes: int) -> None:
        self.program = apply
        """`@<model>_apply`, compiled."""
        self.values = values
        """What `program` takes besides the inputs: parameters read as they are, `prepared.<k>`."""
        self._parameter_bytes = parameter_bytes
        args = apply.signature.args
        self._inputs = [(k, spec) for k, spec in enumerate(args) if spec.kind == "input"]
        self._fixed = [(k, values[spec.name]) for k, spec in enumerate(args) if spec.kind != "input"]
        self._outputs = [(len(args) + j, spec) for j, spec in enumerate(apply.signature.outputs)]
        self._calls: list[tuple[object, object]] = []  # (arena, argument array) pairs not in use
        self._function = apply.function

    @property
    def name(self) -> str:
        return self.program.name.removesuffix("_apply")

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs by name (as `Program.run` in inference mode, bit for bit). Calls
        from several threads run in parallel, each on an arena of its own."""
        if len(inputs) != len(self._inputs) or any(spec.name not in inputs for _, spec in self._inputs):
            check_names("input", inputs, self.program.signature.inputs)  # raises, naming what is wrong
        held = [checked(spec, inputs[spec.name]) for _, spec in self._inputs]
        outs = {spec.name: np.empty(spec.shape, dtype=spec.dtype) for _, spec in self._outputs}
        try:
            call = self._calls.pop()
        except IndexError:  # every argument array is in use (or none made yet)
            call = self._new_call()
        try:
            slots = call[1]
            for (k, _), array in zip(self._inputs, held):
                slots[k] = buffer_address(array)  # pyright: ignore[reportIndexIssue]
            for (k, _), array in zip(self._outputs, outs.values()):
                slots[k] = buffer_address(array)  # pyright: ignore[reportIndexIssue]
            self._function.call_slots(slots)  # pyright: ignore[reportArgumentType]
        finally:
            self._calls.append(call)
        return outs

    def _new_call(self) -> tuple[object, object]:
        from mlc.backends.c.runtime import aligned_arena

        fn = self.program.function
        arena = None if fn.arena_bytes is None else aligned_arena(fn.arena_bytes)
        slots = fn.slots(arena)
        for k, array in self._fixed:
            slots[k] = array.ctypes.data
        return arena, slots

    def export_c(self, directory: str | Path, name: str | None = None) -> Export:
        """Write `<name>.c` and `<name>.h` (`name` defaults to the model's) into `directory`."""
        name = name or self.name
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"'{name}' is not a C identifier")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        sig, fn = self.program.signature, self.program.function
        inputs = [s for s in sig.args if s.kind == "input"]
        baked = {s.name: np.ascontiguousarray(self.values[s.name], dtype=s.dtype) for s in sig.args if s.kind != "input"}
        symbols = {n: f"mlc_{name}_p{k}" for k, n in enumerate(baked)}
        names = _parameter_names([s.name for s in (*inputs, *sig.outputs)])
        pointers = [f"(void*){names[s.name]}" if s.kind == "input" else f"(void*){symbols[s.name]}" for s in sig.args]
        pointers += [f"(void*){names[s.name]}" for s in sig.outputs]
        workspace = fn.arena_bytes or 0
        if fn.arena_bytes is not None:
            pointers.append(f"workspace ? workspace : (void*)mlc_{name}_workspace")
        params = [f"const {_c_element(s.dtype)}* {names[s.name]}" for s in inputs]
        params += [f"{_c_element(s.dtype)}* {names[s.name]}" for s in sig.outputs]
        prototype = f"int {name}_run({', '.join([*params, 'void* workspace'])})"
        guard = f"MLC_{name.upper()}_H"
        lines = [f"/* {name}.h: the model {self.name}, compiled by mlc with its parameters baked in. */",
                 f"#ifndef {guard}", f"#define {guard}", "", "#include <stddef.h>", "",
                 "/* Scratch memory of one call: pass a 64-byte aligned buffer of this size, or NULL. */",
                 f"#define {name.upper()}_WORKSPACE_BYTES {workspace}", ""]
        for s in (*inputs, *sig.outputs):
            kind = "input" if s in inputs else "output"
            lines.append(f"/* {kind} {s.name}: {_c_element(s.dtype)}[{']['.join(map(str, s.shape)) or '1'}] */")
        lines += ["", "/* Runs the model on the inputs, writing the outputs; returns 0. */", f"{prototype};", "",
                  f"#endif /* {guard} */", ""]
        header = directory / f"{name}.h"
        header.write_text("\n".join(lines))
        body = [f'#include "{name}.h"', "", self.program.c_source, ""]
        for n, array in baked.items():
            body.append(f"/* {n}: {array.dtype}[{']['.join(map(str, array.shape)) or '1'}] */")
            body.append(f"static const {_c_element(array.dtype, unsigned=True)} {symbols[n]}[{max(array.size, 1)}] "
                        f"__attribute__((aligned(64))) = {{{_literals(array)}}};")
        if fn.arena_bytes is not None:
            body.append(f"static unsigned char mlc_{name}_workspace[{max(workspace, 1)}] __attribute__((aligned(64)));")
        body += ["", f"{prototype} {{", f"  void* mlc_args[] = {{{', '.join(pointers)}}};",
                 f"  {c_symbol(sig.name)}_packed(mlc_args);", "  return 0;", "}", ""]
        source = directory / f"{name}.c"
        source.write_text("\n".join(body))
        return Export(source, header, sum(a.nbytes for a in baked.values()), self._parameter_bytes)


def freeze(program: Program, params: Mapping[str, np.ndarray]) -> FrozenProgram:
    """`program` (an inference program) with `params` fixed, as `torch.jit.freeze` fixes a
    module's: what they alone decide (binary weights packed, scales) computed once, now."""
    from mlc.passes.pipelines import DEFAULT_PIPELINE, SCHEDULE, is_training_mode

    pipeline = program._pipeline or DEFAULT_PIPELINE  # pyright: ignore[reportPrivateUsage]
    if program._source is None or is_training_mode(pipeline) or SCHEDULE not in pipeline:  # pyright: ignore[reportPrivateUsage]
        raise ValueError(f"@{program.name}: only an inference program compiled from a model source, through a "
                         f"pipeline that schedules ({SCHEDULE}), can be frozen")
    check_names("parameter", params, (*program.signature.params, *program.signature.states))
    split = pipeline.replace(SCHEDULE, f"mlc-split-params,{SCHEDULE}", 1)
    prepare, apply = build_programs(program._source, program._model, split, ("_prepare", "_apply"))  # pyright: ignore[reportPrivateUsage]
    prepared = prepare.run({s.name: params[s.name] for s in prepare.signature.args}, {})
    values = {s.name: np.array(prepared[s.name]) if s.name in prepared else np.array(checked(s, params[s.name]), order="C")
              for s in apply.signature.args if s.kind != "input"}  # copies of their own, checked, contiguous
    declared = sum(np.asarray(params[s.name]).nbytes for s in (*program.signature.params, *program.signature.states))
    return FrozenProgram(apply, values, declared)


def _parameter_names(names: list[str]) -> dict[str, str]:
    """The C parameter of each input and output: its own name where that is a C identifier no
    one else has and C does not reserve, else `in<k>`/`out<k>`-style positional names for all."""
    mine = {n: n for n in names}
    if len(set(names)) == len(names) and all(
            re.fullmatch(r"[A-Za-z]\w*", n, flags=re.ASCII) and not is_reserved(n) and not n.startswith("mlc_")
            and n != "workspace" for n in names):
        return mine
    return {n: f"arg{k}" for k, n in enumerate(names)}


def _c_element(dtype: np.dtype, unsigned: bool = False) -> str:
    kind = np.dtype(dtype)
    if kind == np.float32:
        return "float"
    if kind == np.float64:
        return "double"
    return f"{'u' if unsigned else ''}int{kind.itemsize * 8}_t"


def _literals(array: np.ndarray) -> str:
    """The elements as exact C literals: floats with enough digits to round-trip, integer words
    as unsigned hexadecimal (a word with its top bit set has no signed literal of its type)."""
    flat = array.reshape(-1)
    if flat.dtype.kind == "f":
        if not np.all(np.isfinite(flat)):
            raise ValueError("a parameter to bake is not finite")
        digits, suffix = (9, "f") if flat.dtype == np.float32 else (17, "")
        return ", ".join(_float_literal(f"{v:.{digits}g}") + suffix for v in flat.tolist())
    suffix = "ull" if flat.dtype.itemsize == 8 else "u"
    return ", ".join(f"0x{v:x}{suffix}" for v in flat.view(f"u{flat.dtype.itemsize}").tolist())


def _float_literal(text: str) -> str:
    return text if any(c in text for c in ".e") else text + ".0"
