"""`latente mri denoise | evaluate`.

Only light modules are imported here, so that `latente --help` starts fast; each command
imports the heavy ones (torch, MONAI, nibabel) when it runs.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from latente.shared.cli import (
    float_option, force_option, input_file, int_option, json_option, model_folder, model_option, output_file, seed_option,
)
from latente.shared.errors import UserError

from latente.domains.mri import DOMAIN
from latente.domains.mri.params import BASELINE_SIGMAS, BASELINES, AdaptParams

if TYPE_CHECKING:
    from latente.shared.models import LoadedModel

DEFAULT_MODEL = Path("models") / DOMAIN
SLICES_MAX = 100_000  # far above any volume's axial extent; 0 means all
ADAPT_DEFAULTS = AdaptParams()

app = typer.Typer(no_args_is_help=True, help="MRI denoising with a noise-blind residual denoising autoencoder (NIfTI volumes).")


def _model(folder: Path) -> LoadedModel:
    from latente.domains.mri.model import prepare_for_inference
    from latente.shared.models import load_model

    loaded = load_model(folder, domain=DOMAIN)
    prepare_for_inference(loaded.model)
    return loaded


def _orientation(loaded: LoadedModel) -> tuple[str, ...]:
    return tuple(loaded.preprocessing["orientation"])


@app.command()
def denoise(
    input: Path = typer.Argument(..., help="noisy NIfTI volume (.nii / .nii.gz), 3-D or 4-D"),
    output: Path = typer.Argument(..., help="denoised volume to write (.nii / .nii.gz)"),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "trained MRI model folder"),
    adapt: bool = typer.Option(False, "--adapt", help="first fine-tune a copy of the model on this volume itself (recorrupted-to-"
                               "recorrupted, no clean reference needed): slower; pays at low noise, can cost at high noise"),
    adapt_steps: int = int_option(ADAPT_DEFAULTS.steps, "--adapt-steps", low=1, high=100_000,
                                  help="the fine-tune's budget in optimiser steps (--adapt)"),
    seed: int = seed_option("seed of the fine-tune's patches and recorruptions (--adapt)"),
    force: bool = force_option("OUTPUT"),
) -> None:
    """Denoise a volume; the output keeps the input's header, affine, orientation, dtype and intensity range."""
    import numpy as np

    from latente.domains.mri.data import from_orientation, is_nifti_name, read_volume, to_orientation, unit_scale, write_like
    from latente.domains.mri.model import denoise_values
    from latente.domains.mri.training import adapt as adapt_model

    # every check before the model is loaded and the volume denoised (minutes on a CPU)
    input_file(input, "INPUT", "NIfTI file")
    if not is_nifti_name(output):
        raise UserError(output, "output must end in .nii or .nii.gz")
    output_file(output, force, "OUTPUT")
    loaded = _model(model_folder(model, DEFAULT_MODEL, DOMAIN))
    volume = read_volume(input, allow_4d=True)
    codes = _orientation(loaded)
    if volume.axcodes != codes:
        print(f"note: {input} is {''.join(volume.axcodes)}-oriented; reoriented to {''.join(codes)} (the model's "
              f"training orientation) for denoising, written back in {''.join(volume.axcodes)}", file=sys.stderr)
    frames = volume.data[..., None] if volume.data.ndim == 3 else volume.data
    if frames.shape[3] > 1:
        print(f"note: {input} is 4-D; denoising each of its {frames.shape[3]} volumes", file=sys.stderr)
    out = np.empty_like(frames)
    for t in range(frames.shape[3]):
        ras = to_orientation(frames[..., t], volume.image.affine, codes)
        denoiser = loaded.model
        if adapt:
            settings = ADAPT_DEFAULTS.model_copy(update={"steps": adapt_steps, "seed": seed})
            try:
                denoiser, record = adapt_model(loaded.model, unit_scale(ras)[0], settings, progress=True)
            except ValueError as err:  # no head region big enough to estimate the noise from
                raise UserError(input, f"--adapt: cannot estimate the scan's noise ({err})", "denoise it without --adapt") from None
            kept = (f"kept step {record['kept_step']} of {record['steps']}" if record["kept_step"]
                    else "no step lowered it, so the trained model is kept")
            print(f"note: adapted to {input} in {record['seconds']:.0f} s (noise σ {record['sigma']:.3g} of the range); estimated "
                  f"error {record['error_start']:.3g} → {record['error_kept']:.3g}, {kept}", file=sys.stderr)
        out[..., t] = from_orientation(denoise_values(denoiser, ras, progress=True), volume.image.affine, codes)
    write_like(volume, out.reshape(volume.data.shape), output, force=force)
    print(f"{output}: denoised {input}", file=sys.stderr)


def _levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError("--noise", f"{text!r} is not a comma-separated list of numbers", "e.g. --noise 0.03,0.05,0.07,0.09") from None
    if not levels or not all(0 < level < 1 for level in levels):
        raise UserError("--noise", f"{text!r}: levels are fractions of the maximum intensity, between 0 and 1")
    return levels


def _methods(text: str) -> tuple[str, ...]:
    methods = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(methods) - set(BASELINES))
    if unknown:
        raise UserError("--baselines", f"unknown baseline(s) {unknown}", f"choose from {','.join(BASELINES)}")
    return methods


@app.command(context_settings={"allow_extra_args": True})
def evaluate(
    ctx: typer.Context,
    volumes: list[Path] = typer.Option(..., help="clean NIfTI volumes: --volumes A.nii.gz [B.nii.gz ...]"),
    noise: str = typer.Option("0.03,0.05,0.07,0.09", help="noise σ as fractions of the maximum intensity"),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "trained MRI model folder"),
    kind: str = typer.Option("rician", help="rician or gaussian noise"),
    baselines: str = typer.Option(",".join(BASELINES), help="baselines to run beside the model"),
    baseline_sigma: str = typer.Option("total", "--baseline-sigma", help="the σ NLM and BM3D are told: total (the volume's own "
                                       "noise ⊕ the added; the model's task) or added; 'total,added' scores both"),
    slices: int = int_option(40, "--slices", low=0, high=SLICES_MAX,
                             help="central axial slices to evaluate (0: all; BM3D takes ~3 s a slice)"),
    mask_threshold: float = float_option(0.05, "--mask-threshold", low=0.0, high=1.0, open_high=True,
                                         help="foreground mask: clean voxels above this, on the [0, 1] scale"),
    seed: int = seed_option("seed of the evaluation noise (identical for every method)"),
    json_out: bool = json_option(),
) -> None:
    """Add seeded noise to clean volumes; score the model and the baselines (PSNR/SSIM, whole slab and in-mask).

    Rows carry `volume` and `noise` (and `sigma` for the baselines told the second --baseline-sigma);
    rows with only `noise` average the volumes; the rows with an empty condition give each
    method's mean `seconds` per axial slice; `reference` rows give each volume's own noise σ₀.
    """
    from latente.domains.mri.evaluation import evaluate_cases, load_case
    from latente.shared.report import markdown_table
    from latente.shared.results import Results

    extra = [arg for arg in ctx.args]
    for arg in extra:
        if arg.startswith("-"):
            raise UserError(arg, "unknown option")
    paths = [*volumes, *map(Path, extra)]
    if kind not in ("rician", "gaussian"):
        raise UserError("--kind", f"{kind!r} is not rician or gaussian")
    levels, methods = _levels(noise), _methods(baselines)
    sigmas = tuple(part.strip() for part in baseline_sigma.split(",") if part.strip())
    if not sigmas or not set(sigmas) <= set(BASELINE_SIGMAS) or len(set(sigmas)) != len(sigmas):
        raise UserError("--baseline-sigma", f"{baseline_sigma!r}", f"give {' or '.join(BASELINE_SIGMAS)}, or both separated by a comma")
    for path in paths:
        input_file(path, "--volumes", "NIfTI file")
    loaded = _model(model_folder(model, DEFAULT_MODEL, DOMAIN))
    cases = [load_case(path, slices, mask_threshold) for path in paths]
    for case in cases:
        if not case.mask.any():
            raise UserError(case.name, f"no voxel is above --mask-threshold {mask_threshold}")
    results = Results(DOMAIN, "clean volumes given on the command line", [str(p) for p in paths])
    evaluate_cases(cases, loaded.model, levels, kind, seed, methods, results, sigmas)
    if json_out:
        results.print_json()
        return
    rows = [[r["method"], r["condition"]["noise"], *(r["metrics"][k] for k in ("psnr_mask", "ssim_mask", "psnr", "ssim"))]
            for r in results.rows if set(r["condition"]) == {"noise"}]
    typer.echo(markdown_table(["method", "noise", "PSNR in mask (dB)", "SSIM in mask", "PSNR (dB)", "SSIM"], rows))
