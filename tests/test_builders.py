"""The loop builders' value numbering (`mlc.loops.builders.reused`): a pure op is built once
where it dominates, and never reused from a loop body that has been closed."""

from __future__ import annotations

from xdsl.dialects import arith, func, scf
from xdsl.dialects.builtin import IndexType, ModuleOp
from xdsl.ir import Block, Region
from xdsl.ir.affine import AffineExpr

from mlc.loops.builders import emit_index_expr, for_loop, function_scope


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
