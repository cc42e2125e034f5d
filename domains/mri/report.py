"""reports/mri/report.md: targets, every method's figures, noise curves, slice panels, times, the model.

Every sentence about the model is rendered from its saved config, its training record and the
`train` params that trained it, and every target from `references.mri` of params.yaml, so the
report of an experiment describes and judges what was actually run.
"""
from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING

import numpy as np

from latente.shared.io import write_text
from latente.shared.report import References, check_target, figure_backend, markdown_table, save_figure, target_table, write_plot_csv
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

from latente.domains.mri import DOMAIN
from latente.domains.mri.baselines import NLM_SETTINGS
from latente.domains.mri.params import EvaluateParams, TrainParams

if TYPE_CHECKING:
    from latente.domains.mri.evaluation import Case, CaseOutputs
    from latente.shared.models import AutoencoderConfig, LoadedModel

LABELS = {"model": "model (DAE)", "noisy": "noisy", "gaussian": "Gaussian 3-D", "nlm": "NLM 2-D", "bm3d": "BM3D 2-D"}
RAYLEIGH_MEAN = math.sqrt(math.pi / 2)  # mean of Rician noise on a zero background, in units of σ
NOISE_FORMULAS = {"rician": "√((x+n₁)²+n₂²), n₁, n₂ ~ N(0, σ²)", "gaussian": "x+n, n ~ N(0, σ²)"}  # as `latente.shared.noise.corrupt` adds it


def _curves(results: Results, params: EvaluateParams, paths: DomainPaths) -> str:
    import matplotlib.pyplot as plt

    methods = ("model", *params.methods)
    rows = [{"noise": lv, "method": m, **results.find(m, noise=lv)} for m in methods for lv in params.noise]
    write_plot_csv(paths.plots / "noise_curves.csv", [{k: r[k] for k in ("noise", "method", "psnr_mask", "ssim_mask", "psnr", "ssim")} for r in rows])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    titles = {"psnr_mask": "PSNR in mask (dB)", "ssim_mask": "SSIM in mask", "psnr": "PSNR, whole slab (dB)", "ssim": "SSIM, whole slab"}
    for ax, (metric, title) in zip(axes.flat, titles.items()):
        for m in methods:
            ax.plot([100 * lv for lv in params.noise], [results.find(m, noise=lv)[metric] for lv in params.noise],
                    marker="o", lw=2.2 if m == "model" else 1.2, label=LABELS[m])
        ax.set_title(title)
        ax.set_xlabel(f"{params.kind} noise σ (% of max)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend()
    fig.tight_layout()
    save_figure(fig, paths.figures / "noise_curves.png")
    return "figures/noise_curves.png"


def _panel(case: Case, out: CaseOutputs, level: float, methods: tuple[str, ...], results: Results, paths: DomainPaths) -> str:
    import matplotlib.pyplot as plt

    names = ("noisy", *[m for m in methods if m != "noisy"], "model")
    shown = {"clean": out.clean, **{m: out.slices[level][m] for m in names}}
    fig, axes = plt.subplots(2, len(shown), figsize=(2.6 * len(shown), 5.6))
    for col, (name, image) in enumerate(shown.items()):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(np.rot90(image), cmap="gray", vmin=0, vmax=1)
        title = "clean" if name == "clean" else f"{LABELS[name]}\n{results.find(name, volume=case.name, noise=level)['psnr_mask']:.2f} dB"
        top.set_title(title, fontsize=9)
        if name != "clean":
            bottom.imshow(np.rot90(np.abs(image - out.clean)), cmap="magma", vmin=0, vmax=3 * level)
            bottom.set_title(f"|{name} − clean|", fontsize=9)
        for ax in (top, bottom):
            ax.axis("off")
    fig.suptitle(f"{case.name}: middle evaluated axial slice, {level * 100:g}% noise (difference maps 0–{3 * level:g})", fontsize=10)
    fig.tight_layout()
    name = f"panels_{case.name.split('.')[0]}_{round(level * 100)}pct.png"
    save_figure(fig, paths.figures / name)
    return f"figures/{name}"


def input_sentence(config: AutoencoderConfig) -> str:
    """How slices enter the model, from its input channels."""
    context = config.context_channels // 2
    if not context:
        return "Input: one axial slice at a time (2-D)."
    return (f"Input: each axial slice with its {context} neighbour{'s' if context > 1 else ''} on each side as extra "
            f"channels ({config.in_channels} channels, 2.5-D); the network denoises the centre slice.")


def model_title(config: AutoencoderConfig) -> str:
    return f"noise-blind {'residual ' if config.residual else ''}denoising autoencoder"


def describe_model(config: AutoencoderConfig, train: TrainParams, fit: dict) -> str:
    """The model paragraph: architecture, input, noise, training, from what was saved and run."""
    corruption = config.corruption
    assert corruption is not None
    trainer, patches = train.trainer, train.patches
    blocks = len(config.channels)
    architecture = (
        f"A convolutional denoising autoencoder (`{config.name}`): {blocks} encoder block{'s' if blocks > 1 else ''} "
        f"of {'/'.join(map(str, config.channels))} channels ({config.kernel_size}×{config.kernel_size} kernels, strides "
        f"{'/'.join(map(str, config.strides))}) down to a {config.latent_channels}-channel code map, and a mirrored decoder. "
    )
    output = ("Residual (DnCNN-style): the network predicts the noise, which is subtracted from the centre slice. "
              if config.residual else "The network predicts the clean centre slice directly. ")
    noise = (f"Noise-blind: one model for every level, trained on {corruption.kind} noise with σ drawn uniformly from "
             f"[{corruption.level[0]:g}, {corruption.level[1]:g}] and never told σ. ")
    kept = (f"the moving average of the training weights (decay {trainer.ema_decay:g})" if trainer.ema_decay is not None
            else "the training weights")
    resumed = f", resumed from a checkpoint after epoch {fit['resumed_from_epoch']}" if fit["resumed_from_epoch"] else ""
    training = (
        f"Training: {fit['epochs_run']} epochs (of {trainer.epochs}) of {patches.per_epoch} random {patches.size}×{patches.size} "
        f"patches, batch {trainer.batch_size}, learning rate {trainer.lr:g} ({trainer.scheduler} schedule). The saved weights are "
        f"{kept} at the epoch that validated best: epoch {fit['best_epoch']}, validation loss {fit['best_val_loss']:.4g}. "
        f"{fit['seconds'] / 60:.1f} min ({fit['cpu_seconds'] / 60:.1f} CPU min) of training in all{resumed}."
    )
    return architecture + output + input_sentence(config) + " " + noise + training


def literature(references: References) -> str:
    """Published anchors of `references.mri`: who, on what protocol, with which figures."""
    metrics = sorted({name for anchor in references.anchors for name in anchor.values})
    rows = [[a.label, *[a.values.get(m) for m in metrics], a.protocol] for a in references.anchors]
    cited = "".join(f"- {a.label}: {a.citation}\n" for a in references.anchors)
    return markdown_table(["work", *metrics, "protocol"], rows, digits=2) + "\n" + cited


def write_report(
    paths: DomainPaths,
    params: EvaluateParams,
    train: TrainParams,
    references: References,
    results: Results,
    cases: list[Case],
    outputs: list[CaseOutputs],
    loaded: LoadedModel,
    whole_volume: dict,
) -> None:
    figure_backend()
    methods = ("model", *params.methods)
    levels = params.noise
    config, fit, data = loaded.model.config, loaded.info, loaded.meta["data"]
    slab = cases[0].zs
    nlm = NLM_SETTINGS
    checks = [check_target(results, target) for target in references.targets]
    parts = [
        f"# MRI denoising: {model_title(config)} vs {', '.join(LABELS[m] for m in params.methods if m != 'noisy')}\n",
        f"Trained on {', '.join(data['train_volumes'])} ({data['train_slices']} training and {data['val_slices']} validation "
        f"axial slices that hold brain); tested on {', '.join(data['test_volumes'])}, a volume never seen in training "
        "(split by volume).\n",
        f"**Protocol.** Clean volume rescaled to [0, 1]; {params.kind} noise {NOISE_FORMULAS[params.kind]} (seed {params.seed}; the same noisy "
        f"volume for every method); axial slices {slab.start}–{slab.stop - 1} ({slab.stop - slab.start} central slices) are scored. "
        f"`psnr_mask`/`ssim_mask` are inside clean > {params.mask_threshold} (the headline); "
        "`psnr`/`ssim` cover the whole slab. SSIM is MONAI's 2-D SSIM per slice (Gaussian window σ = 1.5). "
        "The model gets the noisy volume exactly as `latente mri denoise` would (min–max rescaled, denoised, scaled back). "
        f"NLM (skimage, h = {nlm['h_per_sigma']:g}σ, patch {nlm['patch_size']}, distance {nlm['patch_distance']}, fast mode) "
        "and BM3D (`bm3d` package, slice by slice) are given the **true** σ; the Gaussian filter's width is the oracle best "
        f"of a grid per level ({', '.join(f'{lv:g}: {w:g} vox' for lv, w in outputs[0].gaussian_width.items())}).\n",
        "## Targets\n",
        target_table(checks, digits=4) if checks else f"No target is set in `references.{DOMAIN}.targets` of params.yaml.\n",
        "\n## In-mask PSNR (dB)\n",
        markdown_table(["σ", *[LABELS[m] for m in methods]], [[lv, *[results.find(m, noise=lv)["psnr_mask"] for m in methods]] for lv in levels], digits=2),
        "\n## In-mask SSIM\n",
        markdown_table(["σ", *[LABELS[m] for m in methods]], [[lv, *[results.find(m, noise=lv)["ssim_mask"] for m in methods]] for lv in levels], digits=4),
        "\n## Whole slab (background included)\n",
        f"Rician noise leaves a positive bias (σ·√(π/2) ≈ {RAYLEIGH_MEAN:.2f}σ) on the zero background. The classical filters keep it; a "
        "learned denoiser can remove it, and the background then dominates these figures.\n",
        markdown_table(["σ", *[f"{LABELS[m]} PSNR" for m in methods], *[f"{LABELS[m]} SSIM" for m in methods]],
                       [[lv, *[results.find(m, noise=lv)["psnr"] for m in methods], *[results.find(m, noise=lv)["ssim"] for m in methods]] for lv in levels], digits=3),
        "\n![PSNR and SSIM against noise level](" + _curves(results, params, paths) + ")\n",
    ]
    panel_levels = sorted({params.figure_noise, max(levels)} & set(levels))
    for case, out in zip(cases, outputs):
        for level in panel_levels:
            parts.append(f"\n![{case.name} at {level * 100:g}% noise]({_panel(case, out, level, params.methods, results, paths)})\n")
    depth = cases[0].clean.shape[2]
    time_rows = [[LABELS[m], results.find(m)["seconds"], results.find(m)["seconds"] * depth] for m in methods if m != "noisy"]
    parts += [
        f"\n## Times (this evaluate run, {os.cpu_count()} CPU cores)\n",
        f"Seconds per axial slice of the test volume, and × {depth} slices for the whole volume. The model's whole-volume "
        f"time was also measured directly: **{whole_volume['seconds']:.1f} s** for {whole_volume['shape']}. "
        "`python -m bench.mri` times a whole training volume under controlled threads (bench/results/mri.json).\n",
        markdown_table(["method", "s / slice", "s / volume (per-slice × slices)"], time_rows, digits=3),
        "\n## Model\n",
        describe_model(config, train, fit) + "\n",
        "```json\n" + json.dumps(loaded.meta["model"]) + "\n```\n",
        "\n## Published work\n",
        literature(references),
        "\n## Methods and data\n",
        "- Zhang K. et al., *Beyond a Gaussian denoiser: residual learning of deep CNN for image denoising* (DnCNN), IEEE TIP 2017.\n",
        "- Dabov K. et al., *Image denoising by sparse 3-D transform-domain collaborative filtering* (BM3D), IEEE TIP 2007; "
        "Buades A. et al., *A non-local algorithm for image denoising* (NLM), CVPR 2005.\n",
        "- Data: Colin27 (Holmes et al., JCAT 1998) via Debian `mricron-data`; MNI ICBM152 2009a (Fonov et al. 2009/2011) via nilearn.\n",
    ]
    write_text(paths.report, "\n".join(part.rstrip("\n") + "\n" for part in parts))
