"""Graph-level mlc IR evaluated eagerly in PyTorch: an independent second implementation.

Why it exists: it shares nothing with mlc's lowering (one PyTorch formula per `nn` op, written
from LANGUAGE.md, and a vectorised gather for `ix.compute`), so it can serve as
  1. the oracle of the random-program tests (forward values),
  2. the PyTorch-eager baseline of training-step timings (it is ordinary autograd-able PyTorch),
  3. the reference of gradient tests (`torch.autograd.grad` through it).

    model = TorchModel.from_source(text)             # or TorchModel(func_op)
    outs = model({"x": x, "w1": w1, ...})            # torch tensors in and out, by name
    outs = model.run(params, inputs)                 # NumPy in and out, like `Program.run`

Gradient conventions (LANGUAGE.md, "Gradients"): `sign` uses the straight-through estimator
`1 if |v| <= 1 else 0`; `relu'(0) = abs'(0) = 0` (PyTorch's own); `sqrt'(0) = inf`; a `max`
reduction and `maxpool2d` route the gradient to the first maximum in row-major order; a scalar
`max(a, b)` / `min(a, b)` in an op body gives a tie to its first operand.

PyTorch is a test/demo dependency only: nothing in the compiler imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from xdsl.dialects import func
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Operation, SSAValue

from mlc.dialects import ix, nn
from mlc.graph.signature import ModelSignature, TensorSpec
from mlc.testing.torch_ix import SCALAR_OPS, compute_kernel
from mlc.testing.torch_nn import (
    NN_KERNELS,
    TRAINING_KERNELS,
    Kernel,
    SteSign,
    Tensor,
    binconv2d_nhwc,
    clamped_log,
    conv2d_nhwc,
    ste_sign,
)


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------
class TorchModel:
    """A graph-level model function (`nn` ops and `ix.compute` ops) as eager PyTorch.

    The function is translated once into a list of kernels over value slots, so a call costs
    only the PyTorch work (no IR walking): fair as an eager baseline.
    """

    def __init__(self, func_op: func.FuncOp, training: bool = False, tie_jitter: float = 0.0) -> None:
        """`training`: PyTorch's `train()` mode (ops with running statistics use the batch's and
        update the state tensors they are given in place); else `eval()`.
        `tie_jitter`: move the operands of every op that selects by comparing them (see
        `SELECTING`) by this much, relative and at random, in the forward pass only, so that
        values tied in exact arithmetic (a max pool over a constant region) are ranked anew
        on each call: what then moves in the result sits at a tie within rounding."""
        self.signature = ModelSignature.of(func_op)
        self._jitter = tie_jitter
        self._generator = torch.Generator().manual_seed(0)
        slots: dict[SSAValue, int] = {arg: k for k, arg in enumerate(func_op.body.block.args)}
        self._steps: list[tuple[Kernel, tuple[int, ...]]] = []
        self._outputs: list[int] = []
        for op in func_op.body.block.ops:
            if isinstance(op, func.ReturnOp):
                self._outputs = [slots[v] for v in op.arguments]
                break
            kernel = kernel_for(op, training)
            if tie_jitter and selects(op):
                kernel = self._jittered(kernel)
            self._steps.append((kernel, tuple(slots[v] for v in op.operands)))
            slots[op.results[0]] = len(slots)

    @staticmethod
    def from_source(source: str | ModuleOp, model: str | None = None, training: bool = False,
                    tie_jitter: float = 0.0) -> TorchModel:
        """Parse mlc text (or take a parsed module) and wrap the model `model` (or the only one)."""
        from mlc.runtime.program import select_model
        from mlc.frontend import parse_mlc

        module = source if isinstance(source, ModuleOp) else parse_mlc(source)
        return TorchModel(select_model(module, model), training, tie_jitter)

    def __call__(self, args: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Evaluate with `args` (every input and parameter, by name); outputs by name."""
        env = [self._argument(spec, args) for spec in self.signature.args]
        for kernel, operands in self._steps:
            env.append(kernel(*(env[k] for k in operands)))
        return {spec.name: env[k] for spec, k in zip(self.signature.outputs, self._outputs, strict=True)}

    def run(self, params: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`Program.run`'s interface: NumPy in, NumPy out, no autograd."""
        with torch.no_grad():
            outs = self({k: torch.from_numpy(np.asarray(v)) for k, v in {**params, **inputs}.items()})
        return {k: np.array(v.numpy()) for k, v in outs.items()}  # fresh arrays, as Program.run

    def _jittered(self, kernel: Kernel) -> Kernel:
        def moved(t: Tensor) -> Tensor:
            if not t.is_floating_point():
                return t
            u = torch.rand(t.shape, generator=self._generator, dtype=t.dtype) * 2 - 1
            return t + (t * self._jitter * u).detach()  # d moved / d t = 1: gradients keep their rule

        return lambda *args: kernel(*(moved(a) for a in args))

    @staticmethod
    def _argument(spec: TensorSpec, args: Mapping[str, Tensor]) -> Tensor:
        if spec.name not in args:
            raise ValueError(f"missing {spec.kind} '{spec.name}'")
        value = args[spec.name]
        if tuple(value.shape) != spec.shape:
            raise ValueError(f"{spec.kind} '{spec.name}' must have shape {list(spec.shape)}, got {list(value.shape)}")
        return value


SELECTING = (nn.MaxPool2DOp, nn.MaxOp, nn.MinOp, nn.MaximumOp, nn.MinimumOp, nn.ClampTensorOp)
"""Graph ops whose result is one of their operands' elements chosen by comparison."""


def selects(op: Operation) -> bool:
    """Does `op` choose among its operands by comparing them (a max or min, a clamp)?"""
    return isinstance(op, SELECTING) or (isinstance(op, ix.ComputeOp) and op.reduction.data == "max")


def kernel_for(op: Operation, training: bool = False) -> Kernel:
    """The kernel of one graph-level op: from the `nn` tables, or a compute op's gather plan."""
    if isinstance(op, ix.ComputeOp):
        return compute_kernel(op)
    builder = (TRAINING_KERNELS.get(type(op)) if training else None) or NN_KERNELS.get(type(op))
    if builder is None:
        raise NotImplementedError(f"torch reference: unsupported op {op.name}")
    return builder(op)


__all__ = [
    "NN_KERNELS", "SCALAR_OPS", "SteSign", "TorchModel", "binconv2d_nhwc", "clamped_log", "compute_kernel",
    "conv2d_nhwc", "kernel_for", "ste_sign",
]  # fmt: skip
