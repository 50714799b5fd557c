"""Print the coefficients of mlc's own f32 `erf` (`mlc/backends/cstyle/mathlib.py`).

    .venv/bin/python tools/fit_erf.py

erf on |x| is split in three pieces, each a polynomial whose f32 Horner evaluation stays small
next to the part computed exactly:

    [0, 0.75)     erf(x) = x + x R(x^2),                R(z) ~ erf(sqrt z) / sqrt z - 1
    [0.75, 1.5)   erf(x) = E + P(x - 1.125),            E = erf(1.125) rounded to f32,
                                                        P(t) ~ erf(1.125 + t) - E
    [1.5, 4)      erf(x) = 1 - exp(-x^2) Q(x - 2.75),   Q(u) ~ erfcx(2.75 + u) = exp(x^2) erfc(x)

and 1 from 4 on (1 - erf(4) = 1.5e-8 is below half an f32 ulp of 1). Each polynomial is the
least-squares fit at 800 Chebyshev nodes of its interval (near the minimax polynomial), relative
for Q (it multiplies a value that shrinks like exp(-x^2)); the reference values are SciPy's f64
`erf` and `erfcx`, far more accurate than f32 needs. P includes the rounding error of E in its
constant term, so E + P(0) is erf(1.125) to f64 accuracy.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf, erfcx

NODES = 800
PIECES = {  # name: (interval, degree)
    "R": ((0.0, 0.75), 5),
    "P": ((0.75, 1.5), 9),
    "Q": ((1.5, 4.0), 10),
}
P_CENTRE, Q_CENTRE = 1.125, 2.75


def chebyshev_nodes(lo: float, hi: float, n: int = NODES) -> np.ndarray:
    k = np.arange(n)
    return (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (k + 0.5) / n)


def fit(t: np.ndarray, y: np.ndarray, degree: int, relative: bool = False) -> np.ndarray:
    """Coefficients, constant first."""
    return np.polynomial.polynomial.polyfit(t, y, degree, w=1 / np.abs(y) if relative else None)


def coefficients() -> dict[str, np.ndarray]:
    (lo, hi), degree = PIECES["R"]
    z = chebyshev_nodes(lo * lo, hi * hi)
    r = fit(z, erf(np.sqrt(z)) / np.sqrt(z) - 1, degree)
    (lo, hi), degree = PIECES["P"]
    e = np.float64(np.float32(erf(P_CENTRE)))
    t = chebyshev_nodes(lo - P_CENTRE, hi - P_CENTRE)
    p = fit(t, erf(P_CENTRE + t) - e, degree)
    (lo, hi), degree = PIECES["Q"]
    u = chebyshev_nodes(lo - Q_CENTRE, hi - Q_CENTRE)
    q = fit(u, erfcx(Q_CENTRE + u), degree, relative=True)
    return {"E": np.array([e]), "R": r, "P": p, "Q": q}


def c_float(v: float) -> str:
    """An f32 literal that reads back as exactly the nearest float to `v`."""
    return f"{np.float32(v):.9e}f"


if __name__ == "__main__":
    for name, values in coefficients().items():
        print(f"{name} = ({', '.join(repr(c_float(v)) for v in values)})")
