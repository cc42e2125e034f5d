"""Protein benchmark on the real BLAT_ECOLX alignment, one thread, baselines measured in the same run.

- sequence weights: blocked bfloat16 one-hot products vs the straightforward row-by-row NumPy loop
  (identical weights required);
- training steps per second of the default FamilyVAE vs the shared dense_vae of the same sizes
  (dense first layer, plain output layer), and the projected time of the default procedure (every member);
- scoring 5000 single mutants with the configured number of ELBO samples, against the
  site-independent baseline's effects of the same mutants (its profile fitted beforehand, timed apart);
- the train stage's training speed on the real alignment: params.yaml's setting beside the
  candidate speed-ups, with counted FLOPs and their fraction of the machine's matmul peak measured
  at the start of the same run (wall clock; bench/_training.py says how).
The other times are process CPU seconds (robust to other load on a shared machine; one thread, so
they approximate the wall time on an idle core).
`python -m bench.protein [--steps N] [--mutants M] [--train-steps N] [--train-pairs P]`
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from latente.domains.protein.baselines import profile, site_independent_effects
from latente.domains.protein.data import encode, read_alignment, sequence_weights, sequence_weights_loop
from latente.domains.protein.model import FamilyVAE, model_config, sequence_draws
from latente.domains.protein.params import EvaluateParams, PrepareParams, TrainParams
from latente.domains.protein.sources import ALIGNMENT
from latente.domains.protein.training import OneHotSequences
from latente.shared.io import write_json
from latente.shared.models import build_model
from latente.shared.params import TrainerConfig, stage_params
from latente.shared.report import markdown_table
from latente.shared.trainer import adamw
from bench._cases import real_case
from bench._training import add_arguments, measure, table
from bench.machine import ceiling

RESULTS = Path("bench/results/protein.json")


def cpu_seconds_and_value(func) -> tuple[float, object]:
    """One run of `func()`: its process CPU seconds and its value (bench.cpu_seconds keeps only the best time)."""
    started = time.process_time()
    value = func()
    return time.process_time() - started, value


def steps_per_second(model: torch.nn.Module, batch: torch.Tensor, steps: int, trainer: TrainerConfig) -> float:
    """Optimizer steps per CPU second, as the shared trainer takes them (its AdamW, no clipping)."""
    model.train()
    optimizer = adamw(model.parameters(), trainer)

    def step() -> None:
        out = model(batch)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    step()
    seconds, _ = cpu_seconds_and_value(lambda: [step() for _ in range(steps)])
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per model")
    parser.add_argument("--mutants", type=int, default=5000, help="single mutants to score")
    add_arguments(parser)
    args = parser.parse_args()
    machine = ceiling()
    torch.set_num_threads(1)
    mirror = Path(os.environ.get("LATENTE_MIRROR", "../shared/datasets")) / "protein"
    prepare = stage_params("protein", "prepare", PrepareParams)
    train = stage_params("protein", "train", TrainParams)
    evaluate = stage_params("protein", "evaluate", EvaluateParams)
    alignment = read_alignment(mirror / ALIGNMENT)
    codes = alignment.codes

    blocked_s, fast = cpu_seconds_and_value(lambda: sequence_weights(codes, prepare.theta))
    loop_s, slow = cpu_seconds_and_value(lambda: sequence_weights_loop(codes, prepare.theta))
    if not np.array_equal(fast, slow):
        raise SystemExit("blocked and loop weights differ")

    length = codes.shape[1]
    config = model_config(train.model, length)
    batch_size = train.trainer.batch_size
    rows = np.random.default_rng(0).choice(len(codes), batch_size, p=fast / fast.sum())
    batch = torch.stack([OneHotSequences(codes)[int(i)] for i in rows])
    torch.manual_seed(0)
    family = FamilyVAE(config, train.decoder, neff=float(fast.sum()))
    family_sps = steps_per_second(family, batch, args.steps, train.trainer)
    plain_sps = steps_per_second(build_model(config), batch, args.steps, train.trainer)
    steps_per_epoch = int(np.ceil(len(codes) * (1 - train.val_fraction) / batch_size))
    projected = train.members * train.trainer.epochs * steps_per_epoch / family_sps  # the whole procedure

    rng = np.random.default_rng(1)
    wild_type = encode(alignment.focus.sequence)
    mutants = np.repeat(wild_type[None], args.mutants, axis=0)
    mutants[np.arange(args.mutants), rng.integers(0, length, args.mutants)] = rng.integers(0, 20, args.mutants)
    scorer = family.plain()
    sequences = np.concatenate([wild_type[None], mutants])
    score_s, _ = cpu_seconds_and_value(lambda: sequence_draws(scorer, sequences, evaluate.samples))
    profile_s, log_profile = cpu_seconds_and_value(lambda: profile(codes, fast, evaluate.pseudocount))
    baseline_s = min(cpu_seconds_and_value(lambda: site_independent_effects(log_profile, wild_type, mutants))[0] for _ in range(5))
    training = measure(real_case("protein", mirror.parent), machine, args).result()

    rows = [
        ["sequence weights (8355 × 253)", f"{blocked_s:.2f} s", f"{loop_s:.2f} s (NumPy row loop)", f"{loop_s / blocked_s:.1f}×"],
        [f"training steps/s (batch {batch_size})", f"{family_sps:.2f}", f"{plain_sps:.2f} (shared dense_vae)", f"{family_sps / plain_sps:.2f}×"],
        [f"default procedure ({train.members} members × {train.trainer.epochs} epochs × {steps_per_epoch} steps)",
         f"{projected / 60:.1f} min", "target ≤ 30 min", ""],
        [f"scoring {args.mutants} mutants × {evaluate.samples} samples", f"{score_s:.1f} s", "target ≤ 60 s", ""],
        ["mutants scored per CPU second", f"{args.mutants / score_s:.0f}", f"{args.mutants / baseline_s:.0f} (site-independent)",
         f"{baseline_s / score_s:.2g}×"],
    ]
    print(markdown_table(["measure (1 thread, CPU s)", "latente", "baseline", "ratio"], rows))
    print(table(training))
    write_json(RESULTS, {
        "domain": "protein", "threads": 1, "clock": "process CPU seconds",
        "weights": {"blocked_s": blocked_s, "loop_s": loop_s, "speedup": loop_s / blocked_s, "identical": True,
                    "neff": float(fast.sum())},
        "training": {"batch_size": batch_size, "steps_per_s": family_sps, "samples_per_s": family_sps * batch_size,
                     "shared_dense_vae_steps_per_s": plain_sps, "speedup": family_sps / plain_sps,
                     "steps_per_epoch": steps_per_epoch, "epochs": train.trainer.epochs, "projected_train_s": projected},
        "scoring": {"mutants": args.mutants, "samples": evaluate.samples, "seconds": score_s,
                    "mutants_per_second": args.mutants / score_s,
                    "site_independent": {"mutants_per_second": args.mutants / baseline_s, "seconds": baseline_s, "profile_seconds": profile_s},
                    "model_over_site_independent": baseline_s / score_s},
        "machine": machine, **training,
    })


if __name__ == "__main__":
    main()
