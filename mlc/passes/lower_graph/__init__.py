"""`mlc-lower-graph`: every `nn` op becomes one or more `ix.compute` ops (tensors in, tensors out).

Each lowering (one module per kind of op, as in `mlc.dialects.nn`) states what its compute ops compute in index notation, then builds them.
Notation: `y[i]` is the output element at iteration point `i`; `Σ_r` / `max_r` range over the
reduction variables; `x[...]` outside `x` reads 0 unless a fill is given.

The lowerings run inside an `ImplicitBuilder` placed just before the `nn` op, so every op they
create (the compute ops, and inside each body the scalar ops) lands there in program order.
The builders of `mlc.loops.compute_builders` (`compute`, `pointwise`, `reduce`, `window`,
`conv`) carry the boilerplate.
Bodies use only the scalar ops the backends support, through the builders of `mlc.loops.scalars`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.builder import Builder, ImplicitBuilder
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint, Rewriter

from mlc.dialects import nn
from mlc.passes.lower_graph import elementwise, layers, losses, reductions, shape_ops  # noqa: F401 - they register
from mlc.passes.lower_graph.registry import LOWERINGS, lowers

__all__ = ["LOWERINGS", "LowerGraphPass", "lowers"]


@dataclass(frozen=True)
class LowerGraphPass(ModulePass):
    """Replace every `nn` op by the compute ops of its lowering; everything else is left alone."""

    name = "mlc-lower-graph"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for graph_op in [o for o in op.walk() if isinstance(o, nn.GraphOp)]:
            lower = LOWERINGS.get(type(graph_op))
            if lower is None:
                raise NotImplementedError(f"mlc-lower-graph: no lowering for {graph_op.name}")
            with ImplicitBuilder(Builder(InsertPoint.before(graph_op))):
                value = lower(graph_op)
            Rewriter.replace_op(graph_op, [], [value])
