"""Wall-clock helper shared by the experiments."""
from __future__ import annotations

import time

import numpy as np

__all__ = ["timed"]


def timed(fn, repeats: int = 1) -> tuple[float, float]:
    """``(float(fn()), best wall-clock seconds over repeats)``; ``fn`` runs ``repeats``
    times (at least once)."""
    best, value = np.inf, None
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return float(value), float(best)
