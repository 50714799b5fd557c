"""Explanations: bytes and multiply-adds for people, and one line per stage saying what a schedule keeps and
what it recomputes, and why."""

from __future__ import annotations

from collections.abc import Sequence

from .least_memory import keep_all_peak
from .model import Chain
from .simulator import Machine, Op, OpKind


# ---------------------------------------------------------------------------------------------
# Explanations


def format_bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:g} B"


def format_macs(n: float) -> str:
    for unit, scale in (("Gmac", 1e9), ("Mmac", 1e6), ("kmac", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:g} mac"


def _value(j: int) -> str:
    return "the input a0" if j == 0 else f"a{j}"


def explain(chain: Chain, schedule: Sequence[Op], budget: float | None = None, *, reason: str | None = None) -> list[str]:
    """One line per stage saying what the schedule keeps and what it recomputes, and why.

    "kept (tape ...)": T_i recorded in the first forward and held until B_i (no recompute);
    "kept (checkpoint a_i ...)": a_i held as a restart point for later sweeps;
    "recomputed nx from a_j": the stage re-ran n times in sweeps that started at the stored a_j,
    and its tape was recorded only just before B_i. The reason compares the budget with the
    keep-all peak (what no recompute at all needs), unless the caller gives its own `reason`."""
    machine = Machine(chain).run(schedule)
    full = keep_all_peak(chain)
    if reason is not None:
        why = reason
    elif budget is None:
        why = f"by this schedule (peak {format_bytes(machine.peak)}, keep-all peak {format_bytes(full)})"
    elif budget < full:
        why = f"because budget {format_bytes(budget)} < keep-all peak {format_bytes(full)}"
    else:
        why = f"although budget {format_bytes(budget)} >= keep-all peak {format_bytes(full)}"
    lines = []
    for i in range(1, chain.length + 1):
        runs = machine.runs[i]
        parts = []
        if len(runs) == 1 and runs[0].kind is OpKind.FALL:
            parts.append(f"kept (tape T{i}, {format_bytes(chain.xbar[i-1])}, first forward to B{i})")
        if i in machine.pinned:
            parts.append(f"kept (checkpoint {_value(i)}, {format_bytes(chain.x[i])})")
        again = runs[1:]
        if again:
            origins = ", ".join(_value(o) for o in sorted({r.origin for r in again}))
            parts.append(f"recomputed {len(again)}x from {origins} (cost {format_macs(len(again) * chain.f[i - 1])}) "
                         f"{why}; tape {format_bytes(chain.xbar[i-1])} recorded just before B{i}")
        lines.append(f"{chain.stage_name(i)}: " + "; ".join(parts))
    return lines
