"""The index-level dialect `ix`: every tensor is defined by one compute op in index notation.

    %y = ix.compute sum(r0: 3, r1: 3) (%x[d0, d1 + r0, d2 + r1], %w[r0, r1] fill -inf)
           : (tensor<4x8x8xf32>, tensor<3x3xf32>) -> tensor<4x6x6xf32> {
    ^bb0(%a: f32, %b: f32):
      %p = arith.mulf %a, %b : f32
      ix.yield %p : f32
    }

reads: the op's iteration space is the output index space `d0..d{rank-1}` followed by the
reduction variables `r0..`. Each operand is read through its own quasi-affine map of that space;
a read outside the operand's bounds yields the read's `fill` value (0 unless said otherwise).
body: gets the read scalars as block arguments (`ix.index` gives an iteration variable) and yields
one scalar. With a reduction (`sum` or `max`), the yielded values are combined over the reduction
variables (sum starting from 0, max from -inf keeping the first maximum); without one, the value
is the output element.

Like a `linalg.generic` on tensors, plus zero-filled out-of-bounds reads; what it computes is
fixed here, how (loop order, tiling, fusion) is decided later by passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from xdsl.builder import ImplicitBuilder, _current_builder  # pyright: ignore[reportPrivateUsage]
from xdsl.dialects.builtin import (
    AffineMapAttr,
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IndexType,
    IntegerAttr,
    StringAttr,
    TensorType,
    f64,
    i64,
)
from xdsl.ir import Attribute, Block, Dialect, Operation, Region, SSAValue
from xdsl.ir.affine import AffineDimExpr, AffineExpr, AffineMap
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import HasParent, IsTerminator, Pure
from xdsl.transforms.dead_code_elimination import is_trivially_dead
from xdsl.utils.exceptions import VerifyException

from mlc.dialects.index_maps import R_BASE, dim_names, format_map_results, parse_map_exprs
from mlc.dialects.ix_schedule import ScheduleAttr

REDUCTIONS = ("none", "sum", "max")


def _format_fill(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


class Read:
    """One read of a compute op: a tensor, the index map into it, and the out-of-bounds value."""

    __slots__ = ("fill", "map", "value")

    def __init__(self, value: SSAValue, amap: AffineMap, fill: float = 0.0) -> None:
        self.value = value
        self.map = amap
        self.fill = fill


BodyFn = Callable[[Sequence[SSAValue]], SSAValue]
"""Builds the scalar body (inside an ImplicitBuilder) from the read scalars; returns the value."""


class IndexNotationOp(IRDLOperation):
    """What compute and scatter ops share: reads through index maps and a scalar body.

    `extents` are the extents of the iteration variables that are not output indices (the
    reduction variables of a compute op; the whole iteration box of a scatter).
    """

    inputs = var_operand_def(TensorType)
    result = result_def(TensorType)
    maps = prop_def(ArrayAttr[AffineMapAttr])
    fills = prop_def(ArrayAttr[FloatAttr])
    extents = prop_def(DenseArrayBase.constr(i64))
    body = region_def("single_block")

    traits = traits_def(Pure())

    # -- accessors -------------------------------------------------------------------------
    @property
    def result_type(self) -> TensorType:
        assert isinstance(self.result.type, TensorType)
        return self.result.type

    @property
    def rank(self) -> int:
        return self.result_type.get_num_dims()

    @property
    def iteration_extents(self) -> tuple[int, ...]:
        """Extents of every iteration variable, in index-map dimension order."""
        raise NotImplementedError

    @property
    def index_maps(self) -> list[AffineMap]:
        return [m.data for m in self.maps.data]

    @property
    def fill_values(self) -> list[float]:
        return [f.value.data for f in self.fills.data]

    @property
    def reads(self) -> list[Read]:
        return [Read(v, m, f) for v, m, f in zip(self.inputs, self.index_maps, self.fill_values, strict=True)]

    @property
    def yield_op(self) -> YieldOp:
        term = self.body.block.last_op
        assert isinstance(term, YieldOp)
        return term

    def inline_body(
        self,
        args: Sequence[SSAValue],
        ivs: Sequence[SSAValue | None] | None = None,
        on_clone: Callable[[Operation], None] | None = None,
    ) -> SSAValue:
        """Clone the body at the implicit insertion point; returns the value it yields.

        The reads become `args`; each `ix.index k` becomes `ivs[k]` where given (loop induction
        variables, solved index expressions) and is cloned as is otherwise (a body moved into an
        op with the same iteration space). `on_clone` sees every cloned op in order (autodiff
        derives tangents that way).
        """
        mapping: dict[SSAValue, SSAValue] = dict(zip(self.body.block.args, args, strict=True))
        for body_op in self.body.block.ops:
            if isinstance(body_op, YieldOp):
                return mapping.get(body_op.value, body_op.value)
            if isinstance(body_op, IndexOp) and ivs is not None and ivs[body_op.dim.value.data] is not None:
                mapping[body_op.result] = ivs[body_op.dim.value.data]  # pyright: ignore[reportArgumentType]
                continue
            clone = body_op.clone(value_mapper=mapping)
            if clone.parent is None:  # an implicit builder may already have inserted it
                builder = _current_builder.builder
                assert builder is not None, "inline_body must run inside an ImplicitBuilder"
                builder.insert(clone)
            mapping.update(zip(body_op.results, clone.results))
            if on_clone is not None:
                on_clone(clone)
        raise AssertionError("index-notation body without ix.yield")

    @staticmethod
    def _properties(reads: Sequence[Read], extents: Sequence[int]) -> dict[str, Attribute]:
        return {
            "maps": ArrayAttr([AffineMapAttr(r.map) for r in reads]),
            "fills": ArrayAttr([FloatAttr(r.fill, f64) for r in reads]),
            "extents": DenseArrayBase.from_list(i64, list(extents)),
        }

    @staticmethod
    def _body(reads: Sequence[Read], body: BodyFn) -> tuple[list[Read], Region]:
        """Build a body with `body(read_scalars)`, then drop dead scalar ops and unused reads."""
        block = Block(arg_types=[_element_type(r.value.type) for r in reads])
        with ImplicitBuilder(block):
            YieldOp(body(block.args))
        for op in reversed(list(block.ops)):
            if is_trivially_dead(op):
                op.detach()
                op.erase()
        kept = [r for r, arg in zip(reads, block.args) if arg.uses]
        for arg in reversed(list(block.args)):
            if not arg.uses:
                block.erase_arg(arg)
        return kept, Region(block)

    # -- verification ----------------------------------------------------------------------
    def _verify_reads_and_body(self) -> None:
        extents = tuple(self.extents.get_values())
        if any(e <= 0 for e in extents):
            raise VerifyException(f"extents must be positive, got {list(extents)}")
        n = len(self.inputs)
        if len(self.maps) != n or len(self.fills) != n:
            raise VerifyException(f"expected {n} index maps and fills (one per input), got {len(self.maps)} and {len(self.fills)}")
        num_dims = len(self.iteration_extents)
        for k, (value, amap) in enumerate(zip(self.inputs, self.index_maps)):
            assert isinstance(value.type, TensorType)
            if amap.num_dims != num_dims or amap.num_symbols != 0:
                raise VerifyException(f"index map of input {k} must have {num_dims} dimensions and no symbols, got {amap}")
            if len(amap.results) != value.type.get_num_dims():
                raise VerifyException(
                    f"index map of input {k} has {len(amap.results)} results but the input has rank {value.type.get_num_dims()}"
                )
        block = self.body.block
        arg_types = [a.type for a in block.args]
        expected = [_element_type(v.type) for v in self.inputs]
        if arg_types != expected:
            raise VerifyException(f"body arguments must be the input element types {expected}, got {arg_types}")
        if not isinstance(block.last_op, YieldOp):
            raise VerifyException("body must end with ix.yield")
        if block.last_op.value.type != self.result_type.get_element_type():
            raise VerifyException(
                f"body yields {block.last_op.value.type} but the result element type is {self.result_type.get_element_type()}"
            )
        for op in block.ops:
            if isinstance(op, IndexOp) and not 0 <= op.dim.value.data < num_dims:
                raise VerifyException(f"ix.index {op.dim.value.data} is outside the {num_dims} iteration variables")

    # -- custom syntax ---------------------------------------------------------------------
    def _print_reads_and_body(self, printer: Printer, names: Sequence[str]) -> None:
        printer.print_string(" (")
        for k, read in enumerate(self.reads):
            if k:
                printer.print_string(", ")
            printer.print_ssa_value(read.value)
            printer.print_string(format_map_results(read.map, names))
            if read.fill != 0.0 or math.copysign(1.0, read.fill) < 0:
                printer.print_string(f" fill {_format_fill(read.fill)}")
        printer.print_string(") : (")
        printer.print_list(self.inputs.types, printer.print_attribute)
        printer.print_string(") -> ")
        printer.print_attribute(self.result.type)
        if self.attributes:
            printer.print_op_attributes(self.attributes, print_keyword=True)
        printer.print_string(" ")
        printer.print_region(self.body)

    @staticmethod
    def _parse_reads_and_body(parser: Parser, remap: Callable[[int], list[AffineExpr]]):
        """Parse `(reads) : (types) -> type attributes {...} {body}`.

        `remap(rank)` gives, for a parsed dimension position (see `_parse_expr`), its final
        expression once the result rank is known.
        """
        raw_reads = parser.parse_comma_separated_list(parser.Delimiter.PAREN, lambda: _parse_read(parser))
        parser.parse_punctuation(":")
        input_types = parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_type)
        parser.parse_punctuation("->")
        result_type = parser.parse_type()
        if not isinstance(result_type, TensorType):
            parser.raise_error(f"an index-notation op must produce a tensor, got {result_type}")
        if len(input_types) != len(raw_reads):
            parser.raise_error(f"{len(raw_reads)} reads but {len(input_types)} input types")
        attributes = parser.parse_optional_attr_dict_with_keyword()
        body = parser.parse_region()
        dims = remap(result_type.get_num_dims())
        reads = [
            Read(parser.resolve_operand(operand, typ), AffineMap(_count_dims(dims), 0,
                 tuple(e.replace_dims_and_symbols(dims, []) for e in exprs)), fill)
            for (operand, exprs, fill), typ in zip(raw_reads, input_types)
        ]
        return reads, result_type, body, attributes


def _count_dims(remap: Sequence[AffineExpr]) -> int:
    return 1 + max((e.position for e in remap if isinstance(e, AffineDimExpr)), default=-1)


@irdl_op_definition
class ComputeOp(IndexNotationOp):
    """Defines a tensor element-wise in index notation (see the module docstring)."""

    name = "ix.compute"
    reduction = prop_def(StringAttr)

    def __init__(
        self,
        reads: Sequence[Read],
        result_type: TensorType,
        body: Region,
        reduction: str = "none",
        extents: Sequence[int] = (),
    ) -> None:
        super().__init__(
            operands=[[r.value for r in reads]],
            result_types=[result_type],
            properties=self._properties(reads, extents) | {"reduction": StringAttr(reduction)},
            regions=[body],
        )

    @staticmethod
    def build(
        result_type: TensorType,
        reads: Sequence[Read],
        body: BodyFn,
        reduction: str = "none",
        extents: Sequence[int] = (),
    ) -> ComputeOp:
        """Build a compute op, constructing its body with `body(read_scalars)`."""
        kept, region = IndexNotationOp._body(reads, body)
        return ComputeOp(kept, result_type, region, reduction, extents)

    @property
    def reduction_extents(self) -> tuple[int, ...]:
        return tuple(self.extents.get_values())

    @property
    def iteration_extents(self) -> tuple[int, ...]:
        return (*self.result_type.get_shape(), *self.reduction_extents)

    def verify_(self) -> None:
        red = self.reduction.data
        if red not in REDUCTIONS:
            raise VerifyException(f"reduction must be one of {', '.join(REDUCTIONS)}, got '{red}'")
        extents = self.reduction_extents
        if red == "none" and extents:
            raise VerifyException("reduction extents given without a reduction")
        if red != "none" and not extents:
            raise VerifyException(f"a '{red}' reduction needs at least one reduction variable")
        self._verify_reads_and_body()

    def print(self, printer: Printer) -> None:
        extents = self.reduction_extents
        if self.reduction.data != "none":
            printer.print_string(f" {self.reduction.data}(")
            printer.print_string(", ".join(f"r{j}: {e}" for j, e in enumerate(extents)))
            printer.print_string(")")
        self._print_reads_and_body(printer, dim_names(self.rank, len(extents)))

    @classmethod
    def parse(cls, parser: Parser) -> ComputeOp:
        reduction = parser.parse_optional_keyword_in(("sum", "max")) or "none"
        extents: list[int] = []
        if reduction != "none":

            def parse_var() -> int:
                name = parser.parse_identifier()
                if name != f"r{len(extents)}":
                    parser.raise_error(f"reduction variables must be named r0, r1, ... in order, got '{name}'")
                parser.parse_punctuation(":")
                extent = parser.parse_integer(allow_negative=False, allow_boolean=False)
                extents.append(extent)
                return extent

            parser.parse_comma_separated_list(parser.Delimiter.PAREN, parse_var)

        def remap(rank: int) -> list[AffineExpr]:
            dims = [AffineExpr.dimension(i) for i in range(rank)] + [AffineExpr.constant(0)] * (R_BASE - rank)
            return dims + [AffineExpr.dimension(rank + j) for j in range(len(extents))]

        reads, result_type, body, attributes = cls._parse_reads_and_body(parser, remap)
        op = cls(reads, result_type, body, reduction, extents)
        if attributes is not None:
            op.attributes |= attributes.data
        return op


@irdl_op_definition
class ScatterOp(IndexNotationOp):
    """Accumulates a body over an iteration box into the elements its write map names.

        %dx = ix.scatter [4, 3] into [d0 * 2 + d1 - 1] (%dy[d0], %w[d1]) : (...) -> tensor<8xf32> {...}

    means `dx = 0; for d in box: if write(d) in bounds: dx[write(d)] += body(d)`. This is the
    natural form of an adjoint (reverse mode turns each read into a write); writes that fall
    outside the result are dropped, like the reads they came from read zeros. The iteration
    variables are all named `d0..`; `extents` is the whole box.
    """

    name = "ix.scatter"
    write = prop_def(AffineMapAttr)

    def __init__(self, reads: Sequence[Read], result_type: TensorType, body: Region, extents: Sequence[int], write: AffineMap) -> None:
        super().__init__(
            operands=[[r.value for r in reads]],
            result_types=[result_type],
            properties=self._properties(reads, extents) | {"write": AffineMapAttr(write)},
            regions=[body],
        )

    @staticmethod
    def build(result_type: TensorType, extents: Sequence[int], write: AffineMap, reads: Sequence[Read], body: BodyFn) -> ScatterOp:
        kept, region = IndexNotationOp._body(reads, body)
        return ScatterOp(kept, result_type, region, extents, write)

    @property
    def write_map(self) -> AffineMap:
        return self.write.data

    @property
    def iteration_extents(self) -> tuple[int, ...]:
        return tuple(self.extents.get_values())

    def verify_(self) -> None:
        if not self.iteration_extents:
            raise VerifyException("a scatter needs at least one iteration variable")
        w = self.write_map
        if w.num_dims != len(self.iteration_extents) or len(w.results) != self.rank:
            raise VerifyException(
                f"write map must take the {len(self.iteration_extents)} iteration variables to the {self.rank} result indices, got {w}"
            )
        self._verify_reads_and_body()

    def print(self, printer: Printer) -> None:
        names = [f"d{i}" for i in range(len(self.iteration_extents))]
        printer.print_string(f" {list(self.iteration_extents)} into {format_map_results(self.write_map, names)}")
        self._print_reads_and_body(printer, names)

    @classmethod
    def parse(cls, parser: Parser) -> ScatterOp:
        extents = parser.parse_comma_separated_list(
            parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_negative=False, allow_boolean=False)
        )
        parser.parse_keyword("into")
        write_exprs = parse_map_exprs(parser)

        def remap(rank: int) -> list[AffineExpr]:
            return [AffineExpr.dimension(i) for i in range(len(extents))]

        reads, result_type, body, attributes = cls._parse_reads_and_body(parser, remap)
        write = AffineMap(len(extents), 0, tuple(e.replace_dims_and_symbols(remap(0), []) for e in write_exprs))
        op = cls(reads, result_type, body, extents, write)
        if attributes is not None:
            op.attributes |= attributes.data
        return op


def _parse_read(parser: Parser):
    operand = parser.parse_unresolved_operand()
    exprs = parse_map_exprs(parser)
    fill = 0.0
    if parser.parse_optional_keyword("fill"):
        negative = parser.parse_optional_punctuation("-") is not None
        if parser.parse_optional_keyword("inf"):
            fill = math.inf
        elif parser.parse_optional_keyword("nan"):
            fill = math.nan
        else:
            fill = float(parser.parse_number())
        fill = -fill if negative else fill
    return operand, exprs, fill


@irdl_op_definition
class YieldOp(IRDLOperation):
    """Ends a compute body with the scalar for the current iteration point."""

    name = "ix.yield"
    value = operand_def(AnyAttr())
    traits = traits_def(IsTerminator(), HasParent(ComputeOp, ScatterOp))
    assembly_format = "$value attr-dict `:` type($value)"

    def __init__(self, value: SSAValue) -> None:
        super().__init__(operands=[value])


@irdl_op_definition
class IndexOp(IRDLOperation):
    """The value of iteration variable `dim` (output indices first, then reduction variables)."""

    name = "ix.index"
    dim = prop_def(IntegerAttr[i64])
    result = result_def(IndexType)
    traits = traits_def(Pure(), HasParent(ComputeOp, ScatterOp))
    assembly_format = "$dim attr-dict"

    def __init__(self, dim: int) -> None:
        super().__init__(properties={"dim": IntegerAttr(dim, i64)}, result_types=[IndexType()])


def _element_type(t: Attribute) -> Attribute:
    assert isinstance(t, TensorType), t
    return t.get_element_type()


IX = Dialect("ix", [ComputeOp, ScatterOp, YieldOp, IndexOp], [ScheduleAttr])
