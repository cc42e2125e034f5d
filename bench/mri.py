"""MRI benchmark: whole-volume denoising time of the model against NLM and BM3D, and training speed against the ceiling.

`python -m bench.mri [--model models/mri] [--bm3d-slices 10] [--repeats 2] [--train-steps N] [--train-pairs P]`.
The volume is the real 181×217×181 Colin27 T1 with 5 % Rician noise. Uses the trained model in
`--model` if present, else an untrained one of params.yaml's size (the time does not depend on
the weights). Times are CPU seconds (process time, robust to other jobs on the shared machine)
and wall seconds:

- model: every axial slice, once with 1 thread and once with 2 threads (the issue's target: ≤ 10 s
  wall on this 2-core CPU, met by the faster of the two);
- NLM (skimage, 2-D, true σ): every axial slice, 1 thread;
- BM3D (`bm3d`, 2-D, true σ): `--bm3d-slices` central slices (it takes seconds a slice), scaled to
  the whole volume; `--bm3d-slices 0` times every slice.

Ratios are CPU seconds of the baseline / CPU seconds of the model on the whole volume; `inference`
gives the same as volumes per CPU second (1 thread), model against NLM.

Training: the train stage's denoiser on its real patches, params.yaml's setting beside the
candidate speed-ups, with counted FLOPs and their fraction of the machine's matmul peak measured
at the start of the same run (bench/_training.py says how).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

from latente.domains.mri import DOMAIN
from latente.domains.mri.baselines import denoise_slices
from latente.domains.mri.data import read_volume, unit_scale
from latente.domains.mri.evaluation import central_slices
from latente.domains.mri.model import denoise_values, prepare_for_inference
from latente.shared.io import write_json
from latente.shared.models import load_model
from latente.shared.noise import corrupt
from latente.shared.report import markdown_table
from bench._cases import mri_model, real_case, train_params
from bench._training import add_arguments, measure, table
from bench.machine import ceiling

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
VOLUME = MIRROR / "mri" / "colin27_ch2_t1.nii.gz"
RESULTS = REPO / "bench" / "results" / "mri.json"
SIGMA = 0.05


def timed(func, repeats: int, threads: int) -> tuple[float, float]:
    """Best (CPU seconds, wall seconds) over `repeats` runs with `threads` torch threads."""
    torch.set_num_threads(threads)
    cpu, wall = float("inf"), float("inf")
    for _ in range(repeats):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        func()
        cpu = min(cpu, time.process_time() - started_cpu)
        wall = min(wall, time.perf_counter() - started_wall)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / DOMAIN)
    parser.add_argument("--bm3d-slices", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    add_arguments(parser)
    args = parser.parse_args()
    machine = ceiling()

    if (args.model / "config.json").is_file():
        model, origin = prepare_for_inference(load_model(args.model, domain=DOMAIN).model), str(args.model)
    else:
        model, origin = prepare_for_inference(mri_model(train_params(DOMAIN))()), "untrained (params.yaml size)"
    clean, _, _ = unit_scale(read_volume(VOLUME).data)
    noisy = corrupt(torch.from_numpy(clean), "rician", SIGMA, torch.Generator().manual_seed(0)).numpy()
    depth = noisy.shape[2]
    print(f"volume {VOLUME.name} {noisy.shape}, Rician σ = {SIGMA}; model: {origin}", file=sys.stderr)

    whole = lambda: denoise_values(model, noisy)  # noqa: E731
    model_cpu1, model_wall1 = timed(whole, args.repeats, threads=1)
    model_cpu2, model_wall2 = timed(whole, args.repeats, threads=2)
    nlm_cpu, nlm_wall = timed(lambda: denoise_slices("nlm", noisy, SIGMA, slice(0, depth)), 1, threads=1)
    bm3d_zs = central_slices(depth, args.bm3d_slices)
    bm3d_count = bm3d_zs.stop - bm3d_zs.start
    bm3d_cpu, bm3d_wall = timed(lambda: denoise_slices("bm3d", noisy, SIGMA, bm3d_zs), 1, threads=1)
    scale = depth / bm3d_count
    training = measure(real_case(DOMAIN, MIRROR), machine, args).result()
    result = {
        "volume": VOLUME.name, "shape": list(noisy.shape), "noise": SIGMA, "cpu": os.cpu_count(), "model_folder": origin,
        "model": {"cpu_seconds_1_thread": model_cpu1, "wall_seconds_1_thread": model_wall1,
                  "cpu_seconds_2_threads": model_cpu2, "wall_seconds_2_threads": model_wall2,
                  "target_wall_seconds": 10.0, "meets_target": min(model_wall1, model_wall2) <= 10.0},
        "nlm": {"cpu_seconds": nlm_cpu, "wall_seconds": nlm_wall},
        "bm3d": {"cpu_seconds": bm3d_cpu * scale, "wall_seconds": bm3d_wall * scale, "slices_timed": bm3d_count,
                 "scaled_to_volume": bm3d_count != depth},
        "nlm_over_model": nlm_cpu / model_cpu1,
        "bm3d_over_model": bm3d_cpu * scale / model_cpu1,
        "inference": {"model_volumes_per_second": 1 / model_cpu1, "nlm_volumes_per_second": 1 / nlm_cpu,
                      "model_over_nlm": nlm_cpu / model_cpu1, "threads": 1, "clock": "process CPU seconds, whole volume"},
        "load_average": os.getloadavg(),
        "machine": machine, **training,
    }
    write_json(RESULTS, result)
    rows = [
        ["model, 1 thread", model_cpu1, model_wall1, 1.0],
        ["model, 2 threads", model_cpu2, model_wall2, None],
        ["NLM 2-D", nlm_cpu, nlm_wall, result["nlm_over_model"]],
        [f"BM3D 2-D ({bm3d_count} slices × {scale:.1f})" if bm3d_count != depth else "BM3D 2-D", bm3d_cpu * scale, bm3d_wall * scale, result["bm3d_over_model"]],
    ]
    print(markdown_table(["whole volume " + "×".join(map(str, noisy.shape)), "CPU s", "wall s", "CPU time / model's"], rows, digits=2))
    print(table(training))
    print(f"load average {result['load_average'][0]:.1f} on {os.cpu_count()} cores; wrote {RESULTS}")


if __name__ == "__main__":
    main()
