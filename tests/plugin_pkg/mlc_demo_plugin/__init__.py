"""An example third-party plugin for mlc-opt / xdsl-opt.

The package exports a `Universe` through the `xdsl.universe` entry point (see `pyproject.toml`).
Every xDSL tool loads all such universes when it starts, so keep this module light and import the
pass lazily. Prefix the names you export: names clash across all plugins in an environment.
"""

from xdsl.universe import Universe


def get_count_ops_pass():
    from mlc_demo_plugin.count_ops import CountOpsPass

    return CountOpsPass


DEMO_UNIVERSE = Universe(all_passes={"demo-count-ops": get_count_ops_pass})
