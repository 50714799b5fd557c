"""Byte sizes as people write them: `40000`, `"64KB"`, `"1.5MiB"` (checkpoint budgets, the cache cap)."""

from __future__ import annotations

import math
import re

SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
"""KB/MB/GB are steps of 10^3, KiB/MiB/GiB of 2^10 (case does not matter)."""


def parse_size(text: str) -> int | None:
    """The bytes `text` names, or None if it is not a size."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]*)", text.strip())
    if m is None or m.group(2).upper() not in SIZE_UNITS:
        return None
    return math.floor(float(m.group(1)) * SIZE_UNITS[m.group(2).upper()])
