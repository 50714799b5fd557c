"""Robustness: mutated programs fed to `mlc-opt -t c` never crash it.

Each of the >= 500 programs, derived from valid models by seeded random token mutations (delete,
duplicate, swap, replace numbers, names and keywords, insert stray characters, truncate), must end
in exactly one of two ways: exit 0 with C that the C compiler accepts, or exit 1 with one located
diagnostic (`FILE:LINE:COL: error: ...`, the source line, a caret). A Python traceback or a C
compiler error fails the test. The driver runs in-process (`mlc.cli.main`) to keep this fast.
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import subprocess
from pathlib import Path

import pytest

from mlc.cli import main

SEEDS = [
    """model m {
  input x: f32[2, 7, 7, 3]
  param w: f32[3, 3, 3, 4] = glorot
  param b: f32[4]
  h = relu(conv2d(x, w, stride=2, padding=same) + b)
  h = maxpool2d(h, size=2, stride=1, padding=valid)
  y = sum(h * 0.5, axis=(1, 2))
  output y
}
""",
    """model m {
  input x: f64[4, 6]
  input t: f64[4, 3]
  param w: f64[6, 3] = normal(0.1)
  param b: f64[3] = uniform(-0.1, 0.1)
  logits = dense(x, w, b)
  loss = softmax_cross_entropy(logits, t) + mse(softmax(logits), t)
  output loss, logits
}
""",
    """op box3(x: f32[N, H, W, C]) -> f32[N, H - 2, W - 2, C] {
  out[n, i, j, c] = sum(a: 3, b: 3) x[n, i + a, j + b, c] / 9.0
}
op strided_corr(x: f32[N, H], w: f32[K]) -> f32[N, (H - K) / 2 + 1] {
  out[n, i] = sum(k: K) x[n, 2 * i + k] * w[k]
}
model m {
  input x: f32[1, 6, 6, 2]
  input s: f32[3, 11]
  input k: f32[3]
  y = box3(x)
  z = strided_corr(s, k)
  output y, z
}
""",
    """model m {
  input x: f32[2, 8, 8, 2]
  param g: f32[2] = ones
  param b: f32[2] = zeros
  param w: f32[3, 3, 2, 4]
  param v: f32[16, 1]
  h = batchnorm(x, g, b, eps=0.001)
  h = binconv2d(h, w, stride=1, padding=same, mode=xnor, pad_value=-1)
  h = avgpool2d(h, size=(2, 2), stride=(2, 2), padding=(0, 1, 0, 1))
  f = flatten(h)
  l = reshape(f, (-1, 2))
  c = concat(f, f, axis=-1)
  loss = mean(sigmoid(dense(concat(f, f, axis=1), reshape(concat(v, v, axis=0), (32, 1)))))
  output loss, l, c
}
""",
    """model m {
  input mu: f32[4, 3]
  input logvar: f32[4, 3]
  input eps: f32[4, 3]
  z = mu + exp(0.5 * logvar) * eps
  p = sigmoid(tanh(z) - abs(sign(z)) / 2)
  loss = bce(p, sqrt(abs(eps)) / 4) + kl_normal(mu, logvar) - log(sum(exp(neg(z))))
  output loss
}
""",
]

TOKEN = re.compile(r"\s+|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:e-?\d+)?|->|<=|>=|==|!=|.", re.S)
NUMBERS = ["0", "1", "-1", "2", "7", "100", "2.5", "1e-3", "99999999999999999999", "-0"]
WORDS = ["same", "valid", "xnor", "bwn", "x", "w", "h", "out", "sum", "max", "conv2d", "relu", "f32", "f64",
         "input", "param", "output", "model", "op", "None", "glorot", "stride", "axis", "select", "zz"]
CHARS = list("(){}[],:=+-*/%<>#$@.0123456789ab \n\"'")


def mutate(text: str, rng: random.Random) -> str:
    tokens = [t for t in TOKEN.findall(text)]
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(tokens))
        kind = rng.randrange(7)
        if kind == 0:
            del tokens[k]
        elif kind == 1:
            tokens.insert(k, tokens[k])
        elif kind == 2 and k + 1 < len(tokens):
            tokens[k], tokens[k + 1] = tokens[k + 1], tokens[k]
        elif kind == 3:
            nums = [i for i, t in enumerate(tokens) if t[0].isdigit()]
            tokens[rng.choice(nums) if nums else k] = rng.choice(NUMBERS)
        elif kind == 4:
            names = [i for i, t in enumerate(tokens) if t[0].isalpha()]
            tokens[rng.choice(names) if names else k] = rng.choice(WORDS)
        elif kind == 5:
            tokens.insert(k, rng.choice(CHARS))
        else:
            tokens = tokens[: max(k, 1)]
            break
    return "".join(tokens)


def programs(count: int) -> list[str]:
    rng = random.Random(2026)
    examples = [p.read_text() for p in sorted((Path(__file__).parent.parent / "examples").glob("*.mlc"))]
    seeds = SEEDS + examples
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
