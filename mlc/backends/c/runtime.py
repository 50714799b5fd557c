"""Compile emitted C into a cached shared library, load it, and call it on NumPy arrays.

Arrays are passed as raw pointers (`arr.ctypes.data`), never copied, so the wrapper checks
what the C code silently assumes: dtype, static shape, C-contiguity, and that no buffer the
function writes overlaps another argument (the parameters are `restrict`).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import importlib.metadata
import os
import shlex
import shutil
import subprocess
import threading
import warnings
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

from mlc.backends.cache import CacheWarning, cached_build, content_key, discard, temporary_path
from mlc.backends.c.emitter import emit_c, translation_units
from mlc.backends.c.sanitizers import check_runtime, sanitizer_flags
from mlc.backends.cstyle.analyses import arena_bytes, is_read_only
from mlc.backends.cstyle.names import c_symbol
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
# fabs become instructions (vectorisable; mlc never reads errno). -Wl,-Bsymbolic: the library's
# calls of its own functions bind to them, even where another library loaded in the process
# exports the same name (see `cstyle.names`).
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
    "-Wl,-Bsymbolic",
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


@functools.lru_cache(maxsize=None)
def native_target(command: tuple[str, ...]) -> str:
    """What `-march=native` means on this host, as the compiler resolves it: the CPU and every
    ISA extension it turns on or off (GCC's `-march=znver3 -mavx512f -mno-xop ...`, Clang's
    `-target-cpu` and `-target-feature`), from the compiler's dry run (`-###`).

    Part of the cache key, so that a cache directory shared between machines (a network home,
    a CI cache) never gives one CPU the code built for another. Memoised per process.
    """
    proc = subprocess.run([*command, "-###", "-march=native", "-x", "c", "-c", os.devnull, "-o", os.devnull],
                          capture_output=True, text=True)
    tokens = [t.strip('"') for line in proc.stderr.splitlines() for t in line.split()]
    wanted = [t for k, t in enumerate(tokens)
              if t.startswith("-m") or t in ("--param", "-target-cpu", "-target-feature")
              or (k > 0 and tokens[k - 1] in ("--param", "-target-cpu", "-target-feature"))]
    return " ".join(wanted) if wanted else proc.stderr


@functools.lru_cache(maxsize=None)
def mlc_version() -> str:
    try:
        return importlib.metadata.version("mlc")
    except importlib.metadata.PackageNotFoundError:  # a checkout that is not installed
        return "unknown"


def build_flags() -> tuple[str, ...]:
    """`DEFAULT_FLAGS`, plus those of the sanitizers `$MLC_SANITIZE` asks for (`sanitizers`)."""
    return DEFAULT_FLAGS + sanitizer_flags()


def build_identity(flags: tuple[str, ...] | None = None) -> str:
    """Everything a compiled library depends on besides its C source: the compiler (path,
    version, and `$CC`'s arguments), the flags (`build_flags()` by default), what
    `-march=native` resolves to here, the vector width and core count the schedules were
    chosen for, and mlc's version."""
    from mlc.loops.target import host

    flags = build_flags() if flags is None else flags
    command = compiler_command()
    target = host()
    return "\0".join((*command, compiler_identity(command), *flags, native_target(command),
                      f"vector_bytes={target.vector_bytes} cores={target.cores}", mlc_version()))


def probe_compiler_in_background() -> None:
    """Start the compiler probes of `build_identity` (`--version`, what `-march=native` means:
    0.1 s) in a daemon thread, so that a first compile that comes later does not wait for them."""
    def probe() -> None:
        try:
            build_identity()
        except Exception:  # no compiler: the compile that needs it says so
            pass

    threading.Thread(target=probe, name="mlc-compiler-probe", daemon=True).start()


def unit_count(functions: int = 1) -> int:
    """Translation units to spread a large function's C over (`emit_c(units=)`) when `functions`
    compile at once: the cores shared among them, at most 4 each (each unit is a compiler
    process of its own, which parses the prologue again)."""
    from mlc.loops.target import host

    return max(1, min(host().cores // functions, 4))


def compile_c(source: str, *, flags: tuple[str, ...] | None = None) -> Path:
    """Path of a shared library built from `source`, compiled only on a cache miss.

    A compiler failure is an internal error of mlc (the emitter produced bad C) and raises
    `RuntimeError` with the compiler's stderr; a full disk raises `OSError(ENOSPC)`, which
    moves the build to a temporary cache directory.
    """
    command = compiler_command()
    flags = build_flags() if flags is None else flags
    key = library_key(source, flags)

    def build(library: Path) -> None:
        units = translation_units(source)
        c_files = [temporary_path(library.parent, f"{key}.{k}", ".c") for k in range(len(units))]
        objects = [c_file.with_suffix(".o") for c_file in c_files] if len(units) > 1 else []
        try:
            for c_file, unit in zip(c_files, units):
                c_file.write_text(unit)
            if objects:  # the units in parallel compiler processes, then one link
                _run_compilers([[*command, *flags, "-c", "-o", str(o), str(c)] for c, o in zip(c_files, objects)])
            _run_compilers([[*command, *flags, "-o", str(library), *map(str, objects or c_files), "-lm"]])
            (library.parent / f"{key}.c").write_text(source)  # kept beside the .so for debugging
        finally:
            for path in (*c_files, *objects):
                path.unlink(missing_ok=True)

    return cached_build(key, ".so", build)


def library_key(source: str, flags: tuple[str, ...]) -> str:
    """The cache key of the library `compile_c` builds from `source` with `flags`."""
    return content_key("c", source, build_identity(flags))


def _run_compilers(commands: list[list[str]]) -> None:
    """Run compiler commands at once; the first failure raises (`compile_c`)."""
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv in commands]
    errors = [proc.communicate()[1] for proc in procs]  # wait for all before raising
    for argv, proc, stderr in zip(commands, procs, errors):
        if proc.returncode != 0:
            if "No space left on device" in stderr:
                raise OSError(errno.ENOSPC, "No space left on device", argv[argv.index("-o") + 1])
            raise RuntimeError(f"C compiler failed (exit {proc.returncode}): {shlex.join(argv)}\n{stderr}")


def load_compiled(source: str, *, flags: tuple[str, ...] | None = None) -> tuple[Path, ctypes.CDLL]:
    """`compile_c` and `load_library`; a cached library that fails to load anyway is rebuilt
    once, with a warning."""
    path = compile_c(source, flags=flags)
    try:
        return path, load_library(path)
    except OSError as error:
        warnings.warn(f"mlc: the cached library {path} does not load ({error}); rebuilding it", CacheWarning,
                      stacklevel=2)
        discard(path)
        path = compile_c(source, flags=flags)
        return path, load_library(path)


@functools.lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    return ctypes.CDLL(path)


def load_library(path: str | os.PathLike[str]) -> ctypes.CDLL:
    """The loaded library, memoised per path within the process. Under `$MLC_SANITIZE`, first
    checks that the sanitizers' runtime is there (`SanitizerError` if not)."""
    check_runtime(sanitizer_flags())
    return _load(os.fspath(path))


_threads: list[int] = []
"""The count `set_num_threads` asked for, if it was called."""
_thread_state = threading.local()


def set_num_threads(count: int) -> None:
    """Threads for the parallel loops of every mlc library in this process (OpenMP's
    `omp_set_num_threads`; by default OpenMP uses one per core, or `OMP_NUM_THREADS`).

    OpenMP keeps the count per calling thread, so a call made from another Python thread
    applies it to that thread first (`_apply_num_threads`).
    """
    if count < 1:
        raise ValueError(f"the thread count must be at least 1, got {count}")
    _threads[:] = [count]
    _apply_num_threads()


def _apply_num_threads() -> None:
    """Make the calling thread's OpenMP thread count the one `set_num_threads` asked for."""
    if _threads and getattr(_thread_state, "threads", None) != _threads[0]:
        _gomp().omp_set_num_threads(_threads[0])
        _thread_state.threads = _threads[0]


@functools.lru_cache(maxsize=None)
def _gomp() -> ctypes.CDLL:
    return ctypes.CDLL("libgomp.so.1")


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


def buffer_address(array: np.ndarray) -> int:
    """Where `array`'s data starts: through the buffer protocol, in a third of `array.ctypes.data`'s
    time (which builds a ctypes view), or that where the protocol refuses (a read-only or empty array)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    except (TypeError, ValueError):
        return array.ctypes.data


def aligned_arena(nbytes: int, alignment: int = ARENA_ALIGNMENT) -> np.ndarray:
    """A uint8 buffer whose start is `alignment`-aligned (typed views are cast from it)."""
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + nbytes]


class CFunction:
    """A compiled entry point `void name(T* ..., uint8_t* arena)` called on NumPy arrays.

    Safe to call from several threads at once. Without an explicit `arena=`, a call takes an
    arena (with its own argument array) from the wrapper's pool and puts it back when it
    returns; the pool grows to the number of calls ever in flight at once, so a single-threaded
    caller keeps reusing one arena. Taking and returning one is a `list.pop` and a
    `list.append`, atomic under the GIL, so there is no lock (`benchmarks/threads.py` measures
    it against a lock). ctypes releases the GIL during the C call, so calls of one function, or
    of different functions, run in parallel.
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
        self._pool: list[tuple[np.ndarray | None, ctypes.Array[ctypes.c_void_p]]] = []
        """Free (arena, argument array) pairs: the arena is None when the function takes none."""
        self.retarget(library)

    def retarget(self, library: ctypes.CDLL) -> None:
        """Call this function in `library`: another build of the same C (the optimised one of
        a quick build). A call already running finishes in the library it started in."""
        fn = getattr(library, c_symbol(self.name))
        fn.argtypes = [ctypes.c_void_p] * (len(self.args) + (self.arena_bytes is not None))
        fn.restype = None
        packed = getattr(library, f"{c_symbol(self.name)}_packed")
        packed.argtypes = [ctypes.c_void_p]
        packed.restype = None
        self._fn, self._packed = fn, packed

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

    def __call__(self, *arrays: np.ndarray, arena: np.ndarray | None = None, checked: bool = False) -> None:
        """Call on `arrays` (every argument, then the outputs, in order). `checked`: the caller has
        checked each array against its spec and writes no argument but fresh outputs, so the
        checks and the overlap test (which then cannot fail) are not repeated."""
        if len(arrays) != len(self.args):
            raise ValueError(f"{self.name}: expected {len(self.args)} arrays, got {len(arrays)}")
        if not checked:
            for i, (arr, spec) in enumerate(zip(arrays, self.args)):
                self._check(i, arr, spec)
        if self.arena_bytes is None and arena is not None:
            raise ValueError(f"{self.name}: this function takes no arena")
        if arena is not None:
            arena = self._checked_arena(arena)
        try:
            pooled = self._pool.pop()
        except IndexError:  # every pooled arena is in use (or none made yet)
            pooled = self._new_call()
        try:
            own_arena, slots = pooled
            buffers = list(arrays) if self.arena_bytes is None else [*arrays, own_arena if arena is None else arena]
            addresses = [buffer_address(b) for b in buffers]
            if not checked:
                self._check_no_overlap([(a, a + b.nbytes) for a, b in zip(addresses, buffers)])
            for k, address in enumerate(addresses):
                slots[k] = address
            _apply_num_threads()
            self._packed(slots)
        finally:
            self._pool.append(pooled)

    def _new_call(self) -> tuple[np.ndarray | None, ctypes.Array[ctypes.c_void_p]]:
        """An arena of its own and an argument array, for one call at a time."""
        arena = None if self.arena_bytes is None else aligned_arena(self.arena_bytes)
        return arena, (ctypes.c_void_p * (len(self.args) + 1))()

    def slots(self, arena: np.ndarray | None) -> ctypes.Array[ctypes.c_void_p]:
        """An argument array for `call_slots`, its arena slot filled in with `arena` (checked;
        the caller keeps it alive, and None only for a function that takes no arena)."""
        slots = (ctypes.c_void_p * (len(self.args) + 1))()
        if (arena is None) != (self.arena_bytes is None):
            raise ValueError(f"{self.name}: " + ("this function takes no arena" if arena is not None else "an arena is needed"))
        if arena is not None:
            slots[len(self.args)] = self._checked_arena(arena).ctypes.data
        return slots

    def call_slots(self, slots: ctypes.Array[ctypes.c_void_p]) -> None:
        """Call with the buffers' addresses in argument order. Nothing is checked: for callers
        that own and have checked every buffer, and call with one argument array at a time
        (Trainer)."""
        _apply_num_threads()
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

    def _checked_arena(self, arena: np.ndarray) -> np.ndarray:
        """A caller's arena, after the checks of what the C code assumes of it."""
        assert self.arena_bytes is not None
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

    def _check_no_overlap(self, extents: list[tuple[int, int]]) -> None:
        """Written buffers must not overlap any other argument: the C parameters are restrict.
        `extents`: each buffer's (first byte, end) in argument order."""
        read_only = [spec.read_only for spec in self.args] + [False]  # the arena is written
        spans = sorted((start, end, i) for i, (start, end) in enumerate(extents))
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
    module: ModuleOp, *, flags: tuple[str, ...] | None = None
) -> dict[str, CFunction]:
    """Emit, compile (cached), load, and wrap every function of a loop-level module."""
    _, library = load_compiled(emit_c(module), flags=flags)
    return {
        op.sym_name.data: CFunction.from_func(library, op)
        for op in module.ops
        if isinstance(op, func.FuncOp)
    }
