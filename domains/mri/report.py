"""reports/mri/report.md: targets, every method's figures, noise curves, slice panels, times, the model.

Every sentence about the model is rendered from its saved config, its training record and the
`train` params that trained it, and every target from `references.mri` of params.yaml, so the
report of an experiment describes and judges what was actually run.
"""
from __future__ import annotations

import io
import json
import math
import os
from typing import TYPE_CHECKING

import numpy as np

from latente.shared.io import write_bytes, write_text
from latente.shared.report import (
    References, TargetCheck, check_target, condition_text, figure_backend, markdown_table, projection, save_figure, target_table,
    write_plot_csv,
)
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

from latente.domains.mri import DOMAIN
from latente.domains.mri.baselines import NLM_SETTINGS, SLICE_DENOISERS
from latente.domains.mri.params import EvaluateParams, TrainParams

if TYPE_CHECKING:
    from latente.domains.mri.evaluation import Case, CaseOutputs, PatchCodes
    from latente.shared.models import AutoencoderConfig, LoadedModel

LABELS = {"model": "model (DAE)", "model_adapted": "model + adapt", "noisy": "noisy", "gaussian": "Gaussian 3-D",
          "nlm": "NLM 2-D", "bm3d": "BM3D 2-D"}
RAYLEIGH_MEAN = math.sqrt(math.pi / 2)  # mean of Rician noise on a zero background, in units of σ
NOISE_FORMULAS = {"rician": "√((x+n₁)²+n₂²), n₁, n₂ ~ N(0, σ²)", "gaussian": "x+n, n ~ N(0, σ²)"}  # as `latente.shared.noise.corrupt` adds it


Column = tuple[str, str, dict]  # (label, method, condition beyond volume and noise)


def _columns(results: Results, case: Case, params: EvaluateParams) -> list[Column]:
    """Every method scored on `case`: the headline rows, then the baselines told another σ."""
    first = params.baseline_sigma[0]
    columns = [(LABELS[m] + (f" (σ {first})" if m in SLICE_DENOISERS else ""), m, {})
               for m in ("model", "model_adapted", *params.methods) if _has(results, m, volume=case.name, noise=params.noise[0])]
    return columns + [(f"{LABELS[m]} (σ {sigma})", m, {"sigma": sigma}) for sigma in params.baseline_sigma[1:]
                      for m in params.methods if _has(results, m, volume=case.name, noise=params.noise[0], sigma=sigma)]


def _has(results: Results, method: str, **condition) -> bool:
    try:
        results.find(method, **condition)
    except KeyError:
        return False
    return True


def _value(results: Results, column: Column, metric: str, **condition) -> float:
    return results.find(column[1], **condition, **column[2])[metric]


def _curves(results: Results, case: Case, params: EvaluateParams, paths: DomainPaths) -> str:
    import matplotlib.pyplot as plt

    columns = _columns(results, case, params)
    stem = case.name.split(".")[0]
    write_plot_csv(paths.plots / f"noise_curves_{stem}.csv", [
        {"noise": lv, "method": column[0], **{m: _value(results, column, m, volume=case.name, noise=lv) for m in METRIC_TITLES}}
        for column in columns for lv in params.noise])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, ("psnr_mask", "ssim_mask")):
        for column in columns:
            ax.plot([100 * lv for lv in params.noise], [_value(results, column, metric, volume=case.name, noise=lv) for lv in params.noise],
                    marker="o", ls="--" if column[2] else "-", lw=2.2 if column[1].startswith("model") else 1.2, label=column[0])
        ax.set_title(f"{case.name}: {METRIC_TITLES[metric]}", fontsize=9)
        ax.set_xlabel(f"added {params.kind} noise σ (% of max)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, paths.figures / f"noise_curves_{stem}.png")
    return f"figures/noise_curves_{stem}.png"


METRIC_TITLES = {"psnr_mask": "PSNR in mask (dB)", "ssim_mask": "SSIM in mask", "psnr": "PSNR, whole slab (dB)", "ssim": "SSIM, whole slab"}


def _panel(case: Case, out: CaseOutputs, level: float, methods: tuple[str, ...], results: Results, paths: DomainPaths) -> str:
    import matplotlib.pyplot as plt

    names = ("noisy", *[m for m in methods if m != "noisy"], *[m for m in ("model", "model_adapted") if m in out.slices[level]])
    shown = {"clean": out.clean, **{m: out.slices[level][m] for m in names}}
    fig, axes = plt.subplots(2, len(shown), figsize=(2.6 * len(shown), 5.6))
    for col, (name, image) in enumerate(shown.items()):
        top, bottom = axes[0, col], axes[1, col]
        top.imshow(np.rot90(image), cmap="gray", vmin=0, vmax=1)
        title = "reference" if name == "clean" else f"{LABELS[name]}\n{results.find(name, volume=case.name, noise=level)['psnr_mask']:.2f} dB"
        top.set_title(title, fontsize=9)
        if name != "clean":
            bottom.imshow(np.rot90(np.abs(image - out.clean)), cmap="magma", vmin=0, vmax=3 * level)
            bottom.set_title(f"|{name} − reference|", fontsize=9)
        for ax in (top, bottom):
            ax.axis("off")
    fig.suptitle(f"{case.name}: middle evaluated axial slice, {level * 100:g}% noise (difference maps 0–{3 * level:g})", fontsize=10)
    fig.tight_layout()
    name = f"panels_{case.name.split('.')[0]}_{round(level * 100)}pct.png"
    save_figure(fig, paths.figures / name)
    return f"figures/{name}"


PATCH_ZOOM = 4  # each voxel of an explorer image drawn as 4 × 4 pixels


def _patch_codes(paths: DomainPaths, params: EvaluateParams, patches: PatchCodes) -> list[str]:
    """The explorer's CSV (`plots/patches.csv`: both projections, noise level, tissue intensity, in-patch PSNR), one
    image per point (reference | noisy | denoised, as the report's panels orient a slice) and the figure."""
    import matplotlib.image
    import matplotlib.pyplot as plt

    points = projection(patches.codes)
    rows = []
    for i, (row, image) in enumerate(zip(patches.rows, patches.images)):
        name = f"patches/{i:04d}.png"
        gap = np.ones((image.shape[2], 1))
        strip = np.hstack([part for panel in image for part in (np.rot90(panel), gap)][:-1])
        buffer = io.BytesIO()
        matplotlib.image.imsave(buffer, np.kron(strip, np.ones((PATCH_ZOOM, PATCH_ZOOM))), cmap="gray", vmin=0, vmax=1, format="png")
        write_bytes(paths.figures / name, buffer.getvalue())
        rows.append({**{f"{view}_{axis + 1}": round(float(points[view][i, axis]), 5) for view in ("tsne", "pca") for axis in (0, 1)},
                     **row, "image": name})
    write_plot_csv(paths.plots / "patches.csv", rows)
    noise = [row["noise"] for row in rows]
    levels = list(dict.fromkeys(noise))
    intensity = np.array([row["intensity"] for row in rows])
    fig, axes = plt.subplots(1, 3, figsize=(17, 5))
    for ax, view, colour in ((axes[0], "pca", "noise"), (axes[1], "tsne", "noise"), (axes[2], "pca", "intensity")):
        if colour == "noise":
            for k, level in enumerate(levels):
                keep = np.array(noise) == level
                ax.scatter(points[view][keep, 0], points[view][keep, 1], s=8, alpha=0.7, color=plt.cm.viridis(k / max(1, len(levels) - 1)),
                           label=f"{level} ({int(keep.sum())})")
            ax.legend(title="noise σ", fontsize=7)
        else:
            drawn = ax.scatter(points[view][:, 0], points[view][:, 1], s=8, alpha=0.7, c=intensity, cmap="magma")
            fig.colorbar(drawn, ax=ax, label="mean reference intensity in the patch")
        ax.set_title(f"{'PCA' if view == 'pca' else 't-SNE'}, coloured by {'noise level' if colour == 'noise' else 'tissue intensity'}")
    save_figure(fig, paths.figures / "patch_codes.png")
    e = params.explorer
    volumes = list(dict.fromkeys(row["volume"] for row in rows))
    return [f"{len(rows) // len(levels)} patches of {e.size} × {e.size} voxels ({e.stride} apart, at least {e.head:.0%} in the "
            f"mask) from the middle evaluated axial slice of {' and '.join(volumes)}, each seen {' and at '.join([levels[0], ', '.join(levels[1:])])}: "
            f"{len(rows)} points. A patch's code is the model's code map of the slice ({patches.codes.shape[1]} channels) "
            "averaged over the latent cells that cover the patch, as the decoder receives it when it denoises that slice; "
            "projected by PCA and t-SNE. `plots/patches.csv` holds both projections, the noise level, the patch's mean "
            "reference intensity and its PSNR noisy and denoised; `figures/patches/` one image per point (reference | noisy | "
            "denoised); the site's explorer shows them.\n",
            "![patch codes](figures/patch_codes.png)\n"]


def _adapt_paragraph(params: EvaluateParams, results: Results) -> str:
    """How `model_adapted` was fine-tuned, and per volume and level the σ it estimated and the step it kept."""
    a = params.adapt
    how = {
        "recorrupted": f"Recorrupted-to-Recorrupted (Pang et al., CVPR 2021): the volume's noise σ is estimated inside its head, and "
                       f"the model learns to map the volume recorrupted as y + {a.alpha:g}z to y − z/{a.alpha:g}, z ~ N(0, σ²), two "
                       "versions with independent noise, so the loss is a supervised loss up to a constant",
        "blind_spot": f"blind-spot training (Noise2Void, Krull et al., CVPR 2019): {100 * a.masked_fraction:g} % of the centre "
                      f"slice's voxels hidden per patch, each replaced by a visible voxel at most {a.neighbourhood} away, the loss "
                      "on the hidden voxels only",
    }[a.method]
    rows = [[name, lv, results.find("model_adapted", volume=name, noise=lv)["adapt_sigma"] * 100,
             results.find("model_adapted", volume=name, noise=lv)["adapt_kept_step"]]
            for name in params.adapt_volumes for lv in params.noise]
    return (
        f"\n**Model + adapt** ({', '.join(params.adapt_volumes)}): before denoising, a copy of the model is fine-tuned on the "
        f"noisy volume itself, with no reference, by {how}; {a.steps} Adam steps (learning rate {a.lr:g}) of {a.batch_size} "
        f"patches of {a.patch_size}×{a.patch_size} voxels. The same loss on a fixed batch of {a.val_patches} patches, measured "
        f"before the first step and every {a.check_every} steps, estimates the denoising error without a reference; a check's "
        "weights qualify only where that error fell by more than two standard errors of its per-patch change, and the lowest "
        "qualifying check is kept (step 0: the trained model, when none qualified). This is `latente mri denoise --adapt`; "
        "its seconds include the fine-tune.\n\n"
        + markdown_table(["volume", "σ added", "σ estimated (% of max)", "step kept"], rows, digits=3)
    )


def _lowest_level_note(results: Results, params: EvaluateParams, cases: list[Case], config: AutoencoderConfig,
                       references: References) -> str:
    """At the lowest level, below every target's, the model's distance to BM3D per volume, with and without the fine-tune,
    and why a noise-blind model trails there."""
    lowest = min(params.noise)
    targeted = {t.condition.get("noise") for t in references.targets}
    if "bm3d" not in params.methods or config.corruption is None or lowest in targeted:
        return ""
    gaps = []
    for case in cases:
        bm3d = results.find("bm3d", volume=case.name, noise=lowest)["psnr_mask"]
        gap = f"{case.name} {results.find('model', volume=case.name, noise=lowest)['psnr_mask'] - bm3d:+.2f} dB"
        if _has(results, "model_adapted", volume=case.name, noise=lowest):
            gap += f" ({results.find('model_adapted', volume=case.name, noise=lowest)['psnr_mask'] - bm3d:+.2f} dB with the fine-tune)"
        gaps.append(gap)
    low, high = config.corruption.level
    return (f"\n**Below the targets' levels.** At {100 * lowest:g} % noise, in-mask PSNR against BM3D (σ {params.baseline_sigma[0]}): "
            f"{'; '.join(gaps)}. "
            f"The model is noise-blind, trained on σ drawn uniformly from [{low:g}, {high:g}] with a squared-error loss, which "
            "the high-noise draws dominate: the smallest residuals weigh least in what it learns. The fine-tune on the scan "
            "itself sees only that scan's noise.\n")


def _plain_model_note(checks: list[TargetCheck], results: Results) -> str:
    """The targets that judge the fine-tuned model (on a real scan), and the same targets judged on the plain model:
    a reader sees what the fine-tune is needed for."""
    adapted = [c for c in checks if c.target.method == "model_adapted"]
    if not adapted:
        return ""
    plain = [check_target(results, c.target.model_copy(update={"method": "model"})) for c in adapted]
    missed = [p for p in plain if p.verdict == "missed"]
    return (f"\n{len(adapted)} of the {len(checks)} targets judge {LABELS['model_adapted']} (`latente mri denoise --adapt`), "
            f"not the model alone. Judged on the model alone, {len(missed)} of those measured {'is' if len(missed) == 1 else 'are'} missed"
            + "".join(f"{'; ' if k else ': '}{condition_text(p.target.condition)}, {p.target.describe()} (margin {p.margin:.4f})"
                      for k, p in enumerate(missed)) + ".\n")


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
    patches: PatchCodes | None = None,
) -> None:
    figure_backend()
    levels = params.noise
    config, fit, data = loaded.model.config, loaded.info, loaded.meta["data"]
    slab = cases[0].zs
    nlm = NLM_SETTINGS
    checks = [check_target(results, target) for target in references.targets]
    told = {"total": "the **total** σ = √(σ₀² + σ²), the volume's own noise ⊕ the added (the same task as the noise-blind model's)",
            "added": "only the **added** σ (which leaves the reference's own noise in their output, as it is in the reference)"}
    parts = [
        f"# MRI denoising: {model_title(config)} vs {', '.join(LABELS[m] for m in params.methods if m != 'noisy')}\n",
        f"Trained on {', '.join(data['train_volumes'])} ({data['train_slices']} training and {data['val_slices']} validation "
        f"axial slices that hold brain); tested on {', '.join(data['test_volumes'])}, volumes never seen in training "
        "(split by volume).\n",
        f"**Protocol.** Reference volume rescaled to [0, 1]; {params.kind} noise {NOISE_FORMULAS[params.kind]} (seed {params.seed}; the same noisy "
        f"volume for every method); the central {slab.stop - slab.start} axial slices of each volume are scored. "
        f"`psnr_mask`/`ssim_mask` are inside reference > {params.mask_threshold} (the headline); "
        "`psnr`/`ssim` cover the whole slab. SSIM is MONAI's 2-D SSIM per slice (Gaussian window σ = 1.5). "
        "The model gets the noisy volume exactly as `latente mri denoise` would (min–max rescaled, denoised, scaled back). "
        f"NLM (skimage, h = {nlm['h_per_sigma']:g}σ, patch {nlm['patch_size']}, distance {nlm['patch_distance']}, fast mode) "
        f"and BM3D (`bm3d` package, slice by slice) are told {told[params.baseline_sigma[0]]} in the headline columns"
        + "".join(f", and {told[sigma]} in the columns marked σ {sigma}" for sigma in params.baseline_sigma[1:]) + ". "
        "The Gaussian filter's width is the oracle best of a grid per volume and level.\n",
        "**A reference is not always clean.** A template (an average of many scans) is nearly noise-free; a single acquisition "
        "holds the scanner's own noise σ₀, and PSNR against it counts σ₀ as error for any method that removes it. σ₀ is "
        "estimated per volume inside the mask (median absolute finest 3-D Haar detail / 0.6745, Donoho & Johnstone's robust "
        "estimator):\n",
        markdown_table(["volume", "σ₀ (% of max)"], [[c.name, 100 * c.intrinsic] for c in cases], digits=3),
        f"\nRician noise leaves a positive bias (σ·√(π/2) ≈ {RAYLEIGH_MEAN:.2f}σ) on the zero background. The classical filters keep "
        "it; a learned denoiser can remove it, and the background then dominates the whole-slab figures.\n",
    ]
    if params.adapt_volumes:
        parts.append(_adapt_paragraph(params, results))
    parts += ["\n## Targets\n",
              target_table(checks, digits=4) if checks else f"No target is set in `references.{DOMAIN}.targets` of params.yaml.\n",
              _plain_model_note(checks, results), _lowest_level_note(results, params, cases, config, references)]
    for case, out in zip(cases, outputs):
        columns = _columns(results, case, params)
        labels = [c[0] for c in columns]
        widths = ", ".join(f"{lv:g}: {w:g} vox" for lv, w in out.gaussian_width.items())
        parts += [
            f"\n## {case.name} (σ₀ {100 * case.intrinsic:.2f} %)\n",
            "In-mask PSNR (dB):\n",
            markdown_table(["σ", *labels], [[lv, *[_value(results, c, "psnr_mask", volume=case.name, noise=lv) for c in columns]] for lv in levels], digits=2),
            "\nIn-mask SSIM:\n",
            markdown_table(["σ", *labels], [[lv, *[_value(results, c, "ssim_mask", volume=case.name, noise=lv) for c in columns]] for lv in levels], digits=4),
            f"\nWhole slab (background included), PSNR (dB); the oracle Gaussian widths were {widths}:\n",
            markdown_table(["σ", *labels], [[lv, *[_value(results, c, "psnr", volume=case.name, noise=lv) for c in columns]] for lv in levels], digits=2),
            f"\n![{case.name}: PSNR and SSIM against noise level](" + _curves(results, case, params, paths) + ")\n",
        ]
        for level in sorted({params.figure_noise, max(levels)} & set(levels)):
            parts.append(f"\n![{case.name} at {level * 100:g}% noise]({_panel(case, out, level, params.methods, results, paths)})\n")
    if patches is not None:
        parts += ["\n## Patch codes\n", *_patch_codes(paths, params, patches)]
    depth = cases[0].clean.shape[2]
    methods = [m for m in ("model", *params.methods) if m != "noisy"]  # the fine-tune is timed on the whole volume
    time_rows = [[LABELS[m], results.find(m)["seconds"], results.find(m)["seconds"] * depth] for m in methods]
    parts += [
        f"\n## Times (this evaluate run, {os.cpu_count()} CPU cores)\n",
        f"Seconds per axial slice of the test volumes, and × {depth} slices for the whole volume. The model's whole-volume "
        f"time was also measured directly: **{whole_volume['seconds']:.1f} s** for {whole_volume['shape']}, and "
        f"**{whole_volume['seconds_adapted']:.1f} s** with the default fine-tune (`--adapt`, {params.adapt.steps} steps) before it. "
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
        "- Krull A. et al., *Noise2Void: learning denoising from single noisy images*, CVPR 2019; Donoho D. & Johnstone I., "
        "*Ideal spatial adaptation by wavelet shrinkage*, Biometrika 1994 (the MAD noise estimate).\n",
        "- Data: Colin27 (Holmes et al., JCAT 1998) via Debian `mricron-data`; MNI ICBM152 2009a (Fonov et al. 2009/2011) via nilearn; "
        "MR_Gd, a skull-stripped contrast-enhanced T1 of one subject (figshare 7472168, via GitHub neurolabusc/niivue-images), "
        "for testing only.\n",
    ]
    write_text(paths.report, "\n".join(part.rstrip("\n") + "\n" for part in parts))
