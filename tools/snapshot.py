"""Write everything mlc prints for the examples and the FileCheck tests to a directory.

A refactoring that must not change behaviour is checked by running this before and after it and
comparing the two directories (`diff -r BEFORE AFTER` must print nothing):

    .venv/bin/python tools/snapshot.py /tmp/before
    ... refactor ...
    .venv/bin/python tools/snapshot.py /tmp/after && diff -r /tmp/before /tmp/after

Written: for every example model, the C of its forward, gradient and training-step programs
(SGD and Adam) through the Python API, and `mlc-opt`'s IR and C; for every RUN line of every
FileCheck test, the command's stdout, stderr and exit status (the line up to its `filecheck`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILECHECK = ROOT / "tests" / "filecheck"


def snapshot_examples(out: Path) -> None:
    import mlc

    for path in sorted((ROOT / "examples").glob("*.mlc")):
        program = mlc.compile(path)
        variants = {
            "forward": program,
            "grad": program.grad_program(),
            "step-sgd": program.trainer("sgd", lr=0.1).program,
            "step-adam": program.trainer("adam").program,
        }
        for name, variant in variants.items():
            (out / f"example.{path.stem}.{name}.c").write_text(variant.c_source)
        for flags, name in ((["-p", "mlc-lower-graph"], "graph.mlir"), (["-t", "c"], "cli.c")):
            result = subprocess.run(["mlc-opt", str(path), *flags], capture_output=True, text=True)
            text = f"{result.returncode}\n{result.stdout}{result.stderr}".replace(str(ROOT), "ROOT")
            (out / f"example.{path.stem}.{name}").write_text(text)
        print(f"example {path.stem}", file=sys.stderr)


def run_lines(test: Path) -> list[str]:
    """The test's RUN lines, joined where they end in a backslash."""
    lines, pending = [], ""
    for line in test.read_text().splitlines():
        match = re.search(r"RUN:\s?(.*)$", line)
        if match is None:
            continue
        pending += match.group(1)
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        lines.append(pending.strip())
        pending = ""
    return lines


def without_filecheck(command: str) -> str:
    """The command up to the pipe into `filecheck` (what mlc printed, not whether it matched)."""
    command = command.replace("MLC_ROUNDTRIP", "mlc-opt %s --print-op-generic | mlc-opt | filecheck %s")
    command = re.sub(r"\|\s*filecheck\b.*$", "", command)
    return re.sub(r"^not\s+", "", command.strip())


def snapshot_filecheck(out: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    tests = sorted(p for p in FILECHECK.rglob("*") if p.suffix in (".mlc", ".mlir", ".test") and "Output" not in p.parts)
    with tempfile.TemporaryDirectory() as scratch:
        for test in tests:
            relative = test.relative_to(FILECHECK)
            for index, line in enumerate(run_lines(test)):
                command = (without_filecheck(line).replace("%s", str(test)).replace("%S", str(test.parent))
                           .replace("%t", f"{scratch}/t"))
                result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env, cwd=scratch)
                # The scratch directory and the checkout differ between runs; what mlc prints does not.
                text = f"$ {line}\nexit {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
                text = text.replace(scratch, "TMP").replace(str(ROOT), "ROOT")
                (out / f"filecheck.{str(relative).replace('/', '.')}.{index}.txt").write_text(text)
            print(f"filecheck {relative}", file=sys.stderr)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: snapshot.py OUTPUT_DIRECTORY")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["MLC_CACHE_DIR"] = cache  # compile everything afresh, not from an earlier cache
        snapshot_examples(out)
        snapshot_filecheck(out)


if __name__ == "__main__":
    main()
