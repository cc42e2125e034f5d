"""The evaluation protocol, shared by the evaluate stage and `latente mri evaluate`.

Each clean test volume is rescaled to [0, 1] (min–max) and put in RAS orientation. For each
noise level one seeded noisy volume is drawn and every method gets exactly that input. The
methods denoise the central `slices` axial slices (all when 0): the 3-D Gaussian filter and
the 2.5-D model see the neighbouring slices, NLM and BM3D work slice by slice. PSNR/SSIM are
computed on those slices, over the whole slab and inside the mask `clean > mask_threshold`.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latente.shared.models import Autoencoder, load_model
from latente.shared.noise import corrupt
from latente.shared.params import PARAMS_FILE, stage_params
from latente.shared.results import Results
from latente.shared.report import load_references
from latente.shared.stage import DomainPaths

from latente.domains.mri import DOMAIN
from latente.domains.mri.baselines import GAUSSIAN_WIDTHS, best_gaussian, denoise_slices
from latente.domains.mri.data import TRAINING_ORIENTATION, read_volume, to_orientation, unit_scale
from latente.domains.mri.metrics import all_metrics
from latente.domains.mri.model import denoise_values, prepare_for_inference
from latente.domains.mri.params import EvaluateParams, TrainParams
from latente.domains.mri.report import write_report

METRICS = ("psnr", "ssim", "psnr_mask", "ssim_mask")


@dataclass
class Case:
    """One clean test volume on a [0, 1] scale in RAS, its mask and evaluated slices."""

    name: str
    clean: np.ndarray
    mask: np.ndarray
    zs: slice


@dataclass
class CaseOutputs:
    """What the report draws: the middle evaluated slice of every output, per noise level."""

    clean: np.ndarray
    mask: np.ndarray
    slices: dict[float, dict[str, np.ndarray]] = field(default_factory=dict)
    gaussian_width: dict[float, float] = field(default_factory=dict)


def central_slices(depth: int, count: int) -> slice:
    if count <= 0 or count >= depth:
        return slice(0, depth)
    start = (depth - count) // 2
    return slice(start, start + count)


def load_case(path: Path, slices: int, mask_threshold: float) -> Case:
    volume = read_volume(path)
    if volume.axcodes != TRAINING_ORIENTATION:
        print(f"note: {path} is {''.join(volume.axcodes)}; evaluated in RAS, the model's training orientation", file=sys.stderr)
    clean, _, _ = unit_scale(to_orientation(volume.data, volume.image.affine, TRAINING_ORIENTATION))
    mask = clean > mask_threshold
    return Case(path.name, clean, mask, central_slices(clean.shape[2], slices))


def noise_seed(seed: int, case_index: int, level_index: int) -> int:
    return int(np.random.SeedSequence([seed, case_index, level_index]).generate_state(1)[0])


def evaluate_cases(
    cases: list[Case],
    model: Autoencoder,
    levels: tuple[float, ...],
    kind: str,
    seed: int,
    methods: tuple[str, ...],
    results: Results,
) -> list[CaseOutputs]:
    """Add per-volume rows (condition volume + noise) and aggregate rows (noise only) to `results`."""
    every = ("model", *methods)
    per_level: dict[tuple[str, float], list[dict[str, float]]] = {}
    seconds: dict[str, float] = {m: 0.0 for m in every}
    slices_done = 0
    outputs = []
    for ci, case in enumerate(cases):
        ref, mask = case.clean[..., case.zs], case.mask[..., case.zs]
        middle = (case.zs.stop - case.zs.start) // 2
        out = CaseOutputs(ref[..., middle], mask[..., middle])
        for li, level in enumerate(levels):
            generator = torch.Generator().manual_seed(noise_seed(seed, ci, li))
            noisy = corrupt(torch.from_numpy(case.clean), kind, level, generator).numpy()
            out.slices[level] = {}
            for method in every:
                print(f"{case.name}: noise {level:g}: {method}", file=sys.stderr)
                started = time.perf_counter()
                if method == "model":
                    result = denoise_values(model, noisy, case.zs)
                elif method == "noisy":
                    result = noisy[..., case.zs]
                elif method == "gaussian":
                    result, out.gaussian_width[level] = best_gaussian(noisy, case.clean, case.mask, case.zs)
                else:
                    result = denoise_slices(method, noisy, level, case.zs)
                took = time.perf_counter() - started
                if method == "gaussian":  # the oracle tried every width: count one filtering
                    took /= len(GAUSSIAN_WIDTHS)
                seconds[method] += took
                metrics = {**all_metrics(result, ref, mask), "seconds": took}
                results.add(method, metrics, volume=case.name, noise=level)
                per_level.setdefault((method, level), []).append(metrics)
                out.slices[level][method] = result[..., middle]
        slices_done += (case.zs.stop - case.zs.start) * len(levels)
        outputs.append(out)
    for (method, level), rows in per_level.items():
        results.add(method, {k: float(np.mean([r[k] for r in rows])) for k in METRICS}, noise=level)
    for method in every:
        results.add(method, {"seconds": seconds[method] / max(slices_done, 1)})
    return outputs


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """Score the trained model and the baselines on the test volumes; write metrics.json and the report.

    The report describes the model from its saved config and training record, and from the
    `train` params that trained it (the trainer settings are not saved with the weights).
    """
    loaded = load_model(paths.model, domain=DOMAIN)
    model = prepare_for_inference(loaded.model)
    names = loaded.meta["data"]["test_volumes"]
    cases = [load_case(paths.raw / name, params.slices, params.mask_threshold) for name in names]
    results = Results(DOMAIN, f"{paths.raw} (test volumes; the model trained on {', '.join(loaded.meta['data']['train_volumes'])})", names)
    outputs = evaluate_cases(cases, model, params.noise, params.kind, params.seed, params.methods, results)
    started = time.perf_counter()
    denoise_values(model, cases[0].clean)  # whole test volume, every axial slice
    whole_volume = {"shape": list(cases[0].clean.shape), "seconds": time.perf_counter() - started}
    params_file = paths.root / PARAMS_FILE
    train = stage_params(DOMAIN, "train", TrainParams, params_file)
    write_report(paths, params, train, load_references(DOMAIN, params_file), results, cases, outputs, loaded, whole_volume)
    results.write(paths.metrics)
