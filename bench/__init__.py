"""Benchmarks: `python -m bench.<name>`; results in bench/results/<name>.json.

`make bench` runs every bench/[a-z]*.py; the modules whose names start with `_` are helpers they
share (`_cases`: each domain's training set-up, `_training`: training speed against the ceiling of
`machine`). `gpu` measures only where CUDA is, and says so in one line elsewhere.
"""
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
