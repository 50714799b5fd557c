"""Compile emitted C into a cached shared library, load it, and call it on NumPy arrays.

Arrays are passed as raw pointers (`arr.ctypes.data`), never copied, so the wrapper checks
what the C code silently assumes: dtype, static shape, C-contiguity, and that no buffer the
function writes overlaps another argument (the parameters are `restrict`).
"""

from __future__ import annotations

import ctypes
import functools
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from xdsl.dialects import func
from xdsl.dialects.builtin import (
    Float32Type,
    Float64Type,
    IndexType,
    IntegerType,
    ModuleOp,
)
from xdsl.ir import Attribute

from mlc.backends.cache import cached_build, content_key, temporary_path
from mlc.backends.c.emitter import emit_c
from mlc.backends.cstyle.analyses import arena_bytes, is_read_only
from mlc.backends.cstyle.types import checked_memref, is_arena_type

# No -ffast-math: results must match PyTorch's IEEE semantics (NaN, inf, no reassociation).
# -O2: the vector code is explicit (schedules vectorise), so -O3 adds compile time (20% on the
# LeNet-5 training step) and no speed. -fno-tree-loop-if-convert: GCC 12.2 at -O3 -march=native
# (AVX2/AVX-512) if-converts some of the loop nests mlc emits into wrong code (found by the
# random-program tests against PyTorch, e.g. a binconv2d whose sign(x) select feeds the next
# nest); kept at -O2, where loop vectorisation also runs. -fopenmp: loops a schedule marks
# parallel are `#pragma omp parallel for`. -fno-predictive-commoning: GCC 12.2 applies it inside
# OpenMP-outlined loops at -O2, and it stores back values it loaded ahead into elements another
# thread writes (a data race: found by the random-schedule tests; a standalone C reproducer
# loses about 1 write in 100 calls on 2 threads).
# -ffp-contract=off: no multiply and add fused unless the IR says so (`math.fma`), so a value
# never depends on how the C compiler vectorises or schedules a loop. -fno-math-errno: sqrt and
# fabs become instructions (vectorisable; mlc never reads errno).
DEFAULT_FLAGS: tuple[str, ...] = (
    "-O2",
    "-fopenmp",
    "-ffp-contract=off",
    "-fno-math-errno",
    "-march=native",
    "-fno-tree-loop-if-convert",
    "-fno-predictive-commoning",
    "-std=c99",
    "-fPIC",
    "-shared",
)

ARENA_ALIGNMENT = 64


# --------------------------------------------------------------------------------------------
# Compile and load
# --------------------------------------------------------------------------------------------


def compiler_command() -> tuple[str, ...]:
    """`$CC` (which may carry arguments, e.g. `ccache gcc`), else `cc`."""
    return tuple(shlex.split(os.environ.get("CC") or "cc"))


@functools.lru_cache(maxsize=None)
def compiler_identity(command: tuple[str, ...]) -> str:
    """Resolved compiler path and first `--version` line, part of the cache key.

    Memoised per process, so the compiler is run at most once for this and never on a
    cache hit after that.
    """
    path = shutil.which(command[0])
    if path is None:
        raise RuntimeError(f"C compiler '{command[0]}' not found (set $CC)")
    proc = subprocess.run([path, *command[1:], "--version"], capture_output=True, text=True)
    lines = (proc.stdout or proc.stderr).splitlines()
    return f"{os.path.realpath(path)}\n{lines[0] if lines else ''}"


def compile_c(source: str, *, flags: tuple[str, ...] = DEFAULT_FLAGS) -> Path:
    """Path of a shared library built from `source`, compiled only on a cache miss.

    A compiler failure is an internal error of mlc (the emitter produced bad C) and raises
    `RuntimeError` with the compiler's stderr.
    """
    command = compiler_command()
    key = content_key(source, "\0".join(flags), "\0".join(command), compiler_identity(command))

    def build(library: Path) -> None:
        c_file = temporary_path(library.parent, key, ".c")
        c_file.write_text(source)
        try:
            argv = [*command, *flags, "-o", str(library), str(c_file), "-lm"]
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"C compiler failed (exit {proc.returncode}): {shlex.join(argv)}\n"
                    f"{proc.stderr}"
                )
            os.replace(c_file, library.parent / f"{key}.c")  # kept beside the .so for debugging
        finally:
            c_file.unlink(missing_ok=True)

    return cached_build(key, ".so", build)


@functools.lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    return ctypes.CDLL(path)


def load_library(path: str | os.PathLike[str]) -> ctypes.CDLL:
    """The loaded library, memoised per path within the process."""
    return _load(os.fspath(path))


def set_num_threads(count: int) -> None:
    """Threads for the parallel loops of every mlc library in this process (OpenMP's
    `omp_set_num_threads`; by default OpenMP uses one per core, or `OMP_NUM_THREADS`)."""
    if count < 1:
        raise ValueError(f"the thread count must be at least 1, got {count}")
    ctypes.CDLL("libgomp.so.1").omp_set_num_threads(count)


# --------------------------------------------------------------------------------------------
# Calling
# --------------------------------------------------------------------------------------------


class BufferSpec(NamedTuple):
    """What a memref parameter requires of the array passed for it."""

    dtype: np.dtype
    shape: tuple[int, ...]
    read_only: bool = False


_NUMPY_DTYPES: dict[str, np.dtype] = {
    "f32": np.dtype(np.float32),
    "f64": np.dtype(np.float64),
    "i1": np.dtype(np.bool_),
    "i8": np.dtype(np.int8),
    "i16": np.dtype(np.int16),
    "i32": np.dtype(np.int32),
    "i64": np.dtype(np.int64),
}


def numpy_dtype(t: Attribute) -> np.dtype:
    """The NumPy dtype matching the C element type the emitter uses for `t`."""
    if isinstance(t, IndexType):
        return np.dtype(np.intp)
    if isinstance(t, Float32Type):
        return _NUMPY_DTYPES["f32"]
    if isinstance(t, Float64Type):
        return _NUMPY_DTYPES["f64"]
    if isinstance(t, IntegerType) and f"i{t.width.data}" in _NUMPY_DTYPES:
        return _NUMPY_DTYPES[f"i{t.width.data}"]
    raise ValueError(f"no NumPy dtype for element type '{t}'")


def aligned_arena(nbytes: int, alignment: int = ARENA_ALIGNMENT) -> np.ndarray:
    """A uint8 buffer whose start is `alignment`-aligned (typed views are cast from it)."""
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + nbytes]


def _span(arr: np.ndarray) -> tuple[int, int]:
    return arr.ctypes.data, arr.ctypes.data + arr.nbytes


class CFunction:
    """A compiled entry point `void name(T* ..., uint8_t* arena)` called on NumPy arrays.

    Without an explicit `arena=`, calls reuse one arena owned by the wrapper, so concurrent
    calls of the same wrapper from several threads must each pass their own arena.
    """

    def __init__(
        self,
        library: ctypes.CDLL,
        name: str,
        args: Sequence[BufferSpec],
        arena_bytes: int | None = None,
    ) -> None:
        """`arena_bytes` is None when the function takes no arena parameter."""
        self.name = name
        self.args = tuple(BufferSpec(np.dtype(a[0]), tuple(a[1]), *a[2:]) for a in args)
        self.arena_bytes = arena_bytes
        self._owned_arena: np.ndarray | None = None
        self._fn = getattr(library, name)
        self._fn.argtypes = [ctypes.c_void_p] * (len(self.args) + (arena_bytes is not None))
        self._fn.restype = None
        self._packed = getattr(library, f"{name}_packed")
        self._packed.argtypes = [ctypes.c_void_p]
        self._packed.restype = None
        self._addresses = (ctypes.c_void_p * (len(self.args) + 1))()

    @classmethod
    def from_func(cls, library: ctypes.CDLL, op: func.FuncOp) -> CFunction:
        """The wrapper for a loop-level `func.func`; a trailing i8 memref is the arena."""
        params = list(op.body.block.args)
        arena = None
        if params and is_arena_type(params[-1].type):
            params.pop()
            arena = arena_bytes(op)
        specs = []
        for arg in params:
            t = checked_memref(arg.type)
            specs.append(BufferSpec(numpy_dtype(t.element_type), t.get_shape(), is_read_only(arg)))
        return cls(library, op.sym_name.data, specs, arena)

    def __call__(self, *arrays: np.ndarray, arena: np.ndarray | None = None) -> None:
        if len(arrays) != len(self.args):
            raise ValueError(f"{self.name}: expected {len(self.args)} arrays, got {len(arrays)}")
        for i, (arr, spec) in enumerate(zip(arrays, self.args)):
            self._check(i, arr, spec)
        buffers = list(arrays)
        if self.arena_bytes is None:
            if arena is not None:
                raise ValueError(f"{self.name}: this function takes no arena")
        else:
            buffers.append(self._arena(arena))
        self._check_no_overlap(buffers)
        slots = self._addresses
        for k, b in enumerate(buffers):
            slots[k] = b.ctypes.data
        self._packed(slots)

    def slots(self) -> ctypes.Array[ctypes.c_void_p]:
        """An array of the function's buffer addresses for `call_slots`, the arena's (the
        wrapper's own) filled in."""
        slots = (ctypes.c_void_p * (len(self.args) + 1))()
        if self.arena_bytes is not None:
            slots[len(self.args)] = self._arena(None).ctypes.data
        return slots

    def call_slots(self, slots: ctypes.Array[ctypes.c_void_p]) -> None:
        """Call with the buffers' addresses in argument order. Nothing is checked: for callers
        that own and have checked every buffer (Trainer)."""
        self._packed(slots)

    def _check(self, i: int, arr: object, spec: BufferSpec) -> None:
        where = f"{self.name}: argument {i}"
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"{where}: expected a numpy.ndarray, got {type(arr).__name__}")
        if arr.dtype != spec.dtype:
            raise ValueError(f"{where}: expected dtype {spec.dtype}, got {arr.dtype}")
        if arr.shape != spec.shape:
            raise ValueError(f"{where}: expected shape {spec.shape}, got {arr.shape}")
        if not arr.flags.c_contiguous:
            raise ValueError(f"{where}: array must be C-contiguous (use np.ascontiguousarray)")
        if not spec.read_only and not arr.flags.writeable:
            raise ValueError(f"{where}: the function writes this array but it is read-only")

    def _arena(self, arena: np.ndarray | None) -> np.ndarray:
        """The caller's arena after checks, else one owned by this wrapper (reused)."""
        assert self.arena_bytes is not None
        if arena is None:
            if self._owned_arena is None:
                self._owned_arena = aligned_arena(self.arena_bytes)
            return self._owned_arena
        if not isinstance(arena, np.ndarray) or arena.dtype not in (np.uint8, np.int8):
            raise ValueError(f"{self.name}: the arena must be a uint8 numpy array")
        if arena.ndim != 1 or not arena.flags.c_contiguous or not arena.flags.writeable:
            raise ValueError(f"{self.name}: the arena must be 1-D, C-contiguous and writable")
        if arena.nbytes < self.arena_bytes:
            raise ValueError(
                f"{self.name}: the arena needs {self.arena_bytes} bytes, got {arena.nbytes}"
            )
        if arena.ctypes.data % 16:
            raise ValueError(f"{self.name}: the arena must be 16-byte aligned (see aligned_arena)")
        return arena

    def _check_no_overlap(self, buffers: list[np.ndarray]) -> None:
        """Written buffers must not overlap any other argument: the C parameters are restrict."""
        read_only = [spec.read_only for spec in self.args] + [False]  # the arena is written
        spans = sorted((*_span(b), i) for i, b in enumerate(buffers))
        furthest: tuple[int, int] | None = None  # (end, argument) of the span reaching furthest so far
        furthest_written: tuple[int, int] | None = None
        for start, end, i in spans:  # by start: a span overlaps an earlier one iff it starts before its end
            if start == end:
                continue
            for earlier in (furthest if not read_only[i] else None, furthest_written):
                if earlier is not None and start < earlier[0]:
                    written, other = (i, earlier[1]) if not read_only[i] else (earlier[1], i)
                    raise ValueError(f"{self.name}: argument {written} is written and overlaps argument {other}")
            furthest = max(furthest or (end, i), (end, i))
            if not read_only[i]:
                furthest_written = max(furthest_written or (end, i), (end, i))


def compile_module(
    module: ModuleOp, *, flags: tuple[str, ...] = DEFAULT_FLAGS
) -> dict[str, CFunction]:
    """Emit, compile (cached), load, and wrap every function of a loop-level module."""
    library = load_library(compile_c(emit_c(module), flags=flags))
    return {
        op.sym_name.data: CFunction.from_func(library, op)
        for op in module.ops
        if isinstance(op, func.FuncOp)
    }
