"""Train the example models with mlc on real data (scikit-learn's 8x8 digits), beside PyTorch.

    python examples/demo.py                          # every model (what `make demo` runs)
    python examples/demo.py --quick                  # fewer epochs
    python examples/demo.py --models digits_cnn,vae  # some of them (names of examples/*.mlc)
    python examples/demo.py --cached                 # reuse compiled libraries from earlier runs
    python examples/demo.py --no-torch               # skip the PyTorch baseline

Data: the 1797 digits, pixels scaled to [0, 1], split once into 80% training and 20% held-out
test images (stratified, seed 0). The models have a fixed batch of 32: every epoch draws a fresh
permutation of the training set and wraps the last partial batch around to its start; evaluation
pads the last test batch by repeating its images and ignores the padded rows.

For each model the demo compiles the forward program (`mlc.compile`, used for evaluation) and the
training step (`Program.trainer`: forward, backward and the optimizer update in one C function),
with a cold library cache unless `--cached` is given, and prints both compile times. Every epoch
it then trains
  - mlc: `Trainer.step` on each batch, and
  - PyTorch eager: the same model (`mlc.testing.torch_reference.TorchModel`, an independent
    PyTorch translation of the same graph), from the same initial parameters, on the same
    batches, with `torch.optim.Adam`/`SGD` and the same hyper-parameters,
and prints one line: mlc's mean training loss, the held-out metric computed from the compiled
forward program's own outputs (accuracy of argmax(`logits`) for classifiers, the mean loss for
autoencoders, the ELBO for the VAEs), PyTorch's mean training loss (a cross-check: it tracks
mlc's), and the time per training step of both (the wall time of the epoch's steps over their
number; both in this process, one after the other; PyTorch keeps its default thread count unless
`--torch-threads N`). The learning rate follows a cosine decay per epoch, in both. The baseline
runs in `train()` mode, so its batch norms update their running statistics as mlc's step does.
Models with running statistics (XNOR-Net) are evaluated in inference mode, and after training
are also scored one held-out image at a time by the same model compiled for batch 1: the two
accuracies agree, since no prediction depends on the rest of its batch.
Hyper-parameters and epochs are fixed below; they were chosen on a validation split carved out
of the training images, never on the held-out ones.

Inputs are fed by name: `x` images (NHWC, flattened to [N, 64], or resized bilinearly to the
model's height and width: 28x28 for LeNet-5), `y` one-hot labels, `eps` fresh standard-normal
noise every step (VAE, CVAE), `mask` fresh Bernoulli(0.75) keep-masks every step (denoising AE).
Held-out losses use noise drawn once from a fixed seed, so epochs are comparable. All seeds are
fixed: a run is reproducible (up to the timings).

At the end: `demo_out/reconstructions.png` (held-out digits with their autoencoder and VAE
reconstructions, and digits drawn by the VAE and CVAE decoders from N(0, I)), and a summary
table. The exit status is 1 if a model misses its target (test accuracy >= 97% for the digits
CNN, >= 90% for XNOR-Net, LeNet-5 and the MLP; a held-out loss below the first epoch's for the
autoencoders) or fails to compile or train.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import mlc

if TYPE_CHECKING:
    pass

EXAMPLES = Path(__file__).resolve().parent
OUT_DIR = EXAMPLES.parent / "demo_out"
SEED = 0
BATCH = 32


# ---------------------------------------------------------------------------------------------
# What each model is trained with
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    name: str  # examples/<name>.mlc
    optimizer: str  # "adam" | "sgd"
    hyper: dict[str, float]
    epochs: int
    quick_epochs: int
    target: float | None = None  # minimum test accuracy (classifiers); None: held-out loss must fall
    cosine: bool = True  # learning rate: cosine decay over the epochs (per epoch), else constant

    def lr(self, epoch: int, epochs: int) -> float:
        """The learning rate of epoch `epoch` (1-based) of `epochs`."""
        base = float(self.hyper["lr"])
        return base * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs)) if self.cosine else base


SPECS: dict[str, Spec] = {
    s.name: s
    for s in [
        Spec("digits_cnn", "adam", {"lr": 1e-2}, epochs=15, quick_epochs=3, target=0.97),
        Spec("xnor_net", "adam", {"lr": 5e-3}, epochs=10, quick_epochs=2, target=0.90),
        Spec("resnet", "adam", {"lr": 5e-3}, epochs=10, quick_epochs=2, target=0.97),
        Spec("conv_autoencoder", "adam", {"lr": 5e-3}, epochs=15, quick_epochs=2),
        Spec("vae", "adam", {"lr": 5e-3}, epochs=20, quick_epochs=2),
        Spec("lenet5", "sgd", {"lr": 0.05, "momentum": 0.9}, epochs=6, quick_epochs=2, target=0.90),
        Spec("mlp", "sgd", {"lr": 0.1, "momentum": 0.9}, epochs=15, quick_epochs=4, target=0.90),
        Spec("denoising_autoencoder", "adam", {"lr": 5e-3}, epochs=15, quick_epochs=2),
        Spec("cvae", "adam", {"lr": 5e-3}, epochs=20, quick_epochs=2),
    ]
}


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
@dataclass
class Digits:
    train_x: np.ndarray  # [n, 8, 8, 1] in [0, 1]
    train_y: np.ndarray  # [n] int
    test_x: np.ndarray
    test_y: np.ndarray


def load_digits(test_fraction: float = 0.2) -> Digits:
    """scikit-learn's digits scaled to [0, 1], split once (stratified, seed 0)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int64)
    tr_x, te_x, tr_y, te_y = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=SEED
    )
    return Digits(tr_x, tr_y, te_x, te_y)


def resize_bilinear(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize NHWC images with bilinear interpolation (half-pixel centres, edges clamped).

    Output pixel i samples the input at s = (i + 0.5) * H_in / H_out - 0.5, clamped to
    [0, H_in - 1], and mixes the two neighbours floor(s) and floor(s) + 1 with weights
    1 - (s - floor(s)) and s - floor(s); the same along the width. This is what
    PIL and torch (align_corners=False, no antialiasing) do when enlarging.
    """

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1)
        lo = np.floor(s).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (s - lo).astype(images.dtype)

    r0, r1, rw = axis(height, images.shape[1])
    c0, c1, cw = axis(width, images.shape[2])
    rows = images[:, r0] * (1 - rw)[None, :, None, None] + images[:, r1] * rw[None, :, None, None]
    return rows[:, :, c0] * (1 - cw)[None, None, :, None] + rows[:, :, c1] * cw[None, None, :, None]


def numpy_dtype(dtype: object) -> np.dtype:
    return np.dtype({"f32": np.float32, "f64": np.float64}.get(str(dtype), dtype))  # type: ignore[arg-type]


class Feeder:
    """Builds a model's inputs, by name, for a batch of image indices."""

    def __init__(self, prog: mlc.Program, images: np.ndarray, labels: np.ndarray) -> None:
        self.specs = {n: (tuple(int(d) for d in s), numpy_dtype(t)) for n, (s, t) in prog.inputs.items()}
        self.labels = labels
        self.images = images
        xs = [(s, t) for n, (s, t) in self.specs.items() if n not in ("y", "eps", "mask")]
        for shape, dtype in xs:  # resize once, not every batch
            if len(shape) == 4 and shape[1:3] != images.shape[1:3]:
                self.images = resize_bilinear(images, shape[1], shape[2]).astype(dtype)

    def __call__(self, idx: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        inputs = {}
        for name, (full, dtype) in self.specs.items():
            shape = (len(idx), *full[1:])  # a whole batch, or part of one
            if name == "y":
                value = np.eye(shape[1], dtype=dtype)[self.labels[idx]]
            elif name == "eps":
                value = rng.standard_normal(shape)
            elif name == "mask":
                value = rng.random(shape) < 0.75
            else:
                value = self.images[idx].reshape(shape)
            inputs[name] = np.ascontiguousarray(value, dtype=dtype)
        return inputs


def train_batches(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch: a fresh permutation in batches of BATCH, the last one wrapped to the start."""
    order = rng.permutation(n)
    steps = math.ceil(n / BATCH)
    order = np.concatenate([order, order[: steps * BATCH - n]])
    return [order[k * BATCH : (k + 1) * BATCH] for k in range(steps)]


def eval_batches(n: int) -> list[tuple[np.ndarray, int]]:
    """(indices, number of real rows): the last batch repeats its own images as padding."""
    out = []
    for start in range(0, n, BATCH):
        real = np.arange(start, min(start + BATCH, n))
        out.append((np.resize(real, BATCH), len(real)))
    return out


# ---------------------------------------------------------------------------------------------
# The PyTorch eager baseline
# ---------------------------------------------------------------------------------------------
class TorchTrainer:
    """The same model in eager PyTorch with torch.optim, from the same initial parameters; in
    `train()` mode, so running statistics are updated as mlc's training step updates them."""

    def __init__(self, source: str, params: Mapping[str, np.ndarray], states: Collection[str], optimizer: str,
                 hyper: Mapping[str, float]) -> None:
        import torch

        from mlc.testing.torch_reference import TorchModel

        self.torch = torch
        self.model = TorchModel.from_source(source, training=True)
        self.loss_name = self.model.signature.outputs[0].name
        self.params = {k: torch.tensor(np.array(v), requires_grad=k not in states) for k, v in params.items()}
        cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        self.opt = cls([v for k, v in self.params.items() if k not in states], **hyper)

    def step(self, inputs: Mapping[str, np.ndarray]) -> float:
        self.opt.zero_grad(set_to_none=True)
        outs = self.model({**self.params, **{k: self.torch.from_numpy(v) for k, v in inputs.items()}})
        loss = outs[self.loss_name]
        loss.backward()
        self.opt.step()
        return float(loss.detach())


# ---------------------------------------------------------------------------------------------
# Training one model
# ---------------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    classifier: bool
    spec: Spec
    compile_fwd_s: float = 0.0
    compile_step_s: float = 0.0
    train_loss: list[float] = field(default_factory=list)
    torch_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    mlc_ms: list[float] = field(default_factory=list)
    torch_ms: list[float] = field(default_factory=list)
    prog: mlc.Program | None = None
    params: dict[str, np.ndarray] | None = None
    error: str | None = None

    @property
    def metric(self) -> str:
        if self.classifier:
            return f"{100 * self.test_acc[-1]:.2f}% acc" if self.test_acc else "-"
        return f"{self.test_loss[-1]:.2f} loss" if self.test_loss else "-"

    @property
    def target(self) -> str:
        if self.spec.target is not None:
            return f">= {100 * self.spec.target:.0f}%"
        return f"< {self.test_loss[0]:.2f}" if self.test_loss else "loss falls"

    @property
    def passed(self) -> bool:
        if self.error is not None:
            return False
        if self.spec.target is not None:
            return bool(self.test_acc) and self.test_acc[-1] >= self.spec.target
        return len(self.test_loss) >= 2 and self.test_loss[-1] < self.test_loss[0]


def evaluate(prog: mlc.Program, params: Mapping[str, np.ndarray], feed: Feeder, seed: int) -> tuple[float, float | None]:
    """Mean held-out loss and (classifiers) accuracy of argmax(logits), from the compiled model.

    The loss output is a mean over the batch, so a batch's loss is weighted by its real rows;
    in the padded last batch the padding repeats the real rows (exact when they divide 32, as
    here: 360 = 11 * 32 + 8).
    """
    rng = np.random.default_rng(seed)  # the same noise every evaluation
    loss_name = prog.outputs[0]
    total_loss, correct, n = 0.0, 0, 0
    for idx, real in eval_batches(len(feed.labels)):
        outs = prog.run(params, feed(idx, rng))
        total_loss += float(outs[loss_name]) * real
        if "logits" in outs:
            correct += int((outs["logits"][:real].argmax(axis=1) == feed.labels[idx[:real]]).sum())
        n += real
    return total_loss / n, (correct / n if "logits" in prog.outputs else None)


def single_image_accuracy(spec: Spec, params: Mapping[str, np.ndarray], test: Feeder) -> float:
    """Accuracy of scoring each held-out image on its own, by the same model compiled for batch 1
    (its `input` declarations' first dimension set to 1; parameters and states do not depend on
    it) and run in inference mode, where batchnorm normalises with its running statistics."""
    source = (EXAMPLES / f"{spec.name}.mlc").read_text()
    single = mlc.compile(re.sub(rf"^(\s*input\s+\w+\s*:\s*f\d+\[){BATCH}\b", r"\g<1>1", source, flags=re.M))
    rng = np.random.default_rng(SEED + 5)
    correct = 0
    for i in range(len(test.labels)):
        logits = single.run(params, test(np.array([i]), rng))["logits"]
        correct += int(logits.argmax() == test.labels[i])
    return correct / len(test.labels)


def train_model(
    spec: Spec,
    data: Digits,
    epochs: int | None = None,
    max_steps: int | None = None,
    torch_baseline: bool = True,
    log: Callable[[str], None] = print,
) -> Result:
    """Compile `spec`'s model, train it for `epochs` (at most `max_steps` steps per epoch)."""
    path = EXAMPLES / f"{spec.name}.mlc"
    source = path.read_text()
    epochs = spec.epochs if epochs is None else epochs

    start = time.perf_counter()
    prog = mlc.compile(str(path))
    fwd_s = time.perf_counter() - start
    start = time.perf_counter()
    trainer = prog.trainer(spec.optimizer, **spec.hyper)
    step_s = time.perf_counter() - start
    classifier = "logits" in prog.outputs and "y" in prog.inputs
    result = Result(spec.name, classifier, spec, fwd_s, step_s, prog=prog)
    hyper = ", ".join(f"{k}={v:g}" for k, v in spec.hyper.items())
    n_values = sum(int(np.prod(s)) for s, _ in prog.params.values())
    log(f"   {len(prog.params)} parameter tensors, {n_values:,} values; {spec.optimizer} ({hyper}), {epochs} epochs")
    log(f"   compile: training step {step_s:.2f} s, forward {fwd_s:.2f} s")

    params = prog.init_params(seed=SEED)
    result.params = params
    baseline = TorchTrainer(source, params, prog.states, spec.optimizer, spec.hyper) if torch_baseline else None
    step = trainer.step
    train_feed = Feeder(prog, data.train_x, data.train_y)
    test_feed = Feeder(prog, data.test_x, data.test_y)
    order_rng = np.random.default_rng(SEED)
    noise_rng = np.random.default_rng(SEED + 1)
    loss_name = prog.outputs[0]
    elbo = "eps" in prog.inputs  # VAE, CVAE: the loss is the negative ELBO (per example, in nats)
    loss_label = "train loss (-ELBO)" if elbo else "train loss"
    for epoch in range(1, epochs + 1):
        lr = spec.lr(epoch, epochs)  # a runtime scalar of the step function: no recompilation
        trainer.options["lr"] = lr
        if baseline is not None:
            for group in baseline.opt.param_groups:
                group["lr"] = lr
        batches = train_batches(len(train_feed.labels), order_rng)[:max_steps]
        feeds = [train_feed(idx, noise_rng) for idx in batches]

        start = time.perf_counter()
        losses = [float(step(params, f)[loss_name]) for f in feeds]
        mlc_s = time.perf_counter() - start
        if not all(math.isfinite(v) for v in losses):
            raise RuntimeError(f"non-finite training loss in epoch {epoch}")
        result.train_loss.append(float(np.mean(losses)))
        result.mlc_ms.append(1e3 * mlc_s / len(feeds))

        test_loss, acc = evaluate(prog, params, test_feed, SEED + 2)
        result.test_loss.append(test_loss)
        if acc is not None:
            result.test_acc.append(acc)
            metric = f"test acc {100 * acc:6.2f}%"
        elif elbo:
            metric = f"test ELBO {-test_loss:8.3f}"
        else:
            metric = f"test loss {test_loss:8.3f}"

        timing = f"mlc {result.mlc_ms[-1]:6.2f} ms/step"
        if baseline is not None:
            start = time.perf_counter()
            t_losses = [baseline.step(f) for f in feeds]
            torch_s = time.perf_counter() - start
            result.torch_loss.append(float(np.mean(t_losses)))
            result.torch_ms.append(1e3 * torch_s / len(feeds))
            timing += f" | torch {result.torch_ms[-1]:6.2f} ms/step, loss {result.torch_loss[-1]:8.4f}"
            timing += f" | torch/mlc {result.torch_ms[-1] / result.mlc_ms[-1]:5.2f}x"
        log(f"   epoch {epoch:2d}/{epochs}  {loss_label} {result.train_loss[-1]:8.4f}  {metric}  | {timing}")
    if classifier and prog.states:
        acc = single_image_accuracy(spec, params, test_feed)
        log(f"   held-out accuracy scoring one image at a time (batch 1, running statistics) {100 * acc:.2f}%")
    return result


# ---------------------------------------------------------------------------------------------
# The picture
# ---------------------------------------------------------------------------------------------
def reconstructions(results: Mapping[str, Result], data: Digits, count: int = 16) -> list[tuple[str, np.ndarray]]:
    """Rows of [count, 8, 8] images: test digits (classes 0..9, 0..5), each trained autoencoder's
    reconstruction of them, and digits the VAE and CVAE draw from their prior."""
    per_class = [np.flatnonzero(data.test_y == d) for d in range(10)]
    picks = np.array([per_class[k % 10][k // 10] for k in range(count)])
    idx = np.resize(picks, BATCH)
    rows = [("test digits", data.test_x[picks, :, :, 0])]
    for name, label in [("conv_autoencoder", "conv AE"), ("denoising_autoencoder", "denoising AE"),
                        ("vae", "VAE (z = mu)"), ("cvae", "CVAE (z = mu)")]:  # fmt: skip
        r = results.get(name)
        if r is None or r.error is not None or r.prog is None or r.params is None:
            continue
        inputs = Feeder(r.prog, data.test_x, data.test_y)(idx, np.random.default_rng(SEED + 4))
        if "eps" in inputs:
            inputs["eps"][:] = 0.0  # decode the posterior mean
        if "mask" in inputs:  # show the corrupted input too
            rows.append(("masked input", (inputs["x"] * inputs["mask"])[:count].reshape(count, 8, 8)))
        recon = r.prog.run(r.params, inputs)["recon"]
        rows.append((label, recon[:count].reshape(count, 8, 8)))
    for name, label in [("vae", "VAE samples"), ("cvae", "CVAE samples")]:
        r = results.get(name)
        if r is None or r.error is not None or r.params is None:
            continue
        try:
            rows.append((label, prior_samples(name, r.params, count)))
        except Exception as e:  # noqa: BLE001 - the decoder below must match examples/<name>.mlc
            print(f"   ({label} skipped: {type(e).__name__}: {e})")
    return rows


# The decoders of examples/vae.mlc and examples/cvae.mlc on their own, to decode z ~ N(0, I)
# (with the class as the condition for the CVAE). A model's first output must be a scalar loss:
# `unused` is one, nothing trains this program.
DECODERS = {
    "vae": """
model vae_decoder {
  input  z: f32[32, 8]
  param  wd1: f32[8, 64]
  param  bd1: f32[64]
  param  wd2: f32[64, 64]
  param  bd2: f32[64]
  h = relu(dense(z, wd1, bd1))
  recon = sigmoid(dense(h, wd2, bd2))
  unused = mean(recon)
  output unused, recon
}
""",
    "cvae": """
model cvae_decoder {
  input  z: f32[32, 8]
  input  y: f32[32, 10]
  param  wd1: f32[18, 64]
  param  bd1: f32[64]
  param  wd2: f32[64, 64]
  param  bd2: f32[64]
  h = relu(dense(concat(z, y, axis=-1), wd1, bd1))
  recon = sigmoid(dense(h, wd2, bd2))
  unused = mean(recon)
  output unused, recon
}
""",
}


def prior_samples(name: str, params: Mapping[str, np.ndarray], count: int) -> np.ndarray:
    """`count` digits decoded from z ~ N(0, I) by the trained decoder (CVAE: classes 0..9, 0..)."""
    decoder = mlc.compile(DECODERS[name])
    rng = np.random.default_rng(SEED + 3)
    inputs = {"z": rng.standard_normal((BATCH, 8)).astype(np.float32)}
    if "y" in decoder.inputs:
        inputs["y"] = np.eye(10, dtype=np.float32)[np.arange(BATCH) % 10]
    recon = decoder.run({k: params[k] for k in decoder.params}, inputs)["recon"]
    return recon[:count].reshape(count, 8, 8)


def write_png(rows: list[tuple[str, np.ndarray]], path: Path, scale: int = 6) -> None:
    from PIL import Image, ImageDraw

    label_w, gap = 110, 2
    cell = 8 * scale
    count = max(len(imgs) for _, imgs in rows)
    width = label_w + count * (cell + gap)
    height = len(rows) * (cell + gap) + gap
    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    for r, (label, imgs) in enumerate(rows):
        top = gap + r * (cell + gap)
        draw.text((4, top + cell // 2 - 5), label, fill=0)
        for c, img in enumerate(imgs):
            tile = Image.fromarray((255 * (1 - np.clip(img, 0, 1))).astype(np.uint8))  # dark ink
            canvas.paste(tile.resize((cell, cell), Image.NEAREST), (label_w + c * (cell + gap), top))
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    parser.add_argument("--models", default="", help="comma-separated model names (default: all)")
    parser.add_argument("--cached", action="store_true", help="reuse compiled libraries from earlier runs")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (default: PyTorch's own)")
    parser.add_argument("names", nargs="*", help="model names (as --models)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    wanted = [n for n in args.models.split(",") if n] + args.names
    names = wanted or list(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        print(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(SPECS)})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mlc-demo-cache-") as cold_cache:
        if not args.cached:
            os.environ["MLC_CACHE_DIR"] = cold_cache
        return run_all(names, args)


def run_all(names: list[str], args: argparse.Namespace) -> int:
    import torch

    wall = time.perf_counter()
    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    data = load_digits()
    print(
        f"scikit-learn digits: {len(data.train_y)} training / {len(data.test_y)} held-out images of 8x8, "
        f"batch {BATCH}; compile {'with the library cache' if args.cached else 'cold'}; "
        f"PyTorch {torch.__version__} eager, {torch.get_num_threads()} threads; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    results: dict[str, Result] = {}
    for name in names:
        spec = SPECS[name]
        epochs = spec.quick_epochs if args.quick else spec.epochs
        print(f"\n== {name} (examples/{name}.mlc)")
        try:
            results[name] = train_model(spec, data, epochs, torch_baseline=not args.no_torch)
        except Exception as e:  # noqa: BLE001 - keep going: show every model's state
            results[name] = Result(name, False, spec, error=f"{type(e).__name__}: {e}")
            if type(e).__name__ == "CompileError":
                print(str(e))
            else:
                traceback.print_exc(file=sys.stdout)

    rows = reconstructions(results, data)
    if len(rows) > 1:
        png = OUT_DIR / "reconstructions.png"
        write_png(rows, png)
        print(f"\nwrote {png} ({', '.join(label for label, _ in rows)})")

    print("\n== summary")
    print("   compile s: the training step, cold unless --cached; ms/step: the fastest epoch of each (the least")
    print("   disturbed by other processes); speedup: torch ms / mlc ms (above 1: mlc is faster)")
    header = f"{'model':<22} {'final metric':>13} {'target':>9} {'result':>6} {'compile s':>9} {'mlc ms':>8} {'torch ms':>9} {'speedup':>8}"
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        mlc_ms = min(r.mlc_ms, default=float("nan"))
        torch_ms = min(r.torch_ms, default=float("nan"))
        status = "pass" if r.passed else ("ERROR" if r.error else "FAIL")
        speedup = f"{torch_ms / mlc_ms:7.2f}x" if r.torch_ms and r.mlc_ms else "-"
        print(
            f"{name:<22} {r.metric:>13} {r.target:>9} {status:>6} {r.compile_step_s:9.2f} "
            f"{mlc_ms:8.2f} {torch_ms:9.2f} {speedup:>8}".replace(" nan", "   -")
        )
    failed = [n for n, r in results.items() if not r.passed]
    print(f"\ntotal wall time {time.perf_counter() - wall:.1f} s (load average now {os.getloadavg()[0]:.2f})")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        return 1
    print(f"all {len(results)} models reached their targets")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
