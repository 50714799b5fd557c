"""The `mlc` command: housekeeping beside the compiler driver (`mlc-opt`).

    mlc cache info     where the build cache is, its size, entries and cap
    mlc cache clear    empty it

(`python -m mlc` is the same command.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlc.backends import cache


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def cache_info() -> str:
    directory = cache.cache_dir()
    found = cache.entries(directory)
    total = sum(e.bytes for e in found)
    cap = cache.max_bytes()
    lines = [
        f"directory: {directory}" + ("" if directory == cache.configured_dir() else
                                     f" (instead of {cache.configured_dir()}, which cannot be used)"),
        f"entries:   {len(found)}",
        f"size:      {_size(total)} ({total} bytes)",
        f"cap:       {_size(cap)} (MLC_CACHE_MAX; least recently used entries go beyond it)",
    ]
    return "\n".join(lines)


def cache_clear() -> str:
    count, freed = cache.clear()
    return f"removed {count} entries ({_size(freed)}) from {cache.cache_dir()}"


def import_torch(example: str) -> int:
    """Print the mlc text of the graphs that `FILE.py:FUNCTION`'s model gives Dynamo."""
    import importlib.util

    path, _, name = example.rpartition(":")
    if not path or not name:
        print(f"mlc: error: expected FILE.py:FUNCTION, got '{example}'", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location("mlc_import_torch_example", path)
    if spec is None or spec.loader is None or not Path(path).is_file():
        print(f"mlc: error: cannot read '{path}'", file=sys.stderr)
        return 1
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, name, None)):
        print(f"mlc: error: '{path}' has no function '{name}'", file=sys.stderr)
        return 1
    from mlc.frontend.pytorch.importer import Unsupported, describe, source_line
    from mlc.frontend.pytorch.trace import to_mlc

    model, args = getattr(module, name)()
    try:
        texts = to_mlc(model, *args)
    except Unsupported as problem:
        where = source_line(problem.node)
        print(f"{where + ': ' if where else ''}error: mlc cannot import {describe(problem.node)}: {problem.reason}", file=sys.stderr)
        return 1
    print("\n".join(texts), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlc", description="mlc housekeeping (the compiler is mlc-opt)")
    commands = parser.add_subparsers(dest="command", required=True)
    cache_parser = commands.add_parser("cache", help="the build cache ($MLC_CACHE_DIR, else ~/.cache/mlc)")
    cache_parser.add_argument("action", choices=("info", "clear"))
    torch_parser = commands.add_parser("import-torch", help="print the mlc model of a PyTorch model's graphs")
    torch_parser.add_argument("example", metavar="FILE.py:FUNCTION",
                              help="a function of no arguments returning (model, example_args)")
    args = parser.parse_args(argv)
    if args.command == "import-torch":
        return import_torch(args.example)
    try:
        print(cache_info() if args.action == "info" else cache_clear())
    except ValueError as error:  # a malformed MLC_CACHE_MAX
        print(f"mlc: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
