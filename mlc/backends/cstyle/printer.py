"""The whole C-style printer: memory (`memref`) and control flow (`scf`) on top of the vector and
arithmetic layers. A target's printer subclasses `CStylePrinter` and adds the framing."""

from __future__ import annotations

from xdsl.dialects import memref, scf

from mlc.backends.cstyle.arithmetic import ArithmeticPrinter
from mlc.backends.cstyle.types import CEmitError, c_type, checked_memref, num_elements, pointee_type
from mlc.loops.builders import PARALLEL


class CStylePrinter(ArithmeticPrinter):
    """The handlers of `memref` and `scf` ops; with its bases, every op of the loop-level contract."""

    def print_load(self, op: memref.LoadOp) -> None:
        ref = self.expr(op.memref)
        self.assign(op.res, f"{ref}[{self.flat_index(op.memref, op.indices)}]")

    def print_store(self, op: memref.StoreOp) -> None:
        ref, value = self.expr(op.memref), self.expr(op.value)
        self.line(f"{ref}[{self.flat_index(op.memref, op.indices)}] = {value};")

    def print_alloca(self, op: memref.AllocaOp) -> None:
        if op.dynamic_sizes or op.symbol_operands:
            raise CEmitError("C backend: 'memref.alloca' with dynamic sizes is not supported")
        t = checked_memref(op.memref.type)
        name = self.define(op.memref)
        self.line(f"{pointee_type(t)} {name}[{num_elements(t)}] __attribute__((aligned(64)));")

    def print_view(self, op: memref.ViewOp) -> None:
        if op.sizes:
            raise CEmitError("C backend: 'memref.view' with dynamic sizes is not supported")
        source, offset = self.expr(op.source), self.expr(op.byte_shift)
        restrict = op.result in self.restrict_views
        decl = self.pointer_decl(op.result, restrict=restrict)
        cast = pointee_type(checked_memref(op.result.type))
        self.line(f"{decl} = ({cast}*)({source} + {offset});")

    def print_alloc(self, op: memref.AllocOp) -> None:
        if op.dynamic_sizes or op.symbol_operands:
            raise CEmitError("C backend: 'memref.alloc' with dynamic sizes is not supported")
        t = checked_memref(op.memref.type)
        elem = pointee_type(t)
        decl = self.pointer_decl(op.memref, restrict=True)
        self.line(f"{decl} = ({elem}*)malloc(sizeof({elem}) * {num_elements(t)});")

    def print_dealloc(self, op: memref.DeallocOp) -> None:
        self.line(f"free({self.expr(op.memref)});")

    def print_copy(self, op: memref.CopyOp) -> None:
        t = checked_memref(op.source.type)
        checked_memref(op.destination.type)
        src, dst = self.expr(op.source), self.expr(op.destination)
        self.line(f"memmove({dst}, {src}, sizeof({pointee_type(t)}) * {num_elements(t)});")

    def print_for(self, op: scf.ForOp) -> None:
        """Loop-carried values live in the result variables; the body reads copies of them,
        so a yield that permutes the iter_args cannot clobber a value it still needs."""
        results = [self.define(r) for r in op.res]
        for result, init in zip(results, op.iter_args):
            self.line(f"{self.value_type(init)} {result} = {self.expr(init)};")
        block = op.body.block
        lb, ub, step = self.expr(op.lb), self.expr(op.ub), self.expr(op.step)
        iv = self.define(block.args[0])
        if PARALLEL in op.attributes:
            self.line(self.parallel_pragma())
        self.line(f"for ({c_type(op.lb.type)} {iv} = {lb}; {iv} < {ub}; {iv} += {step}) {{")
        with self.indented():
            for arg, result in zip(block.args[1:], results):
                self.line(f"{self.value_type(arg)} {self.define(arg)} = {result};")
            self.print_block(block, results)
        self.line("}")

    def print_if(self, op: scf.IfOp) -> None:
        results = [self.define(r) for r in op.output]
        for value, name in zip(op.output, results):
            self.line(f"{self.value_type(value)} {name};")
        self.line(f"if ({self.expr(op.cond)}) {{")
        with self.indented():
            self.print_block(op.true_region.block, results)
        if op.false_region.blocks:
            self.line("} else {")
            with self.indented():
                self.print_block(op.false_region.block, results)
        self.line("}")

    handlers = ArithmeticPrinter.handlers | {
        memref.LoadOp: print_load,
        memref.StoreOp: print_store,
        memref.AllocaOp: print_alloca,
        memref.ViewOp: print_view,
        memref.AllocOp: print_alloc,
        memref.DeallocOp: print_dealloc,
        memref.CopyOp: print_copy,
        scf.ForOp: print_for,
        scf.IfOp: print_if,
    }
