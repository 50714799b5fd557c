"""Mutators of valid mlc programs, for the robustness and fuzz tests.

`mutate` is the original token mutator of `test_robustness.py` (delete, duplicate, swap, replace
numbers, names and keywords, insert stray characters, truncate; its output for a seed is kept
stable so that test's sample does not change). `mutate_bytes` adds the mutations aimed at the
checks a compiler most easily gets wrong: a wrong dimension in a declared type, a use renamed to
an unknown name, zero, negative and huge dimensions (one or every occurrence of a size, so some
huge programs stay consistent and get past the shape checks), flipped bytes (control characters,
non-ASCII text and invalid UTF-8) and whole lines deleted or duplicated. `fuzz_case` picks the
program to mutate (a `random_programs.generate` model, a fixed seed or an example) and the
mutations, from a seed and an index alone, so any case can be rebuilt from its name.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from random_programs import generate

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

EXAMPLES = [p.read_text() for p in sorted((Path(__file__).parent.parent / "examples").glob("*.mlc"))]

TOKEN = re.compile(r"\s+|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:e-?\d+)?|->|<=|>=|==|!=|.", re.S)
NUMBERS = ["0", "1", "-1", "2", "7", "100", "2.5", "1e-3", "99999999999999999999", "-0"]
WORDS = ["same", "valid", "xnor", "bwn", "x", "w", "h", "out", "sum", "max", "conv2d", "relu", "f32", "f64",
         "input", "param", "output", "model", "op", "None", "glorot", "stride", "axis", "select", "zz"]
CHARS = list("(){}[],:=+-*/%<>#$@.0123456789ab \n\"'")


def mutate(text: str, rng: random.Random) -> str:
    """1 to 3 random token edits (the original robustness mutator)."""
    tokens = TOKEN.findall(text)
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


# -- the targeted mutations --------------------------------------------------------------------
TYPE = re.compile(r"\bf(?:32|64)\[([^\]\n]*)\]")
HUGE = [10**9, 2**31 - 1, 2**31, 2**40, 2**62, 2**63, 10**30, 10**400]
SMALL = [0, -1, -0, 1]
NON_ASCII = ["é", "∑", "\u00a0", "\ufeff", "\u2028", "\u200b", "𝑥", "\t", "\r", "\x00", "\x0c"]
DECLARED = re.compile(r"\b(?:input|param|state)\s+([A-Za-z_]\w*)|^\s*([A-Za-z_]\w*)\s*=(?!=)", re.M)


def _replace_dim(text: str, rng: random.Random, value: int | None = None, everywhere: bool = False) -> str:
    """One dimension of a declared type changed (by one, doubled, to 1, or to `value`); with
    `everywhere`, every integer token equal to it is changed too (sizes stay consistent)."""
    spans = [(t.start() + d.start(), t.start() + d.end()) for t in TYPE.finditer(text)
             for d in re.finditer(r"\d+", t.group(0))]
    if not spans:
        return text
    start, end = rng.choice(spans)
    old = int(text[start:end])
    new = value if value is not None else rng.choice([old + 1, max(old - 1, 1), old * 2, 1, 3])
    if everywhere:
        return re.sub(rf"(?<![\w.]){old}(?![\w.])", str(new), text)
    return text[:start] + str(new) + text[end:]


def _rename_use(text: str, rng: random.Random) -> str:
    """One use (not the declaration) of a declared name becomes an unknown name or a typo."""
    names = {m.group(1) or m.group(2) for m in DECLARED.finditer(text)}
    uses = [m for m in re.finditer(r"[A-Za-z_]\w*", text) if m.group(0) in names]
    if len(uses) < 2:
        return text
    use = rng.choice(uses[1:])
    new = rng.choice([use.group(0) + "_", use.group(0)[:-1] or "q", "undefined_name", use.group(0).upper()])
    return text[: use.start()] + new + text[use.end():]


def _edit_line(text: str, rng: random.Random) -> str:
    """A whole line deleted, duplicated, or moved to another place."""
    lines = text.split("\n")
    k = rng.randrange(len(lines))
    kind = rng.randrange(3)
    if kind == 0:
        del lines[k]
    elif kind == 1:
        lines.insert(k, lines[k])
    else:
        lines.insert(rng.randrange(len(lines)), lines.pop(k))
    return "\n".join(lines)


def _flip_bytes(data: bytes, rng: random.Random) -> bytes:
    """1 to 3 bytes replaced by random ones, or inserted (any value: NUL, controls, invalid UTF-8),
    or a non-ASCII / control character inserted as valid UTF-8."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        k = rng.randrange(len(buf) + 1)
        kind = rng.randrange(3)
        if kind == 0 and k < len(buf):
            buf[k] = rng.randrange(256)
        elif kind == 1:
            buf[k:k] = bytes([rng.randrange(128, 256)])
        else:
            buf[k:k] = rng.choice(NON_ASCII).encode()
    return bytes(buf)


def mutate_bytes(text: str, rng: random.Random) -> bytes:
    """1 to 3 mutations of any kind (token edits, targeted ones, byte flips), as file bytes."""
    data: bytes | None = None
    for _ in range(rng.choice((1, 1, 1, 2, 3))):  # mostly one: more mutants get past the checks
        if data is not None:  # a byte flip happened: keep editing the bytes
            data = _flip_bytes(data, rng)
            continue
        if not text:  # everything was deleted: nothing left to edit
            break
        kind = rng.choice(["token", "token", "shape", "shape", "name", "huge", "huge-all", "zero", "line", "bytes"])
        if kind == "token":
            text = mutate(text, rng)
        elif kind == "shape":
            text = _replace_dim(text, rng)
        elif kind == "name":
            text = _rename_use(text, rng)
        elif kind in ("huge", "huge-all"):
            text = _replace_dim(text, rng, rng.choice(HUGE), everywhere=kind == "huge-all")
        elif kind == "zero":
            text = _replace_dim(text, rng, rng.choice(SMALL), everywhere=rng.random() < 0.3)
        elif kind == "line":
            text = _edit_line(text, rng)
        else:
            data = _flip_bytes(text.encode(), rng)
    return data if data is not None else text.encode()


@dataclass(frozen=True)
class FuzzCase:
    """One program of a fuzz run: `name` identifies it (`<seed>-<index>`), `data` is the file."""

    seed: int
    index: int
    origin: str
    data: bytes

    @property
    def name(self) -> str:
        return f"{self.seed}-{self.index}"


def fuzz_case(seed: int, index: int) -> FuzzCase:
    """Case `index` of the run `seed`: a base program (a generated model 3 times in 4, else a fixed
    seed or an example), left as it is 1 time in 10, else mutated by `mutate_bytes`."""
    rng = random.Random(f"fuzz:{seed}:{index}")
    if rng.random() < 0.75:
        gen_seed = rng.randrange(10**6)
        dtype = "f32" if rng.random() < 0.2 else "f64"
        base, origin = generate(gen_seed, dtype).text, f"generate({gen_seed}, {dtype!r})"
    else:
        k = rng.randrange(len(SEEDS) + len(EXAMPLES))
        base, origin = (SEEDS + EXAMPLES)[k], f"seed program {k}"
    if rng.random() < 0.1:
        return FuzzCase(seed, index, origin, base.encode())
    return FuzzCase(seed, index, origin + ", mutated", mutate_bytes(base, rng))
