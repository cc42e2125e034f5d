"""MRI ablation of `--adapt`: which self-supervised fine-tune, how many steps, what learning rate.

`python -m bench.mri_adapt [--model models/mri] [--variants none,recorrupted:300:1e-4,...] [--volume X.nii.gz ...]`

The choice is made on validation data, never on a test volume: the training volume's own
validation slices (the blocks that `prepare@mri` holds out of training, from params.yaml's
split), given a noise floor of `--floor` (a single acquisition's own noise; the reference keeps
it, as a real scan's does), then seeded Rician noise at each `--noise` level. `--volume` adds
any other reference volume (its central `--slices` slices). Every variant starts from the same
trained model and fine-tunes on the noisy volume itself; BM3D, told the total σ, is the bar.
A variant is `none` or `method:steps:lr` (method `recorrupted` or `blind_spot`). In-mask PSNR
(dB) is written to bench/results/mri_adapt.json with the seconds each fine-tune took.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from latente.domains.mri import DOMAIN
from latente.domains.mri.baselines import denoise_slices
from latente.domains.mri.data import TRAINING_ORIENTATION, read_volume, split_slices, to_orientation, unit_scale
from latente.domains.mri.evaluation import central_slices
from latente.domains.mri.metrics import psnr
from latente.domains.mri.model import denoise_values, prepare_for_inference
from latente.domains.mri.params import AdaptParams, PrepareParams
from latente.domains.mri.training import adapt
from latente.shared.io import write_json
from latente.shared.models import load_model
from latente.shared.noise import corrupt
from latente.shared.params import stage_params
from latente.shared.report import markdown_table

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
RESULTS = REPO / "bench" / "results" / "mri_adapt.json"


def ras_unit(path: Path) -> np.ndarray:
    volume = read_volume(path)
    return unit_scale(to_orientation(volume.data, volume.image.affine, TRAINING_ORIENTATION))[0]


def validation_case(floor: float) -> tuple[str, np.ndarray, np.ndarray, slice, float]:
    """The first training volume's longest run of validation slices, with a seeded noise floor."""
    prepare = stage_params(DOMAIN, "prepare", PrepareParams, REPO / "params.yaml")
    head = ras_unit(MIRROR / DOMAIN / prepare.train_volumes[0])
    brain = ras_unit(MIRROR / DOMAIN / prepare.train_masks[0]) > 0
    _, val = split_slices(np.moveaxis(brain, -1, 0), prepare.min_brain_fraction, prepare.val_fraction)
    runs = np.split(np.array(val), np.flatnonzero(np.diff(val) > 1) + 1)
    longest = max(runs, key=len)
    floored = (head + np.random.default_rng(7).normal(0.0, floor, head.shape)).astype(np.float32)
    return f"{prepare.train_volumes[0]} validation slices {longest[0]}–{longest[-1]}", floored, brain, \
        slice(int(longest[0]), int(longest[-1]) + 1), floor


def variant_params(text: str) -> AdaptParams:
    method, steps, lr = text.split(":")
    return AdaptParams(method=method, steps=int(steps), lr=float(lr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / DOMAIN)
    parser.add_argument("--variants", default="none,recorrupted:300:3e-4,recorrupted:300:1e-4,blind_spot:300:3e-4")
    parser.add_argument("--noise", default="0.03,0.07")
    parser.add_argument("--floor", type=float, default=0.005)
    parser.add_argument("--volume", type=Path, action="append", default=[])
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = prepare_for_inference(load_model(args.model, domain=DOMAIN).model)
    variants = args.variants.split(",")
    cases = [validation_case(args.floor)]
    for path in args.volume:
        volume = ras_unit(path)
        cases.append((path.name, volume, volume > 0.05, central_slices(volume.shape[2], args.slices), 0.0))
    rows = []
    for name, reference, mask, zs, floor in cases:
        for index, level in enumerate(float(x) for x in args.noise.split(",")):
            noisy = corrupt(torch.from_numpy(reference), "rician", level, torch.Generator().manual_seed(100 + index)).numpy()
            ref, inside = reference[..., zs], mask[..., zs]
            row = {"volume": name, "noise": level,
                   "bm3d_total": psnr(denoise_slices("bm3d", noisy, math.hypot(level, floor), zs), ref, inside)}
            for variant in variants:
                print(f"{name}: noise {level:g}: {variant}", file=sys.stderr)
                started = time.perf_counter()
                denoiser = model if variant == "none" else adapt(model, unit_scale(noisy)[0], variant_params(variant))[0]
                row[variant] = psnr(denoise_values(denoiser, noisy, zs), ref, inside)
                row[f"{variant} seconds"] = time.perf_counter() - started
            rows.append(row)
    write_json(RESULTS, {"model": str(args.model), "floor": args.floor, "threads": args.threads, "rows": rows})
    print(markdown_table(["volume", "σ", "BM3D (total σ)", *variants],
                         [[r["volume"], r["noise"], r["bm3d_total"], *[r[v] for v in variants]] for r in rows], digits=2))


if __name__ == "__main__":
    main()
