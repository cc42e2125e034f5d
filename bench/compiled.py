"""Compiled against eager training, epochs alternated in one process: does `trainer.compile` pay for a domain?

`python -m bench.compiled [--domains ecg,speech] [--steps 30] [--pairs 6]` writes bench/results/compiled.json.
This machine's speed drifts by ±25 % over minutes. Two settings timed one after the other (as
`bench._training` times its candidates) can differ by that much with no change of code. Here each domain's
model is built twice, as its train stage builds it, and trained through the shared trainer's own
`Training.train_epoch` on the same `steps × batch` samples: once eagerly, once under `torch.compile` with
the trainer's inductor settings (`compilation`). After one untimed epoch each (it compiles), the two
alternate epoch by epoch, the first of each pair swapped every pair. Each pair gives a ratio of wall
seconds, under the same drift, and the figure is their median, with the smallest and largest.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from latente.shared.io import write_json
from latente.shared.report import markdown_table
from latente.shared.trainer import Training, compilation, seed_everything

from bench._cases import DOMAINS, real_case
from bench._training import training_samples

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
RESULTS = REPO / "bench" / "results" / "compiled.json"


def alternated(domain: str, steps: int, pairs: int, log=print) -> dict:
    """Median, smallest and largest ratio of eager to compiled epoch seconds over `pairs` alternated pairs."""
    case = real_case(domain, MIRROR)
    samples, weights = training_samples(case, case.trainer.batch_size, steps)
    with tempfile.TemporaryDirectory(prefix="latente-bench-compiled-") as tmp:
        runs = {}
        for compiled in (False, True):
            config = case.trainer.model_copy(update={"compile": compiled, "device": "cpu"})
            seed_everything(config.seed)
            model = case.new_model()
            training = Training(model, config, Path(tmp) / str(compiled), fingerprint={})
            training.resume()
            runs[compiled] = (training, torch.compile(model) if compiled else model, config)

        def epoch(compiled: bool, index: int) -> float:
            training, net, config = runs[compiled]
            with compilation(config):
                started = time.perf_counter()
                training.train_epoch(net, samples, index, config.lr, weights)
                return time.perf_counter() - started

        warm_up = {"eager": epoch(False, 0), "compiled": epoch(True, 0)}
        ratios = []
        for pair in range(pairs):
            order = (False, True) if pair % 2 == 0 else (True, False)
            seconds = {compiled: epoch(compiled, pair + 1) for compiled in order}
            ratios.append(seconds[False] / seconds[True])
            log(f"  {domain} pair {pair + 1}: eager {seconds[False]:.2f} s, compiled {seconds[True]:.2f} s, ×{ratios[-1]:.3f}")
    return {"steps": steps, "batch_size": case.trainer.batch_size, "threads": torch.get_num_threads(), "warm_up_seconds": warm_up,
            "speedup_median": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios), "speedups": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--steps", type=int, default=30, help="training steps per epoch")
    parser.add_argument("--pairs", type=int, default=6, help="alternated pairs of timed epochs")
    args = parser.parse_args()
    results = {domain: alternated(domain, args.steps, args.pairs) for domain in args.domains.split(",")}
    write_json(RESULTS, results)
    print(markdown_table(["domain", "compiled ÷ eager samples/s (median)", "smallest", "largest", "pairs"],
                         [[d, f"{r['speedup_median']:.3f}", f"{r['speedup_min']:.3f}", f"{r['speedup_max']:.3f}", len(r["speedups"])]
                          for d, r in results.items()]))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
