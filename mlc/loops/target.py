"""What the machine mlc compiles for offers a schedule: the vector width and the core count.

The C backend compiles with `-march=native`, so the host is the target: its widest vector
extension gives the lane count of vectorised loops (the emitted C is correct on any machine; the
width only decides how fast it is), its cores the threads worth spreading a loop over.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class CpuTarget:
    vector_bytes: int
    """64 with AVX-512, 32 with AVX2, 16 otherwise (SSE2, NEON)."""
    cores: int

    def lanes(self, element_bytes: int) -> int:
        """Elements of `element_bytes` in one vector register."""
        return max(1, self.vector_bytes // element_bytes)


@cache
def host() -> CpuTarget:
    """The machine this process runs on."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    vector_bytes = 64 if "avx512f" in flags else 32 if "avx2" in flags else 16
    return CpuTarget(vector_bytes=vector_bytes, cores=len(os.sched_getaffinity(0)))
