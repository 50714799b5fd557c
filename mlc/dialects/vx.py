"""`vx`: the lanewise comparison, selection and conversion mlc's vector code needs and xDSL's
`arith` lacks (its `cmpf` and `cmpi` give a scalar `i1`, its `select` takes one, its `sitofp` scalars only).

    %m = vx.cmpf ogt, %a, %b : vector<16xf32>
    %e = vx.cmpi eq, %i, %j : vector<8xi64>
    %r = vx.select %m, %a, %b : vector<16xf32>
    %f = vx.sitofp %i : vector<8xi64> to vector<8xf32>

`vx.cmpf` and `vx.cmpi` have `arith.cmpf`'s and `arith.cmpi`'s predicates and give a
`vector<Nxi1>` mask; `vx.select` picks each
lane from `lhs` where the mask is set, else from `rhs`; `vx.sitofp` converts each lane of a
signed integer vector to the nearest float, as `arith.sitofp` does a scalar.
"""

from __future__ import annotations

from typing import ClassVar

from xdsl.dialects.arith import CMPF_COMPARISON_OPERATIONS, CMPI_COMPARISON_OPERATIONS
from xdsl.dialects.builtin import IntegerType, StringAttr, VectorType
from xdsl.ir import Dialect, SSAValue
from xdsl.irdl import IRDLOperation, irdl_op_definition, operand_def, prop_def, result_def, traits_def
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import VerifyException


class _CompareOp(IRDLOperation):
    """A lanewise comparison: a `vector<Nxi1>` mask of two vectors of one type."""

    PREDICATES: ClassVar[tuple[str, ...]] = ()
    predicate = prop_def(StringAttr)
    lhs = operand_def(VectorType)
    rhs = operand_def(VectorType)
    result = result_def(VectorType)
    traits = traits_def(Pure())

    def __init__(self, predicate: str, lhs: SSAValue, rhs: SSAValue) -> None:
        shape = lhs.type.get_shape()  # pyright: ignore[reportAttributeAccessIssue]
        super().__init__(operands=[lhs, rhs], result_types=[VectorType(IntegerType(1), shape)],
                         properties={"predicate": StringAttr(predicate)})

    def verify_(self) -> None:
        if self.predicate.data not in self.PREDICATES:
            raise VerifyException(f"unknown predicate '{self.predicate.data}'")
        if self.lhs.type != self.rhs.type:
            raise VerifyException("operands must have the same type")
        if self.result.type != VectorType(IntegerType(1), self.lhs.type.get_shape()):  # pyright: ignore[reportAttributeAccessIssue]
            raise VerifyException("the result must be a vector of i1 of the operands' shape")

    def print(self, printer: Printer) -> None:
        printer.print_string(f" {self.predicate.data}, ")
        printer.print_operand(self.lhs)
        printer.print_string(", ")
        printer.print_operand(self.rhs)
        printer.print_string(" : ")
        printer.print_attribute(self.lhs.type)

    @classmethod
    def parse(cls, parser: Parser) -> _CompareOp:
        predicate = parser.parse_identifier()
        parser.parse_punctuation(",")
        lhs = parser.parse_unresolved_operand()
        parser.parse_punctuation(",")
        rhs = parser.parse_unresolved_operand()
        parser.parse_punctuation(":")
        typ = parser.parse_type()
        return cls(predicate, parser.resolve_operand(lhs, typ), parser.resolve_operand(rhs, typ))


@irdl_op_definition
class CmpfOp(_CompareOp):
    name = "vx.cmpf"
    PREDICATES: ClassVar[tuple[str, ...]] = tuple(CMPF_COMPARISON_OPERATIONS)


@irdl_op_definition
class CmpiOp(_CompareOp):
    name = "vx.cmpi"
    PREDICATES: ClassVar[tuple[str, ...]] = tuple(CMPI_COMPARISON_OPERATIONS)


@irdl_op_definition
class SelectOp(IRDLOperation):
    name = "vx.select"
    cond = operand_def(VectorType)
    lhs = operand_def(VectorType)
    rhs = operand_def(VectorType)
    result = result_def(VectorType)
    traits = traits_def(Pure())

    def __init__(self, cond: SSAValue, lhs: SSAValue, rhs: SSAValue) -> None:
        super().__init__(operands=[cond, lhs, rhs], result_types=[lhs.type])

    def verify_(self) -> None:
        shape = self.lhs.type.get_shape()  # pyright: ignore[reportAttributeAccessIssue]
        if self.cond.type != VectorType(IntegerType(1), shape) or self.rhs.type != self.lhs.type \
                or self.result.type != self.lhs.type:
            raise VerifyException("vx.select takes a mask and two vectors of the mask's shape and one type")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.cond)
        printer.print_string(", ")
        printer.print_operand(self.lhs)
        printer.print_string(", ")
        printer.print_operand(self.rhs)
        printer.print_string(" : ")
        printer.print_attribute(self.lhs.type)

    @classmethod
    def parse(cls, parser: Parser) -> SelectOp:
        operands = [parser.parse_unresolved_operand()]
        for _ in range(2):
            parser.parse_punctuation(",")
            operands.append(parser.parse_unresolved_operand())
        parser.parse_punctuation(":")
        typ = parser.parse_type()
        assert isinstance(typ, VectorType)
        cond, lhs, rhs = (parser.resolve_operand(o, t) for o, t in
                          zip(operands, [VectorType(IntegerType(1), typ.get_shape()), typ, typ]))
        return cls(cond, lhs, rhs)


@irdl_op_definition
class SIToFPOp(IRDLOperation):
    name = "vx.sitofp"
    input = operand_def(VectorType)
    result = result_def(VectorType)
    traits = traits_def(Pure())

    assembly_format = "$input attr-dict `:` type($input) `to` type($result)"

    def __init__(self, value: SSAValue, result_type: VectorType) -> None:
        super().__init__(operands=[value], result_types=[result_type])

    def verify_(self) -> None:
        source, target = self.input.type, self.result.type
        assert isinstance(source, VectorType) and isinstance(target, VectorType)
        if not isinstance(source.get_element_type(), IntegerType) or isinstance(target.get_element_type(), IntegerType) \
                or source.get_shape() != target.get_shape():
            raise VerifyException("vx.sitofp converts an integer vector to a float vector of its shape")


VX = Dialect("vx", [CmpfOp, CmpiOp, SelectOp, SIToFPOp], [])
