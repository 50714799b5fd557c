"""Robustness: mutated programs fed to `mlc-opt -t c` never crash it.

Each of the >= 500 programs, derived from valid models by seeded random token mutations (delete,
duplicate, swap, replace numbers, names and keywords, insert stray characters, truncate), must end
in exactly one of two ways: exit 0 with C that the C compiler accepts, or exit 1 with one located
diagnostic (`FILE:LINE:COL: error: ...`, the source line, a caret). A Python traceback or a C
compiler error fails the test. The driver runs in-process (`mlc.cli.main`) to keep this fast.
The mutator and the seed programs are in `mutations.py`; `test_fuzz.py` goes further (more kinds
of mutation, generated models, and mutants that compile are run and compared with PyTorch).
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import subprocess
from pathlib import Path

import pytest
from mutations import EXAMPLES, SEEDS, mutate

from mlc.cli import main


def programs(count: int) -> list[str]:
    rng = random.Random(2026)
    seeds = SEEDS + EXAMPLES
    return [mutate(seeds[i % len(seeds)], rng) for i in range(count)]


DIAGNOSTIC = re.compile(r"^(?P<file>[^\n]+):(?P<line>\d+):(?P<col>\d+): error: [^\n]+\n(?P<src>[^\n]*)\n(?P<caret> *[\t ]*\^~*)\s*$")


def run_mlc_opt(path: Path, out_c: Path) -> tuple[int, str]:
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main([str(path), "-t", "c", "-o", str(out_c)])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, err.getvalue()


@pytest.mark.parametrize("chunk", range(4))
def test_mutated_programs(tmp_path: Path, chunk: int):
    """125 programs per chunk, 500 in all."""
    compiled = 0
    for n, text in enumerate(programs(500)[chunk * 125 : (chunk + 1) * 125]):
        path, out_c = tmp_path / f"p{n}.mlc", tmp_path / f"p{n}.c"
        path.write_text(text)
        code, err = run_mlc_opt(path, out_c)
        assert "Traceback" not in err, f"{text}\n{err}"
        if code == 0:
            cc = subprocess.run(["cc", "-std=c99", "-fopenmp", "-fsyntax-only", "-Wall", "-Werror", "-Wno-unused-variable", str(out_c)],
                                capture_output=True, text=True)
            assert cc.returncode == 0, f"C compiler rejected the output of\n{text}\n{cc.stderr}"
            compiled += 1
            continue
        assert code == 1, f"exit {code}\n{text}\n{err}"
        m = DIAGNOSTIC.match(err)
        assert m is not None, f"not one located diagnostic:\n{err}\nfor\n{text}"
        assert m.group("file") == str(path)
        lines = text.splitlines()
        line = int(m.group("line"))
        assert line <= len(lines) + 1
        assert m.group("src").strip() == (lines[line - 1].strip() if line <= len(lines) else "")
    assert compiled > 0, "no mutant compiled: the mutations are too destructive to test the back end"
