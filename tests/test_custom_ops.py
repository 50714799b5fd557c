"""Custom ops in index notation, compiled to C and run, against NumPy loops."""

from __future__ import annotations

import numpy as np
import pytest
from oracle import assert_close, rand, run, type_of

OPS = """
op box3(x: f32[N, H, W, C]) -> f32[N, H - 2, W - 2, C] {
  out[n, i, j, c] = sum(a: 3, b: 3) x[n, i + a, j + b, c] / 9.0
}
op strided_corr(x: f32[N, H], w: f32[K]) -> f32[N, (H - K) / 2 + 1] {
  out[n, i] = sum(k: K) x[n, 2 * i + k] * w[k]
}
op upsample2(x: f32[N, H]) -> f32[N, 2 * H] {
  out[n, i] = x[n, i / 2]
}
op wrap3(x: f32[N, H]) -> f32[N, H] {
  out[n, i] = x[n, i % 3] - x[n, H - 1 - i]
}
op diag(x: f32[N, N]) -> f32[N] {
  out[i] = x[i, i]
}
op shifted(x: f32[H]) -> f32[H] {
  out[i] = x[i - 1] + x[i + 1]
}
op rowmax_scaled(x: f32[N, H]) -> f32[N] {
  out[n] = 2.0 * (max(k: H) x[n, k]) + sum(j: H) relu(x[n, j])
}
op mixed(x: f32[N, H], y: f32[N, H]) -> f32[N, H] {
  out[n, i] = select(x[n, i] > y[n, i], exp(x[n, i]), min(sqrt(abs(y[n, i])), tanh(x[n, i]))) + sigmoid(i * 1.0)
}
"""


def _src(call: str, **arrays: np.ndarray) -> str:
    decls = "\n".join(f"  input {k}: {type_of(v)}" for k, v in arrays.items())
    return OPS + f"model t {{\n{decls}\n  y = {call}\n  output y\n}}\n"


def _box3(x):
    n, h, w, c = x.shape
    return sum(x[:, a : a + h - 2, b : b + w - 2, :] for a in range(3) for b in range(3)) / np.float32(9.0)


def _strided(x, w):
    k, h = len(w), x.shape[1]
    return np.stack([(x[:, 2 * i : 2 * i + k] * w).sum(1) for i in range((h - k) // 2 + 1)], 1)


def _shifted(x):
    p = np.pad(x, 1)
    return p[:-2] + p[2:]


def _mixed(x, y):
    i = np.arange(x.shape[1], dtype=x.dtype)
    return np.where(x > y, np.exp(x), np.minimum(np.sqrt(np.abs(y)), np.tanh(x))) + 1 / (1 + np.exp(-i))


CASES = {
    "box3": ("box3(x)", {"x": (2, 7, 6, 3)}, lambda a: _box3(a["x"])),
    "strided_corr": ("strided_corr(x, w)", {"x": (3, 11), "w": (4,)}, lambda a: _strided(a["x"], a["w"])),
    "upsample": ("upsample2(x)", {"x": (2, 5)}, lambda a: np.repeat(a["x"], 2, axis=1)),
    "wrap_and_flip": ("wrap3(x)", {"x": (2, 7)}, lambda a: a["x"][:, np.arange(7) % 3] - a["x"][:, ::-1]),
    "diagonal": ("diag(x)", {"x": (5, 5)}, lambda a: np.diag(a["x"])),
    "zero_fill": ("shifted(x)", {"x": (9,)}, lambda a: _shifted(a["x"])),
    "nested_reductions": (
        "rowmax_scaled(x)", {"x": (3, 6)}, lambda a: 2 * a["x"].max(1) + np.maximum(a["x"], 0).sum(1)
    ),
    "scalar_functions": ("mixed(x, y)", {"x": (2, 6), "y": (2, 6)}, lambda a: _mixed(a["x"], a["y"])),
}


@pytest.mark.parametrize("name", CASES)
def test_custom_op(name):
    call, shapes, ref = CASES[name]
    rng = np.random.default_rng(31)
    arrays = {k: rand(rng, s, np.float32) for k, s in shapes.items()}
    out = run(_src(call, **arrays), **arrays)["y"]
    assert_close(out, ref(arrays).astype(np.float32))
