"""`#ix.schedule<...>`: an index-level op's schedule as an attribute, and its text form.

The directives and what they mean are described in `mlc.loops.schedule`, which checks them
against an op's loops; `mlc.loops.nest` applies them. This module holds only the data, so that
the `ix` dialect can register the attribute without depending on the loop machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from xdsl.ir import Data
from xdsl.irdl import irdl_attr_definition
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer

SCHEDULE = "mlc.schedule"
"""The attribute of an `ix.compute` holding its `ScheduleAttr`."""


class ScheduleError(ValueError):
    """A schedule that does not fit its op (names the directive and why)."""


@dataclass(frozen=True)
class Schedule:
    """The schedule directives of one op (see the module docstring)."""

    splits: tuple[tuple[str, int], ...] = ()
    order: tuple[str, ...] = ()
    parallel: str | None = None
    vectorize: str | None = None
    lanes: int = 0
    """Lanes of the vectorized loop's vectors (0: the target's)."""
    unroll: tuple[str, ...] = ()
    inline: bool = False
    at: str | None = None
    stage: tuple[tuple[int, str | None], ...] = ()
    """(read, loop): the read's block below the loop (None: the whole nest) goes through a copy."""

    @property
    def is_root(self) -> bool:
        """Computed in a loop nest of its own (neither inline nor at a reader's loop)."""
        return not self.inline and self.at is None

    def with_(self, **changes: object) -> Schedule:
        return replace(self, **changes)  # pyright: ignore[reportArgumentType]

    def __str__(self) -> str:
        parts = ["inline"] if self.inline else []
        if self.at is not None:
            parts.append(f"at({self.at})")
        parts += [f"split({name}, {factor})" for name, factor in self.splits]
        if self.order:
            parts.append(f"order({', '.join(self.order)})")
        if self.parallel is not None:
            parts.append(f"parallel({self.parallel})")
        if self.vectorize is not None:
            parts.append(f"vectorize({self.vectorize}{f', {self.lanes}' if self.lanes else ''})")
        if self.unroll:
            parts.append(f"unroll({', '.join(self.unroll)})")
        parts += [f"stage({read})" if loop is None else f"stage({read}, {loop})" for read, loop in self.stage]
        return ", ".join(parts)


def parse_schedule(parser: Parser | AttrParser) -> Schedule:
    """Comma-separated directives (the text between `#ix.schedule<` and `>`), possibly none."""
    fields: dict[str, object] = {}
    splits: list[tuple[str, int]] = []
    stages: list[tuple[int, str | None]] = []

    def names() -> list[str]:
        return parser.parse_comma_separated_list(parser.Delimiter.PAREN, parser.parse_identifier)

    def directive(word: str) -> None:
        if word in fields and word not in ("split", "stage"):
            parser.raise_error(f"directive '{word}' given twice")
        if word == "inline":
            fields[word] = True
        elif word == "split":
            parser.parse_punctuation("(")
            name = parser.parse_identifier()
            parser.parse_punctuation(",")
            factor = parser.parse_integer(allow_negative=False, allow_boolean=False)
            parser.parse_punctuation(")")
            splits.append((name, factor))
            fields[word] = True
        elif word == "stage":
            parser.parse_punctuation("(")
            read = parser.parse_integer(allow_negative=False, allow_boolean=False)
            loop = parser.parse_identifier() if parser.parse_optional_punctuation(",") else None
            parser.parse_punctuation(")")
            stages.append((read, loop))
            fields[word] = True
        elif word in ("order", "unroll"):
            fields[word] = tuple(names())
        elif word == "vectorize":
            parser.parse_punctuation("(")
            fields[word] = parser.parse_identifier()
            if parser.parse_optional_punctuation(","):
                lanes = parser.parse_integer(allow_negative=False, allow_boolean=False)
                if lanes < 2 or lanes & (lanes - 1):
                    parser.raise_error(f"vectorize: {lanes} lanes (expected a power of two, at least 2)")
                fields["lanes"] = lanes
            parser.parse_punctuation(")")
        elif word in ("parallel", "at"):
            (name,) = names() or [""]
            fields[word] = name
        else:
            parser.raise_error(f"unknown schedule directive '{word}' (expected inline, at, split, order, parallel, "
                               "vectorize, unroll or stage)")

    word = parser.parse_optional_identifier()
    while word is not None:
        directive(word)
        word = parser.parse_identifier() if parser.parse_optional_punctuation(",") else None
    fields.pop("split", None)
    fields.pop("stage", None)
    return Schedule(splits=tuple(splits), stage=tuple(stages), **fields)  # pyright: ignore[reportArgumentType]


@irdl_attr_definition
class ScheduleAttr(Data[Schedule]):
    """`#ix.schedule<directives>`: an op's schedule."""

    name = "ix.schedule"

    @classmethod
    def parse_parameter(cls, parser: AttrParser) -> Schedule:
        with parser.in_angle_brackets():
            return parse_schedule(parser)

    def print_parameter(self, printer: Printer) -> None:
        printer.print_string(f"<{self.data}>")
