"""The evaluation protocol, shared by the evaluate stage and `latente mri evaluate`.

Each reference test volume is rescaled to [0, 1] (min–max) and put in RAS orientation. For each
noise level one seeded noisy volume is drawn and every method gets exactly that input. The
methods denoise the central `slices` axial slices (all when 0): the 3-D Gaussian filter and
the 2.5-D model see the neighbouring slices, NLM and BM3D work slice by slice. PSNR/SSIM are
computed on those slices, over the whole slab and inside the mask `reference > mask_threshold`.

A real acquisition's reference is not clean: it holds the scanner's own noise, σ₀, estimated
per volume (`intrinsic_noise`). The noise-blind model removes all the noise it sees, σ₀ ⊕ the
added σ; NLM and BM3D remove what they are told. They are told the total σ = √(σ₀² + σ²) (the
headline rows, the same task as the model's) and, in rows with the condition `sigma: added`,
only the added σ, which keeps σ₀ in their output as it is in the reference.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latente.shared.errors import UserError
from latente.shared.models import Autoencoder, load_model
from latente.shared.noise import corrupt
from latente.shared.params import PARAMS_FILE, stage_params
from latente.shared.results import Results
from latente.shared.report import load_references
from latente.shared.stage import DomainPaths

from latente.domains.mri import DOMAIN
from latente.domains.mri.baselines import GAUSSIAN_WIDTHS, SLICE_DENOISERS, best_gaussian, denoise_slices
from latente.domains.mri.data import TRAINING_ORIENTATION, intrinsic_noise, read_volume, to_orientation, unit_scale
from latente.domains.mri.metrics import all_metrics, psnr
from latente.domains.mri.model import denoise_values, prepare_for_inference, slice_code
from latente.domains.mri.params import AdaptParams, EvaluateParams, PatchExplorer, TrainParams
from latente.domains.mri.report import write_report
from latente.domains.mri.training import adapt

METRICS = ("psnr", "ssim", "psnr_mask", "ssim_mask")


@dataclass
class Case:
    """One reference test volume on a [0, 1] scale in RAS, its mask, evaluated slices and own noise σ₀."""

    name: str
    clean: np.ndarray
    mask: np.ndarray
    zs: slice
    intrinsic: float


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
    try:
        intrinsic = intrinsic_noise(clean, mask)
    except ValueError as err:
        raise UserError(path, f"{err} (mask: voxels above {mask_threshold} on the [0, 1] scale)") from None
    return Case(path.name, clean, mask, central_slices(clean.shape[2], slices), intrinsic)


def told_sigma(case: Case, level: float, sigma: str) -> float:
    """The σ a classical denoiser is told: the added noise, or the total (the volume's own ⊕ the added)."""
    return level if sigma == "added" else math.hypot(case.intrinsic, level)


def noise_seed(seed: int, case_index: int, level_index: int) -> int:
    return int(np.random.SeedSequence([seed, case_index, level_index]).generate_state(1)[0])


def noisy_volume(case: Case, kind: str, level: float, seed: int, case_index: int, level_index: int) -> np.ndarray:
    """The one seeded noisy copy of a case at a level that every method (and the explorer) gets."""
    generator = torch.Generator().manual_seed(noise_seed(seed, case_index, level_index))
    return corrupt(torch.from_numpy(case.clean), kind, level, generator).numpy()


def evaluate_cases(
    cases: list[Case],
    model: Autoencoder,
    levels: tuple[float, ...],
    kind: str,
    seed: int,
    methods: tuple[str, ...],
    results: Results,
    sigmas: tuple[str, ...] = ("total",),
    adapt_params: AdaptParams | None = None,
    adapt_volumes: tuple[str, ...] = (),
) -> list[CaseOutputs]:
    """Add per-volume rows (condition volume + noise) and aggregate rows (noise only) to `results`.

    NLM and BM3D are told `sigmas[0]` in the headline rows and each other σ in rows that add
    `sigma` to the condition. The volumes named in `adapt_volumes` are also denoised by the model
    after `training.adapt`'s fine-tune on each noisy volume itself (method `model_adapted`; its seconds
    include the fine-tune). Aggregate rows average the methods that every volume has.
    """
    every = ("model", *(("model_adapted",) if adapt_volumes else ()), *methods)
    per_level: dict[tuple[str, float], list[dict[str, float]]] = {}
    seconds: dict[str, list[float]] = {m: [] for m in every}
    outputs = []
    for ci, case in enumerate(cases):
        ref, mask = case.clean[..., case.zs], case.mask[..., case.zs]
        middle = middle_slice(case) - case.zs.start
        out = CaseOutputs(ref[..., middle], mask[..., middle])
        slices = case.zs.stop - case.zs.start
        results.add("reference", {"intrinsic_sigma": case.intrinsic}, volume=case.name)
        for li, level in enumerate(levels):
            noisy = noisy_volume(case, kind, level, seed, ci, li)
            out.slices[level] = {}
            runs = [(m, None) for m in every if m != "model_adapted" or case.name in adapt_volumes]
            runs += [(m, sigma) for m in methods if m in SLICE_DENOISERS for sigma in sigmas[1:]]
            for method, sigma in runs:
                print(f"{case.name}: noise {level:g}: {method}{f' (told the {sigma} σ)' if sigma else ''}", file=sys.stderr)
                started = time.perf_counter()
                if method == "model":
                    result = denoise_values(model, noisy, case.zs)
                elif method == "model_adapted":
                    assert adapt_params is not None
                    tuned, record = adapt(model, unit_scale(noisy)[0], adapt_params)
                    result = denoise_values(tuned, noisy, case.zs)
                elif method == "noisy":
                    result = noisy[..., case.zs]
                elif method == "gaussian":
                    result, out.gaussian_width[level] = best_gaussian(noisy, case.clean, case.mask, case.zs)
                else:
                    result = denoise_slices(method, noisy, told_sigma(case, level, sigma or sigmas[0]), case.zs)
                took = time.perf_counter() - started
                if method == "gaussian":  # the oracle tried every width: count one filtering
                    took /= len(GAUSSIAN_WIDTHS)
                metrics = {**all_metrics(result, ref, mask), "seconds": took}
                if method == "model_adapted":  # what the fine-tune estimated and kept
                    metrics |= {"adapt_sigma": record["sigma"], "adapt_kept_step": record["kept_step"]}
                if sigma is not None:
                    results.add(method, metrics, volume=case.name, noise=level, sigma=sigma)
                    continue
                seconds[method].append(took / slices)
                results.add(method, metrics, volume=case.name, noise=level)
                per_level.setdefault((method, level), []).append(metrics)
                out.slices[level][method] = result[..., middle]
        outputs.append(out)
    for (method, level), rows in per_level.items():
        if len(rows) == len(cases):
            results.add(method, {k: float(np.mean([r[k] for r in rows])) for k in METRICS}, noise=level)
    for method in every:
        results.add(method, {"seconds": float(np.mean(seconds[method]))})
    return outputs


@dataclass
class PatchCodes:
    """The explorer's points: a row per patch and noise level (clean first), its code, and its clean, noisy and
    denoised voxels [3, size, size] on the reference's [0, 1] scale."""

    rows: list[dict]
    codes: np.ndarray  # [rows, latent channels]
    images: list[np.ndarray]


def middle_slice(case: Case) -> int:
    """The middle evaluated axial slice: the report's panels and the explorer's patches."""
    return case.zs.start + (case.zs.stop - case.zs.start) // 2


def patch_codes(model: Autoencoder, cases: list[Case], levels: tuple[float, ...], kind: str, seed: int,
                explorer: PatchExplorer) -> PatchCodes:
    """The code of every explorer patch, clean and at every level: the model's code map of the slice (the noisy
    volume min–max scaled, as `denoise_values` feeds it) averaged over the latent cells that cover the patch."""
    size, step = explorer.size, model.config.downsampling
    rows, codes, images = [], [], []
    for ci, case in enumerate(cases):
        z = middle_slice(case)
        mask, clean = case.mask[..., z], case.clean[..., z]
        corners = [(x, y) for x in range(0, mask.shape[0] - size + 1, explorer.stride)
                   for y in range(0, mask.shape[1] - size + 1, explorer.stride) if mask[x : x + size, y : y + size].mean() >= explorer.head]
        for li, level in enumerate((0.0, *levels)):
            noisy = case.clean if level == 0 else noisy_volume(case, kind, level, seed, ci, li - 1)
            code_map = slice_code(model, unit_scale(noisy)[0], z)
            denoised = denoise_values(model, noisy, slice(z, z + 1))[..., 0]
            noisy_slice, noise = noisy[..., z], "clean" if level == 0 else f"{100 * level:g} %"
            for x, y in corners:
                box = (slice(x, x + size), slice(y, y + size))
                cells = (slice(None), slice(x // step, -(-(x + size) // step)), slice(y // step, -(-(y + size) // step)))
                codes.append(code_map[cells].mean((1, 2)))
                images.append(np.stack([clean[box], noisy_slice[box], denoised[box]]))
                rows.append({"patch": f"{case.name.split('.')[0]} ({x}, {y}) {noise}", "volume": case.name, "slice": z, "x": x, "y": y,
                             "noise": noise, "sigma": level, "intensity": round(float(clean[box].mean()), 5),
                             "psnr_noisy": round(psnr(noisy_slice[box], clean[box]), 3) if level else None,
                             "psnr_model": round(psnr(denoised[box], clean[box]), 3)})
    return PatchCodes(rows, np.stack(codes), images)


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """Score the trained model and the baselines on the test volumes; write metrics.json and the report.

    The report describes the model from its saved config and training record, and from the
    `train` params that trained it (the trainer settings are not saved with the weights).
    """
    loaded = load_model(paths.model, domain=DOMAIN)
    model = prepare_for_inference(loaded.model)
    data = loaded.meta["data"]
    names = data["test_volumes"]
    trained_on = sorted(set(params.adapt_volumes) & set(data["train_volumes"]))
    if trained_on or not set(params.adapt_volumes) <= set(names):
        raise UserError(f"{PARAMS_FILE}: {DOMAIN}.evaluate.adapt_volumes", f"{list(params.adapt_volumes)} must name test volumes only",
                        f"the model tested on {names}")
    cases = [load_case(paths.raw / name, params.slices, params.mask_threshold) for name in names]
    results = Results(DOMAIN, f"{paths.raw} (test volumes; the model trained on {', '.join(data['train_volumes'])})", names)
    outputs = evaluate_cases(cases, model, params.noise, params.kind, params.seed, params.methods, results,
                             params.baseline_sigma, params.adapt, params.adapt_volumes)
    patches = patch_codes(model, cases, params.noise, params.kind, params.seed, params.explorer) if params.explorer else None
    whole_volume = time_whole_volume(model, cases[0].clean, params.adapt)
    params_file = paths.root / PARAMS_FILE
    train = stage_params(DOMAIN, "train", TrainParams, params_file)
    write_report(paths, params, train, load_references(DOMAIN, params_file), results, cases, outputs, loaded, whole_volume, patches)
    results.write(paths.metrics)


def time_whole_volume(model: Autoencoder, volume: np.ndarray, adapt_params: AdaptParams) -> dict:
    """Seconds to denoise every axial slice of a whole volume, as it is and after the default fine-tune on it."""
    started = time.perf_counter()
    denoise_values(model, volume)
    plain = time.perf_counter() - started
    started = time.perf_counter()
    tuned, _ = adapt(model, volume, adapt_params)
    denoise_values(tuned, volume)
    return {"shape": list(volume.shape), "seconds": plain, "seconds_adapted": time.perf_counter() - started}
