"""Shared test support: run mlc programs end to end and PyTorch references in NHWC."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import mlc

TOL = {np.float64: 1e-10, np.float32: 1e-5}
DTYPE_NAME = {np.float64: "f64", np.float32: "f32"}


def run(source: str, **arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Compile `source` (one model, inputs only or with params) and run it on `arrays`."""
    prog = mlc.compile(source)
    params = {k: arrays[k] for k in prog.params}
    inputs = {k: arrays[k] for k in prog.inputs}
    return prog.run(params, inputs)


def compile_error(source: str) -> str:
    """The diagnostic `mlc.compile(source)` raises (it must raise one)."""
    try:
        mlc.compile(source)
    except mlc.CompileError as error:
        return str(error)
    raise AssertionError(f"no CompileError for\n{source}")


def type_of(a: np.ndarray) -> str:
    return f"{DTYPE_NAME[a.dtype.type]}[{', '.join(map(str, a.shape))}]"


def model(body: str, **arrays: np.ndarray) -> str:
    """A model taking every array as an input, with `body` and its `output` line."""
    decls = "\n".join(f"  input {name}: {type_of(a)}" for name, a in arrays.items())
    return f"model t {{\n{decls}\n{body}\n}}\n"


def assert_close(got: np.ndarray, ref: np.ndarray | torch.Tensor) -> None:
    """Relative agreement at the dtype's tolerance, scaled by the reference's magnitude."""
    if isinstance(ref, torch.Tensor):
        ref = ref.detach().numpy()
    assert got.shape == ref.shape, (got.shape, ref.shape)
    tol = TOL[got.dtype.type]
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, 1e-30)
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * scale)


def rand(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float64, lo=-1.0, hi=1.0) -> np.ndarray:
    return rng.uniform(lo, hi, size=shape).astype(dtype)


# -- PyTorch references in mlc's layouts (NHWC activations, HWIO filters) --------------------
def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2)


def nhwc(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1)


def oihw(w: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(w).permute(3, 2, 0, 1)


def tf_same(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow `same` padding, from LANGUAGE.md's formula (independent of mlc's helper)."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv_ref(x: np.ndarray, w: np.ndarray, stride, pads, dilation) -> torch.Tensor:
    """conv2d in NHWC/HWIO with explicit (pt, pb, pl, pr) zero padding."""
    pt, pb, pl, pr = pads
    xt = F.pad(nchw(x), (pl, pr, pt, pb))
    return nhwc(F.conv2d(xt, oihw(w), stride=stride, dilation=dilation))
