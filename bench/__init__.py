"""Benchmarks: `python -m bench.<name>`; results in bench/results/<name>.json.

`make bench` runs the speed benches (the Makefile's `BENCHES`); `ecg_ablation` and `mri_adapt` are
design studies on validation data, run by name. The modules whose names start with `_` are helpers
the benches share (`_cases`: each domain's training set-up, `_training`: training speed against the ceiling of
`machine`). `gpu` measures only where CUDA is, and says so in one line elsewhere.
"""
from __future__ import annotations

import time


def best_seconds(func, repeats: int, clock=time.process_time, warm_up: bool = False) -> float:
    """Best of `repeats` runs of `func()` on `clock`, after one untimed run if `warm_up`.

    Process CPU time (the default) is robust to other load on a shared machine; parallel work needs
    the wall clock (`time.perf_counter`), since CPU time adds up the threads.
    """
    if warm_up:
        func()
    best = float("inf")
    for _ in range(repeats):
        started = clock()
        func()
        best = min(best, clock() - started)
    return best


def cpu_seconds(func, repeats: int) -> float:
    """Best of `repeats` runs, in process CPU time."""
    return best_seconds(func, repeats)
