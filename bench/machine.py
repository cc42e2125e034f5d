"""The machine's ceiling: fp32 matmul GFLOP/s and memory-copy GB/s, measured now.

`python -m bench.machine [--repeats R]` writes bench/results/machine.json. Every domain bench
calls `ceiling()` at its own start, so the fraction of the ceiling it reports is a ratio of two
figures from the same run, under the same load.

- matmul: a 2048 × 2048 fp32 product (2·2048³ FLOP), best of R, with all cores (torch's default
  thread count, read when this module is imported, before any bench changes it) and with 1 thread;
  the peak is the higher of the two (all cores on an idle machine; one thread can win while another
  job holds a core);
- copy: a 256 MiB fp32 tensor copied into another, best of R, all cores; bytes read + written.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from bench import best_seconds
from latente.shared.io import write_json
from latente.shared.report import markdown_table

RESULTS = Path(__file__).resolve().parent / "results" / "machine.json"
ALL_CORES = torch.get_num_threads()
MATMUL_SIZE = 2048
COPY_BYTES = 256 * 2**20


def best_wall_seconds(func, repeats: int) -> float:
    """Best wall-clock run after a warm-up: matmul and copy use every thread."""
    return best_seconds(func, repeats, clock=time.perf_counter, warm_up=True)


def with_threads(threads: int, func):
    """Run `func()` with `threads` torch threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return func()
    finally:
        torch.set_num_threads(before)


def matmul_gflops(threads: int, repeats: int = 5, size: int = MATMUL_SIZE) -> float:
    """fp32 GFLOP/s of one size × size product with `threads` threads."""
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
    out = torch.empty(size, size)
    seconds = with_threads(threads, lambda: best_wall_seconds(lambda: torch.mm(a, b, out=out), repeats))
    return 2 * size**3 / seconds / 1e9


def copy_gbps(threads: int, repeats: int = 5, nbytes: int = COPY_BYTES) -> float:
    """GB/s of copying one large fp32 tensor into another (bytes read + bytes written)."""
    source = torch.ones(nbytes // 4)
    target = torch.empty_like(source)
    seconds = with_threads(threads, lambda: best_wall_seconds(lambda: target.copy_(source), repeats))
    return 2 * nbytes / seconds / 1e9


def ceiling(repeats: int = 5) -> dict:
    """The ceiling that the benches' fractions divide by: `peak_gflops`, the best matmul figure."""
    per_thread_count = {threads: matmul_gflops(threads, repeats) for threads in sorted({1, ALL_CORES})}
    return {
        "peak_gflops": max(per_thread_count.values()),
        "matmul": f"fp32 {MATMUL_SIZE}×{MATMUL_SIZE} torch.mm, best of {repeats}",
        "matmul_gflops_by_threads": {str(t): g for t, g in per_thread_count.items()},
        "all_cores_threads": ALL_CORES,
        "copy_gbps": copy_gbps(ALL_CORES, repeats),
        "copy": f"{COPY_BYTES // 2**20} MiB fp32 tensor copy, read + write bytes, {ALL_CORES} threads, best of {repeats}",
        "load_average_1min": os.getloadavg()[0],
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }


def fraction(gflops: float, machine: dict, threads: int | None = None) -> float:
    """`gflops` over the all-core matmul peak, or over the peak at `threads` threads when it was measured."""
    by_threads = machine["matmul_gflops_by_threads"]
    return gflops / (by_threads[str(threads)] if threads is not None else machine["peak_gflops"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = ceiling(args.repeats)
    write_json(RESULTS, result)
    rows = [[f"matmul, {t} thread{'s' if t != '1' else ''}", f"{g:.1f} GFLOP/s"] for t, g in result["matmul_gflops_by_threads"].items()]
    rows.append([f"copy, {ALL_CORES} threads", f"{result['copy_gbps']:.1f} GB/s"])
    print(markdown_table(["ceiling", "measured"], rows))
    print(f"load average {result['load_average_1min']:.1f} on {os.cpu_count()} cores; wrote {RESULTS}")


if __name__ == "__main__":
    main()
