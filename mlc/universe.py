"""Registration of mlc's dialects, passes and targets with xDSL.

`MLC_UNIVERSE` is exported through the `xdsl.universe` entry point (see `pyproject.toml`), so any
xDSL tool in the environment (`xdsl-opt`, `mlc-opt`, a third party's `foo-opt`) sees mlc's names.

xDSL loads every `xdsl.universe` plugin eagerly when a tool starts, so this module must stay light:
it imports nothing from mlc. Each entry below is a `"module:attribute"` reference that is imported
only when the dialect, pass or target is first asked for (the same laziness as xDSL's own
`xdsl.transforms.get_all_passes`).

Adding a pass is one line in `PASSES`. Every exported name is prefixed (`mlc-` for passes) because
names clash across all plugins in an environment.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from xdsl.universe import Universe

DIALECTS: dict[str, str] = {
    "nn": "mlc.dialects.nn:NN",
    "ix": "mlc.dialects.ix:IX",
    "vx": "mlc.dialects.vx:VX",
}
"""Dialect name -> `module:Dialect object`."""

PASSES: dict[str, str] = {
    "mlc-lower-graph": "mlc.passes.lower_graph:LowerGraphPass",
    "mlc-autodiff": "mlc.passes.autodiff:AutodiffPass",
    "mlc-scatter-to-gather": "mlc.passes.scatter_to_gather:ScatterToGatherPass",
    "mlc-split-vjp": "mlc.passes.split_vjp:SplitVjpPass",
    "mlc-split-params": "mlc.passes.split_params:SplitParamsPass",
    "mlc-bitpack": "mlc.passes.bitpack:BitpackPass",
    "mlc-optimizer": "mlc.passes.optimizer:OptimizerPass",
    "mlc-checkpoint": "mlc.passes.checkpoint:CheckpointPass",
    "mlc-tile": "mlc.passes.tile:TilePass",
    "mlc-fuse": "mlc.passes.fuse:FusePass",
    "mlc-auto-schedule": "mlc.passes.auto_schedule:AutoSchedulePass",
    "mlc-lower-loops": "mlc.passes.lower_loops:LowerLoopsPass",
    "mlc-plan-memory": "mlc.passes.plan_memory:PlanMemoryPass",
}
"""Pass name -> `module:ModulePass subclass`."""

TARGETS: dict[str, str] = {
    "c": "mlc.backends.c.emitter:CTarget",
}
"""Target name (`-t NAME`) -> `module:Target subclass`."""


def lazy(reference: str) -> Callable[[], Any]:
    """Return a factory that imports `module:attribute` when called (and not before)."""
    module_name, _, attribute = reference.partition(":")

    def factory() -> Any:
        return getattr(import_module(module_name), attribute)

    factory.__name__ = factory.__qualname__ = f"get_{attribute}"
    factory.__doc__ = f"Import and return `{reference}`."
    return factory


MLC_UNIVERSE = Universe(
    all_dialects={name: lazy(ref) for name, ref in DIALECTS.items()},
    all_passes={name: lazy(ref) for name, ref in PASSES.items()},
    all_targets={name: lazy(ref) for name, ref in TARGETS.items()},
)
