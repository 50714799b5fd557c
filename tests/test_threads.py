"""Compiled programs called from several threads give exactly the results of serial calls.

Each function keeps a pool of arenas (one per call in flight), and a trainer has its own arena
and a lock, so 8 threads x 200 calls of one forward, gradient or training program are compared
bitwise with the same calls made one after another.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import mlc

THREADS, CALLS = 8, 200

MODEL = """model net {
  input x: f64[4, 6, 6, 2]
  input y: f64[4, 3]
  param w: f64[3, 3, 2, 4] = glorot
  param b: f64[4]
  param v: f64[36, 3] = glorot
  h = relu(conv2d(x, w, padding=same) + b)
  h = maxpool2d(h, size=2, stride=2)
  logits = dense(flatten(h), v)
  loss = softmax_cross_entropy(logits, y)
  output loss, logits
}
"""


@pytest.fixture(scope="module")
def prog() -> mlc.Program:
    return mlc.compile(MODEL)


def batches(count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    labels = np.eye(3)[rng.integers(0, 3, size=(count, 4))]
    return [{"x": rng.standard_normal((4, 6, 6, 2)), "y": labels[k]} for k in range(count)]


def in_threads(work, count: int = THREADS) -> list:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(work, range(count)))


@pytest.mark.parametrize("kind", ["forward", "gradient"])
def test_threads_match_serial_calls(prog: mlc.Program, kind: str) -> None:
    params = prog.init_params(seed=1)
    data = batches(CALLS)

    def call(k: int) -> dict[str, np.ndarray]:
        if kind == "forward":
            return prog.run(params, data[k])
        outs, grads = prog.grad(params, data[k])
        return {**outs, **{f"grad.{n}": g for n, g in grads.items()}}

    serial = [call(k) for k in range(CALLS)]

    def thread(t: int) -> list[int]:
        order = np.random.default_rng(t).permutation(CALLS)  # each thread its own order
        return [k for k in order if any(not np.array_equal(v, serial[k][n]) for n, v in call(k).items())]

    assert in_threads(thread) == [[]] * THREADS


def test_trainers_in_threads_match_a_serial_trainer(prog: mlc.Program) -> None:
    """One trainer per thread, all of them over one compiled step."""
    data = batches(CALLS, seed=2)

    def train(_: int) -> dict[str, np.ndarray]:
        params = prog.init_params(seed=3)
        trainer = prog.trainer("adam", lr=1e-2)
        for batch in data:
            trainer.step(params, batch)
        return params

    serial = train(0)
    for params in in_threads(train):
        for name, value in params.items():
            np.testing.assert_array_equal(value, serial[name], err_msg=name)


def test_one_trainer_shared_by_threads_runs_one_step_at_a_time(prog: mlc.Program) -> None:
    """Every step on the same batch, so the result does not depend on which thread steps."""
    batch = batches(1, seed=4)[0]
    params, serial_params = prog.init_params(seed=5), prog.init_params(seed=5)
    trainer, serial = prog.trainer("sgd", lr=1e-2, momentum=0.9), prog.trainer("sgd", lr=1e-2, momentum=0.9)
    for _ in range(THREADS * CALLS // 4):
        serial.step(serial_params, batch)

    def thread(_: int) -> None:
        for _ in range(CALLS // 4):
            trainer.step(params, batch)

    in_threads(thread)
    assert trainer.steps == serial.steps
    for name, value in params.items():
        np.testing.assert_array_equal(value, serial_params[name], err_msg=name)


def test_set_num_threads_applies_to_calls_from_other_threads(prog: mlc.Program) -> None:
    """OpenMP keeps its thread count per calling thread; a call from a new thread applies mlc's."""
    from mlc.backends.c import runtime

    gomp = runtime._gomp()
    params, batch = prog.init_params(), batches(1)[0]
    default = gomp.omp_get_max_threads()
    try:
        mlc.set_num_threads(3)

        def seen(_: int) -> int:
            prog.run(params, batch)
            return gomp.omp_get_max_threads()

        assert in_threads(seen, 2) == [3, 3]
    finally:
        mlc.set_num_threads(default)
