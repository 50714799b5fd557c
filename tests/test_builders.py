"""The loop builders' value numbering (`mlc.loops.builders.reused`): a pure op is built once
where it dominates, and never reused from a loop body that has been closed."""

from __future__ import annotations

from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import IndexType, ModuleOp
from xdsl.ir import Block, Region
from xdsl.ir.affine import AffineExpr

from mlc.loops.builders import emit_index_expr, for_loop, function_scope, guarded_load


def test_index_arithmetic_is_shared_where_it_dominates_and_not_across_sibling_loops() -> None:
    block = Block(arg_types=[IndexType()])
    n = block.args[0]
    expr = AffineExpr.dimension(0) * 3 + 1
    ranges = [(0, 9)]
    with function_scope(block):
        outer = emit_index_expr(expr, [n], ranges)

        def body(i, _carried):  # the outer value is visible inside; an inner one is the loop's own
            assert emit_index_expr(expr, [n], ranges) is outer
            emit_index_expr(expr, [i], ranges)
            return ()

        for_loop(0, 4, body)
        for_loop(0, 4, body)
        func.ReturnOp()
    module = ModuleOp([func.FuncOp("f", ((IndexType(),), ()), Region(block))])
    module.verify()
    loops = [op for op in block.ops if isinstance(op, scf.ForOp)]
    per_loop = [sum(isinstance(o, arith.MuliOp) for o in loop.body.block.ops) for loop in loops]
    assert per_loop == [1, 1]
    assert sum(isinstance(o, arith.MuliOp) for o in block.ops) == 1


def test_guarded_loads_at_one_index_share_its_bounds_check_and_clamp() -> None:
    """Two padded reads at the same index (a convolution's taps read the input twice in one
    cell) build one compare and one clamp; each read keeps its own load and select."""
    from xdsl.dialects.builtin import MemRefType, f32

    block = Block(arg_types=[MemRefType(f32, [8]), IndexType()])
    buffer, i = block.args
    with function_scope(block):
        first, second = (guarded_load(buffer, [i], [True], 0.0) for _ in range(2))
        func.ReturnOp()
    module = ModuleOp([func.FuncOp("f", ((MemRefType(f32, [8]), IndexType()), ()), Region(block))])
    module.verify()
    assert first is not second
    counts = {kind: sum(isinstance(o, kind) for o in block.ops)
              for kind in (arith.CmpiOp, arith.MinSIOp, arith.MaxSIOp, memref.LoadOp, arith.SelectOp)}
    assert counts == {arith.CmpiOp: 1, arith.MinSIOp: 1, arith.MaxSIOp: 1, memref.LoadOp: 2, arith.SelectOp: 2}


def test_the_builders_leave_cse_almost_nothing_to_merge() -> None:
    """The MLP's Adam step repeats loop-invariant body arithmetic (the optimizer's scalar
    hyper-parameter maths) in every cell of a register tile unless body ops are numbered too:
    cse then erased 172 of the 4489 ops of its module (the model and the step); at most 1%."""
    from pathlib import Path

    import xdsl.passes
    from xdsl.transforms.common_subexpression_elimination import CommonSubexpressionElimination

    from mlc.passes.pipelines import training_pipeline
    from mlc.runtime.program import load_module, make_context, run_pipeline

    text = (Path(__file__).resolve().parents[1] / "examples" / "mlp.mlc").read_text()
    ctx = make_context()
    module = load_module(text, ctx)
    pipeline = training_pipeline("adam")
    before_cse = pipeline[: pipeline.index(",cse")]
    assert [p.name for p in xdsl.passes.parse_pipeline(before_cse)][-1] == "mlc-lower-loops"
    run_pipeline(module, before_cse, ctx)
    built = sum(1 for _ in module.walk())
    CommonSubexpressionElimination().apply(ctx, module)
    assert built - sum(1 for _ in module.walk()) <= built // 100
