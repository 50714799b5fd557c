"""mlc-checkpoint end to end: budgets are hard and monotone, gradients bitwise identical, the arena
predicted exactly, infeasible budgets located errors, remarks one line per stage."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import func
from xdsl.dialects.builtin import StringAttr
from xdsl.utils.exceptions import PassFailedException

import mlc
from mlc.api import load_module, make_context, run_pipeline
from mlc.checkpointing.program import Step, evaluate, split_chain
from mlc.errors import CompileError
from mlc.passes.checkpoint import parse_budget
from mlc.schedule import computed_by_readers
from mlc.passes.pipelines import checkpoint_pass, gradient_pipeline
from mlc.passes.plan_memory import memory_report

# Seven conv layers with awkward shapes: odd sizes, dilation, asymmetric `same` padding at stride
# 2 (9 -> 5), stride greater than the kernel (5 -> 2); batch 4 and batch 1.
CONV_CHAIN = """
model conv_chain {
  input  x: f32[BATCH, 9, 9, 3]
  param  w1: f32[3, 3, 3, 8] = glorot
  param  w2: f32[3, 3, 8, 8] = glorot
  param  w3: f32[3, 3, 8, 8] = glorot
  param  w4: f32[3, 3, 8, 8] = glorot
  param  w5: f32[3, 3, 8, 8] = glorot
  param  w6: f32[3, 3, 8, 6] = glorot
  param  w7: f32[2, 2, 6, 4] = glorot
  h = relu(conv2d(x, w1, padding=same))
  h = tanh(conv2d(h, w2, padding=same))
  h = relu(conv2d(h, w3, padding=same, dilation=2))
  h = sigmoid(conv2d(h, w4, padding=same)) * h
  h = relu(conv2d(h, w5, padding=same))
  h = tanh(conv2d(h, w6, stride=2, padding=same))
  h = conv2d(h, w7, stride=3)
  loss = mean(h * h)
  output loss
}
"""

SWEEP = ["100%", "85%", "70%", "60%", "50%", "45%", "40%", "30%"]


def _inputs(prog: mlc.Program, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(shape).astype(dtype) for k, (shape, dtype) in prog.inputs.items()}


def _grad_function(source: str, checkpoint: str) -> func.FuncOp:
    ctx = make_context()
    module = load_module(source, ctx)
    run_pipeline(module, gradient_pipeline(checkpoint=checkpoint), ctx)
    return next(o for o in module.ops if isinstance(o, func.FuncOp) and o.sym_name.data.endswith("_grad"))


@pytest.mark.parametrize("batch", [4, 1])
def test_budget_sweep_on_a_conv_chain(batch):
    """Over a sweep of budgets: arena <= budget, non-increasing as the budget falls, recompute
    non-decreasing, gradients bitwise identical to keep-all, and the arena predicted exactly."""
    prog = mlc.compile(CONV_CHAIN.replace("BATCH", str(batch)))
    params, inputs = prog.init_params(0), _inputs(prog)
    keep_all = prog.grad_program()
    _, reference = prog.grad(params, inputs)
    full = keep_all.memory_report()["arena"]
    arenas, recomputes, feasible = [], [], 0
    for budget in SWEEP:
        try:
            variant = prog.grad_program(budget=budget)
        except CompileError as e:
            assert "smallest feasible budget is" in str(e)
            arenas.append(None)
            continue
        feasible += 1
        report = variant.memory_report()
        limit = int(float(budget.rstrip("%")) / 100 * full)
        assert report["arena"] <= limit, (budget, report)
        arenas.append(report["arena"])
        recomputes.append(report["recompute_macs"])
        _, grads = prog.grad(params, inputs, budget=budget)
        for name in reference:
            assert np.array_equal(grads[name], reference[name]), (budget, name)
    # Once infeasible, every smaller budget is too (the candidate set does not depend on it).
    first_gap = arenas.index(None) if None in arenas else len(arenas)
    assert all(a is None for a in arenas[first_gap:])
    fitted = arenas[:first_gap]
    assert fitted == sorted(fitted, reverse=True) and recomputes == sorted(recomputes)
    assert feasible >= 5 and fitted[-1] < 0.6 * full and recomputes[-1] > 0


def test_the_predicted_arena_is_the_planned_arena():
    for checkpoint in ["", checkpoint_pass(policy="recompute-all"), checkpoint_pass("60%"), checkpoint_pass(policy="sqrt")]:
        f = _grad_function(CONV_CHAIN.replace("BATCH", "2"), checkpoint)
        report = memory_report(f)
        assert report is not None
        if checkpoint:
            figures = {k: v.value.data for k, v in f.attributes["mlc.checkpoint"].data.items() if k != "policy"}  # type: ignore[attr-defined]
            assert figures["planned_arena"] == report["arena"] == f.attributes["mlc.arena_bytes"].value.data  # type: ignore[attr-defined]
            assert figures["recompute_macs"] == report["recompute_macs"]


def test_policies_give_identical_gradients():
    prog = mlc.compile(CONV_CHAIN.replace("BATCH", "3"))
    params, inputs = prog.init_params(2), _inputs(prog, 3)
    _, reference = prog.grad(params, inputs)
    arena = {}
    for policy in ["keep-all", "recompute-all", "sqrt", "optimal"]:
        _, grads = prog.grad(params, inputs, checkpoint=policy)
        assert all(np.array_equal(grads[k], reference[k]) for k in reference), policy
        arena[policy] = prog.grad_program(checkpoint=policy).memory_report()
    assert arena["keep-all"]["recompute_macs"] == arena["optimal"]["recompute_macs"] == 0  # no budget: nothing to trade
    assert arena["recompute-all"]["arena"] < arena["sqrt"]["arena"] < arena["keep-all"]["arena"]
    assert arena["recompute-all"]["recompute_macs"] > arena["sqrt"]["recompute_macs"] > 0


def test_training_steps_with_a_budget_match_keep_all_bitwise():
    prog = mlc.compile(Path("examples/conv_autoencoder.mlc"))
    inputs = _inputs(prog)
    runs = []
    for budget in [None, "75%"]:
        params = prog.init_params(0)
        trainer = prog.trainer("adam", budget=budget, lr=1e-3)
        losses = [float(trainer.step(params, inputs)["loss"]) for _ in range(3)]
        runs.append((losses, params, trainer.program.memory_report()))
    (l0, p0, r0), (l1, p1, r1) = runs
    assert l0 == l1 and all(np.array_equal(p0[k], p1[k]) for k in p0)
    assert r1["arena"] <= 0.75 * r0["arena"] and r1["recompute_macs"] > 0


def test_a_residual_model_uses_the_graph_solvers():
    source = """
model residual {
  input  x: f32[4, 16]
  param  w1: f32[16, 16] = glorot
  param  w2: f32[16, 16] = glorot
  param  w3: f32[16, 16] = glorot
  h = tanh(matmul(x, w1))
  g = tanh(matmul(h, w2)) + h
  k = tanh(matmul(g, w3)) + h
  loss = mean(k * k)
  output loss
}
"""
    prog = mlc.compile(source)
    params, inputs = prog.init_params(0), _inputs(prog)
    _, reference = prog.grad(params, inputs)
    full = prog.grad_program().memory_report()["arena"]
    # Fusion leaves seven values of equal size with a buffer each: 6/7 of keep-all is the least
    # any plan needs, so 90% is a budget that forces recomputation.
    report = prog.grad_program(budget="90%").memory_report()
    assert report["arena"] <= 0.9 * full and report["recompute_macs"] > 0
    _, grads = prog.grad(params, inputs, budget="90%")
    assert all(np.array_equal(grads[k], reference[k]) for k in reference)


# ---------------------------------------------------------------------------------------------
# Errors and remarks


def test_an_infeasible_budget_is_a_located_error_naming_the_smallest_feasible_one(tmp_path):
    path = tmp_path / "chain.mlc"
    path.write_text(CONV_CHAIN.replace("BATCH", "2"))
    result = subprocess.run([sys.executable, "-m", "mlc.cli", str(path), "-t", "c", "-p",
                             gradient_pipeline(checkpoint=checkpoint_pass(1000))], capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    header, line, caret = result.stderr.strip().splitlines()
    assert header.startswith(f"{path}:2:7: error: mlc-checkpoint: budget 1000 bytes is below")
    assert line.strip() == "model conv_chain {" and caret.strip() == "^"
    smallest = int(re.search(r"smallest feasible budget is (\d+) bytes", header).group(1))  # type: ignore[union-attr]
    prog = mlc.compile(path)
    assert prog.grad_program(budget=smallest).memory_report()["arena"] == smallest
    with pytest.raises(CompileError):
        prog.grad_program(budget=smallest - 1)


def test_remarks_say_one_line_per_stage(tmp_path):
    path = tmp_path / "chain.mlc"
    path.write_text(CONV_CHAIN.replace("BATCH", "2"))
    pipeline = gradient_pipeline(checkpoint='mlc-checkpoint{budget="50%" remarks=true}')
    result = subprocess.run([sys.executable, "-m", "mlc.cli", str(path), "-p", pipeline], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("mlc-checkpoint: @conv_chain_grad: ")]
    summary, chosen, *stages = lines
    assert re.search(r"policy optimal, budget 50% of keep-all \(\d+ bytes\): arena \d+ bytes", summary)
    if m := re.search(r"chain of (\d+) stages", chosen):  # the dynamic programme's plan: one line per stage
        assert len(stages) == int(m.group(1))
        assert all(re.match(r"stage \d+ \(ops? #\d+", s.split(": ", 2)[2]) for s in stages)
    else:  # a graph solver's plan: one line per forward value
        assert re.search(r"graph of \d+ ops", chosen)
        assert all(re.match(r"#\d+ f32\[[\d,]*\]: (kept|recomputed)", s.split(": ", 2)[2]) for s in stages)
        ctx = make_context()
        module = load_module(CONV_CHAIN.replace("BATCH", "2"), ctx)
        run_pipeline(module, "mlc-lower-graph,mlc-autodiff,mlc-scatter-to-gather,mlc-auto-schedule", ctx)
        f = next(o for o in module.ops if isinstance(o, func.FuncOp) and o.sym_name.data.endswith("_grad"))
        steps = [o for o in f.body.block.ops if o.attributes.get("mlc.phase") == StringAttr("forward") and not computed_by_readers(o)]
        assert len(stages) == len(steps)  # one line per forward value with a buffer
    assert any("recomputed" in s for s in stages) and any("kept" in s for s in stages)


@pytest.mark.parametrize("text, expected", [
    (40000, 40000), ("64KB", 64000), ("1.5MiB", 1572864), ("2 GB", 2 * 10**9), ("512B", 512), ("", None),
])
def test_budget_units(text, expected):
    budget = parse_budget(text)
    assert (budget.bytes if budget is not None else None) == expected


@pytest.mark.parametrize("text", [0.5, "50", "x%", "12 parsecs", -3])
def test_bad_budgets_and_policies_are_errors(text):
    if text == "50":
        assert parse_budget(text).bytes == 50  # type: ignore[union-attr]
        return
    with pytest.raises(PassFailedException, match="budget must be"):
        parse_budget(text)


def test_percent_budget_resolves_against_keep_all():
    assert parse_budget("25%").resolve(1000) == 250  # type: ignore[union-attr]


def test_unknown_policy_is_an_error():
    with pytest.raises(PassFailedException, match="policy must be one of"):
        _grad_function(CONV_CHAIN.replace("BATCH", "1"), "mlc-checkpoint{policy=sometimes}")


# ---------------------------------------------------------------------------------------------
# The IR-free model


def test_evaluate_counts_recompute_and_reuses_memory():
    # a -> b -> c forward; backward e reads c, f reads b and e, g reads a and f. Keeping a holds it
    # through the whole forward; recomputing it just before g frees it after b.
    steps = [Step("a", 100, 5, (), "forward"), Step("b", 100, 7, (0,), "forward"), Step("c", 100, 1, (1,), "forward"),
             Step("e", 100, 1, (2,), "backward", adjoint_of=2), Step("f", 100, 1, (1, 3), "backward", adjoint_of=1),
             Step("g", 100, 1, (0, 4), "backward", adjoint_of=0, returned=True)]
    keep = evaluate(steps, (0, 1, 2, 3, 4, 5))
    again = evaluate(steps, (0, 1, 2, 3, 4, 0, 5))
    assert (keep.live_peak, keep.recompute_cost) == (400, 0)
    assert (again.live_peak, again.recompute_cost, again.recomputed_runs) == (300, 5, 1)
    assert keep.arena == 4 * 128 and again.arena == 3 * 128  # 100-byte buffers at 64-byte alignment
    split = split_chain(steps)
    assert split is not None and split.forward == ((0,), (1,), (2,))
