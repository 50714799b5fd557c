"""Any identifier the language accepts compiles, as any kind of name (`mlc.backends.cstyle.names`).

C keywords and the names of the C library (`int`, `restrict`, `exp`, `memcpy`, `NULL`, `main`)
are used as model, param, state, input, output, custom-op and local names; the programs are
compiled by the system C compiler, run, and compared with NumPy.
"""

from __future__ import annotations

import random
import re
import subprocess

import numpy as np
import pytest

import mlc
from mlc.backends.c.emitter import INCLUDES
from mlc.backends.c.runtime import compile_module, compiler_command
from mlc.backends.cstyle.names import C_KEYWORDS, C_LIBRARY, c_symbol, is_reserved
from mlc.frontend import parse_mlc
from mlc.passes.pipelines import DEFAULT_PIPELINE
from mlc.runtime.program import make_context, run_pipeline

LANGUAGE_KEYWORDS = {"model", "op", "input", "param", "state", "output"}
NAMES = sorted((C_KEYWORDS | C_LIBRARY) - LANGUAGE_KEYWORDS)


def _header_identifiers(flag: str) -> set[str]:
    """The file-scope identifiers the headers mlc includes declare (`-P`: functions, types,
    enum constants, variables; not the parameter names of prototypes or the insides of inline
    functions' bodies) or define as macros (`-dM`)."""
    text = "".join(f"#include <{h}>\n" for h in INCLUDES)
    proc = subprocess.run([*compiler_command(), "-std=c99", "-march=native", "-E", flag, "-x", "c", "-"],
                          input=text, capture_output=True, text=True, check=True)
    if flag == "-dM":
        return {line.split()[1].split("(")[0] for line in proc.stdout.splitlines() if line.startswith("#define")}
    code = "\n".join(line for line in proc.stdout.splitlines() if not line.lstrip().startswith("#"))
    code = re.sub(r'"(\\.|[^"\\])*"' "|" r"'(\\.|[^'\\])*'", "", code)  # string and character literals
    names: set[str] = set()
    parens, skipped, opened, recent = 0, 0, [], ["", ""]  # skipped: open braces of bodies and members
    for token in re.findall(r"[A-Za-z_]\w*|\d\w*|\S", code):
        if token == "(":
            parens += 1
        elif token == ")":
            parens -= 1
        elif token == "{":
            skip = skipped > 0 or recent[-1] == ")" or "struct" in recent or "union" in recent
            opened.append(skip)
            skipped += skip
        elif token == "}":
            skipped -= opened.pop()
        elif parens == 0 and not skipped and (token[0].isalpha() or token[0] == "_"):
            names.add(token)
        recent = [recent[-1], token]
    return names


@pytest.mark.parametrize("flag", ["-P", "-dM"])
def test_every_name_the_headers_declare_is_reserved(flag: str) -> None:
    unreserved = sorted(n for n in _header_identifiers(flag) if not is_reserved(n))
    assert unreserved == []


def test_c_symbol_is_one_to_one() -> None:
    rng = random.Random(0)
    alphabet = "abint_0"
    names = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))) for _ in range(5000)}
    names = {n for n in names if not n[0].isdigit()} | set(NAMES)
    symbols = {n: c_symbol(n) for n in names}
    assert len(set(symbols.values())) == len(names)
    assert c_symbol("int") == "int_" and c_symbol("int_") == "int__" and c_symbol("conv_net") == "conv_net"
    exported = {s + tail for s in symbols.values() for tail in ("", "_packed", "_arena_bytes")}
    assert len(exported) == 3 * len(names)
    assert not any(s in C_KEYWORDS | C_LIBRARY for s in symbols.values())


def test_every_reserved_name_is_a_model_name() -> None:
    """One module with a model per name, lowered and compiled into one library, each function
    called by its own name."""
    models = "".join(
        f"model {name} {{\n  input x: f64[3]\n  param p: f64[3]\n  y = x * {k}.0 + p\n  output y\n}}\n"
        for k, name in enumerate(NAMES)
    )
    module = parse_mlc(models, "names.mlc")
    run_pipeline(module, DEFAULT_PIPELINE, make_context())
    functions = compile_module(module)
    assert set(functions) == set(NAMES)
    x, p = np.arange(3.0), np.full(3, 0.5)
    for k, name in enumerate(NAMES):
        y = np.empty(3)
        functions[name](x, p, y)
        np.testing.assert_array_equal(y, x * k + p, err_msg=name)


def test_reserved_names_as_every_other_kind_of_name() -> None:
    """Params, a state, inputs, outputs, locals and a custom op named after C and its library."""
    text = """
op memcpy(restrict: f64[N, K], int: f64[K, M]) -> f64[N, M] {
  out[n, m] = sum(k: K) restrict[n, k] * int[k, m]
}
model main {
  input char: f64[2, 3]
  input NULL: f64[2, 4]
  param exp: f64[3, 4] = glorot
  param abs: f64[4] = normal(0.5)
  state errno: f64[4]
  state stderr: f64[4] = ones
  param args: f64[4] = ones
  void = memcpy(char, exp) + abs
  while = batchnorm(void, args, abs, mean=errno, var=stderr, momentum=0.1)
  malloc = tanh(while) * NULL
  static = sum(malloc * malloc)
  output static, malloc, void
}
"""
    prog = mlc.compile(text)
    assert prog.name == "main" and set(prog.params) == {"exp", "abs", "args"} and set(prog.states) == {"errno", "stderr"}
    rng = np.random.default_rng(1)
    params = prog.init_params(seed=3)
    inputs = {"char": rng.standard_normal((2, 3)), "NULL": rng.standard_normal((2, 4))}
    outs = prog.run(params, inputs)
    void = inputs["char"] @ params["exp"] + params["abs"]
    normed = (void - params["errno"]) / np.sqrt(params["stderr"] + 1e-5) * params["args"] + params["abs"]
    malloc = np.tanh(normed) * inputs["NULL"]
    np.testing.assert_allclose(outs["void"], void, rtol=1e-12)
    np.testing.assert_allclose(outs["malloc"], malloc, rtol=1e-12)
    np.testing.assert_allclose(outs["static"], np.sum(malloc * malloc), rtol=1e-12)
    _, grads = prog.grad(params, inputs)
    assert set(grads) == {"exp", "abs", "args"}
    trainer = prog.trainer("sgd", lr=0.1)
    before = params["exp"].copy()
    trainer.step(params, inputs)
    assert not np.array_equal(before, params["exp"])
