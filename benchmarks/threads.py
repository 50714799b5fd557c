"""What thread safety costs a compiled forward call: the arena pool mlc uses against a lock.

    python benchmarks/threads.py [--models mlp,digits_cnn] [--threads 1,2,8] [--calls 400] [--repeats 7]
                                 [--omp-threads N]

`CFunction` gives each call in flight its own arena from a pool (a `list.pop` and `append`);
the alternative serialises the calls of one function behind a `threading.Lock` around one
shared arena. Both call the compiled entry point (with the checks `Program.run` makes) on the example's own batch, in one process, and the table
shows the time per call (the median over repeats of the wall time of `--calls` calls shared
out over the threads) and lock/pool (above 1: the pool is faster). One thread measures the
pool's own cost; more threads show what parallel calls gain (ctypes releases the GIL in C; the
C code's own OpenMP loops use every core in both cases, unless `--omp-threads 1`).
"""

from __future__ import annotations

import argparse
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

import mlc
from mlc.backends.c.runtime import aligned_arena
from timing import median_seconds

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def arrays_of(prog: mlc.Program, seed: int) -> list[np.ndarray]:
    """Arguments for one thread's calls of the entry point: the inputs and parameters, random,
    and its own output buffers."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(spec.shape).astype(spec.dtype) for spec in prog.function.args]


def per_call(call, prog: mlc.Program, threads: int, calls: int, repeats: int) -> float:
    per_thread = [arrays_of(prog, t) for t in range(threads)]

    def share(t: int) -> None:
        arrays = per_thread[t]
        for _ in range(calls // threads):
            call(*arrays)

    with ThreadPoolExecutor(threads) as pool:
        return median_seconds(lambda: list(pool.map(share, range(threads))), repeats) / calls


def locked(prog: mlc.Program):
    """The entry point serialised on one lock, every call on one shared arena."""
    fn, lock = prog.function, threading.Lock()
    arena = None if fn.arena_bytes is None else aligned_arena(fn.arena_bytes)

    def call(*arrays: np.ndarray) -> None:
        with lock:
            fn(*arrays, arena=arena)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,digits_cnn")
    parser.add_argument("--threads", default="1,2,8")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--omp-threads", type=int, default=0, help="threads of each call's parallel loops (default: one per core)")
    args = parser.parse_args()
    if args.omp_threads:
        mlc.set_num_threads(args.omp_threads)
    print(f"{'model':<12} {'threads':>7} {'pool us':>9} {'lock us':>9} {'lock/pool':>9}")
    for name in args.models.split(","):
        prog = mlc.compile(EXAMPLES / f"{name}.mlc")
        for threads in map(int, args.threads.split(",")):
            pool_s = per_call(prog.function, prog, threads, args.calls, args.repeats)
            lock_s = per_call(locked(prog), prog, threads, args.calls, args.repeats)
            print(f"{name:<12} {threads:>7} {pool_s * 1e6:>9.1f} {lock_s * 1e6:>9.1f} {lock_s / pool_s:>9.2f}")


if __name__ == "__main__":
    main()
