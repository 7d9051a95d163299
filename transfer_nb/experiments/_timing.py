"""Wall-clock helper shared by the experiments."""
from __future__ import annotations

import time

import numpy as np

__all__ = ["timed", "measured"]


def timed(fn, repeats: int = 1) -> tuple[float, float]:
    """``(float(fn()), best wall-clock seconds over repeats)``; ``fn`` runs ``repeats``
    times (at least once)."""
    best, value = np.inf, None
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return float(value), float(best)


def measured(fn, interval: float = 0.002) -> tuple[object, float, float]:
    """``(fn(), wall-clock seconds, peak extra memory in MiB)``.

    The memory is the process's resident set size, sampled every ``interval`` seconds by
    a thread while ``fn`` runs, minus its size at the start: what the call needed on top
    of what was already there (``fn`` should not rely on memory left by earlier calls).
    """
    import threading

    import psutil

    proc = psutil.Process()
    start = proc.memory_info().rss
    peak = [start]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            done.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    try:
        value = fn()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        thread.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return value, seconds, (peak[0] - start) / 2 ** 20
