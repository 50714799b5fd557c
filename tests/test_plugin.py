"""Third-party plugins: a package exporting an `xdsl.universe` entry point adds passes to mlc-opt.

Installing `tests/plugin_pkg` into a throwaway virtualenv would be slow, so the test fakes the
installation: xDSL discovers plugins through `importlib.metadata.entry_points`, which reads
`*.dist-info/entry_points.txt` in every `sys.path` entry. A hand-made dist-info folder in a temp
directory on PYTHONPATH (plus the package's source folder) is therefore an installed plugin.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).parent / "plugin_pkg"

MODULE = """\
func.func @f(%a: i32) -> i32 {
  %c0 = arith.constant 0 : i32
  %r = arith.addi %a, %c0 : i32
  func.return %r : i32
}
"""


def tool(name: str) -> str:
    """The console script `name` of the environment running the tests."""
    beside_python = Path(sys.executable).with_name(name)
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found (is mlc installed in this environment? `make venv`)")
    return found


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which `mlc-demo-plugin` looks installed."""
    project = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())["project"]
    site = tmp_path_factory.mktemp("site")
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines: list[str] = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {ref}" for name, ref in entries.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")

    env = dict(os.environ)
    paths = [str(site), str(PLUGIN_DIR)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


@pytest.fixture
def module_file(tmp_path: Path) -> Path:
    path = tmp_path / "f.mlir"
    path.write_text(MODULE)
    return path


def test_plugin_pass_listed_in_help(plugin_env: dict[str, str]) -> None:
    result = run(tool("mlc-opt"), "--help", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert "demo-count-ops" in result.stdout
    assert "Count the operations nested in the module" in result.stdout  # docstring summary
    assert "mlc-lower-graph" in result.stdout  # mlc's own passes are still there


def test_plugin_pass_runs(plugin_env: dict[str, str], module_file: Path) -> None:
    result = run(tool("mlc-opt"), str(module_file), "-p", "demo-count-ops", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert "demo.op_count = 4 : i64" in result.stdout  # func, constant, addi, return


def test_plugin_pass_with_options_in_a_pipeline(plugin_env: dict[str, str], module_file: Path) -> None:
    result = run(tool("mlc-opt"), str(module_file), "-p", "canonicalize,demo-count-ops{attr=n_ops}", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert "n_ops = 2 : i64" in result.stdout  # canonicalize folded away the constant and the addi


def test_plugin_not_installed_means_unknown_pass(module_file: Path) -> None:
    result = run(tool("mlc-opt"), str(module_file), "-p", "demo-count-ops")
    assert result.returncode == 1
    assert "unknown pass 'demo-count-ops'" in result.stderr
    assert "Traceback" not in result.stderr


def test_plain_xdsl_opt_sees_mlc_passes() -> None:
    """mlc's own `xdsl.universe` entry point (registered by the install) exports its passes."""
    result = run(tool("xdsl-opt"), "--help")
    assert result.returncode == 0, result.stderr
    # xdsl-opt lists passes comma-separated in the `-p` help, which argparse wraps at hyphens.
    listing = set(re.split(r"[,:]", "".join(result.stdout.split())))
    for name in ("mlc-lower-graph", "mlc-lower-loops", "mlc-plan-memory"):
        assert name in listing


def test_plain_xdsl_opt_sees_plugin_pass(plugin_env: dict[str, str], module_file: Path) -> None:
    result = run(tool("xdsl-opt"), str(module_file), "-p", "demo-count-ops", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert "demo.op_count = 4 : i64" in result.stdout
