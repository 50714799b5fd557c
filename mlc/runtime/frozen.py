"""Inference with fixed parameters: `mlc.freeze(program, params)`, and the standalone C library it exports.

A frozen program is the model split by `mlc-split-params`: `@<model>_prepare` runs once, when
the program is frozen, on the given parameters (the binary weights' signs packed into words, the
per-filter scales, ...), and every call runs `@<model>_apply` on the inputs and those prepared
values. So a call does only the work that depends on its inputs, and the same values can be
baked into C: `export_c` writes one `.c` and one `.h` that a C program compiles and links with
nothing but libm, the binary layers' weights stored as their packed words (a bit per weight).

The C entry point is `int <model>_run(inputs..., outputs..., void* workspace)`, the model's inputs
and outputs in declaration order, row-major (images NHWC); `mlc.backends.c.library` says the
rest. Compile with `cc -std=c99 -O2` (add `-march=native` for the host's vector units, `-fopenmp`
for threads).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlc.backends.c.library import c_library
from mlc.backends.c.runtime import aligned_arena, buffer_address
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
        fn = self._function
        arena = None if fn.arena_bytes is None else aligned_arena(fn.arena_bytes)
        slots = fn.slots(arena)
        for k, array in self._fixed:
            slots[k] = array.ctypes.data
        return arena, slots

    def export_c(self, directory: str | Path, name: str | None = None) -> Export:
        """Write `<name>.c` and `<name>.h` (`name` defaults to the model's) into `directory`: the
        apply half's C with the fixed values baked in (`mlc.backends.c.library`)."""
        name = name or self.name
        library = c_library(name, f"the model {self.name}", self.program.c_source, self.program.signature,
                            self._function.arena_bytes, self.values)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        source, header = directory / f"{name}.c", directory / f"{name}.h"
        header.write_text(library.header)
        source.write_text(library.source)
        return Export(source, header, library.baked_bytes, self._parameter_bytes)


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
