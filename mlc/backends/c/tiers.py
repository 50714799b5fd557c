"""Tiered builds: a large program's first library is a quick build, and the optimised build
replaces it in the background (`Program` retargets its function: `CFunction.retarget`), as a
JIT's tiers do. A first call, which waits for a compile, waits for the quick one only.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from pathlib import Path

from mlc.backends.c.runtime import build_flags, library_key, load_compiled
from mlc.backends.cache import lookup

QUICK_TIER_BYTES = 32 * 1024
"""C text beyond which a tiered load starts with the quick build: GCC takes about a second per
100 KB at -O2 (LeNet-5's backward at batch 8: 150 KB, 1.1 s), a third of that at -Og."""


def quick_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    """`flags` at -Og instead of -O2. Neither level reorders floating-point arithmetic (no
    -ffast-math, no contraction), so the quick library computes the same bits; its code is
    about 1.5x slower (LeNet-5's training step), -O0's 12-30x."""
    return tuple("-Og" if flag == "-O2" else flag for flag in flags)


class OptimisedBuild:
    """The optimised library of C whose quick build is running, compiled in a background thread.
    The thread is not a daemon: a process that ends meanwhile waits for it at exit, so that the
    optimised library reaches the cache and the next process starts on it. `then(callback)`
    runs `callback(self)` once the build has ended (at once, in the caller's thread, if it has);
    `wait()` returns once the build and the callbacks registered before its end have run."""

    def __init__(self, source: str, flags: tuple[str, ...]) -> None:
        self.result: tuple[Path, ctypes.CDLL] | None = None
        self.error: Exception | None = None
        self._callbacks: list[Callable[[OptimisedBuild], None]] | None = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        with _pending_lock:
            _pending.append(self)
        threading.Thread(target=self._run, args=(source, flags), name="mlc-optimised-build").start()

    def _run(self, source: str, flags: tuple[str, ...]) -> None:
        try:
            self.result = load_compiled(source, flags=flags)
        except Exception as error:  # reported by the callbacks: the quick build stays
            self.error = error
        try:
            with self._lock:
                callbacks, self._callbacks = self._callbacks or [], None
            for callback in callbacks:
                callback(self)
        finally:  # a callback that raises (a warning under -W error) must not leave waiters hanging
            self._done.set()
            with _pending_lock:
                _pending.remove(self)

    def then(self, callback: Callable[[OptimisedBuild], None]) -> None:
        with self._lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        callback(self)

    def wait(self) -> None:
        self._done.wait()


_pending: list[OptimisedBuild] = []
"""Optimised builds that have not ended (`wait_for_optimised_builds`)."""
_pending_lock = threading.Lock()


def load_tiered(source: str) -> tuple[Path, ctypes.CDLL, OptimisedBuild | None]:
    """`load_compiled`, unless the optimised library is not cached and `source` is large: then
    the quick build (`quick_flags`, cached too) and the optimised build started beside it.
    A first call then waits for the quick compile only. Flags that do not build at -O2 (a
    sanitized build ends in -O0) have no quicker tier."""
    flags = build_flags()
    levels = [flag for flag in flags if flag.startswith("-O")]
    if len(source) <= QUICK_TIER_BYTES or levels[-1:] != ["-O2"] \
            or lookup(library_key(source, flags) + ".so") is not None:
        return (*load_compiled(source, flags=flags), None)
    path, library = load_compiled(source, flags=quick_flags(flags))
    return path, library, OptimisedBuild(source, flags)


def wait_for_optimised_builds() -> None:
    """Return once every optimised build started so far has ended and replaced its quick build
    (for benchmarks, which time the optimised code, and tests). Safe from any thread."""
    with _pending_lock:
        builds = list(_pending)
    for build in builds:
        build.wait()
