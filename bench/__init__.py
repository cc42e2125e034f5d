"""Benchmarks: `python -m bench.<domain>`; results in bench/results/<domain>.json."""
from __future__ import annotations

import time


def cpu_seconds(func, repeats: int) -> float:
    """Best of `repeats` runs, in process CPU time (robust to other load on a shared machine)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        func()
        best = min(best, time.process_time() - started)
    return best
