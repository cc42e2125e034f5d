"""reports/mri/report.md: target table, noise curves, slice panels with difference maps, times."""
from __future__ import annotations

import json

import numpy as np

from latente.shared.io import write_text
from latente.shared.models import LoadedModel
from latente.shared.report import figure_backend, markdown_table, save_figure, write_plot_csv
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

from latente.domains.mri.evaluation import Case, CaseOutputs
from latente.domains.mri.params import EvaluateParams

# ../shared/BASELINES.md: in-mask PSNR (dB) on MNI152, central 40 axial slices, measured independently
REFERENCE_PSNR_MASK = {
    0.03: {"noisy": 30.47, "gaussian": 34.38, "nlm": 35.90, "bm3d": 37.12},
    0.05: {"noisy": 26.03, "gaussian": 32.43, "nlm": 32.66, "bm3d": 34.23},
    0.07: {"noisy": 23.12, "gaussian": 31.24, "nlm": 30.31, "bm3d": 32.35},
    0.09: {"noisy": 20.95, "gaussian": 30.35, "nlm": 28.51, "bm3d": 30.90},
}
TARGET_LEVELS = (0.03, 0.05, 0.07, 0.09)
NLM_MARGIN_DB = 1.5
LABELS = {"model": "model (DAE)", "noisy": "noisy", "gaussian": "Gaussian 3-D", "nlm": "NLM 2-D", "bm3d": "BM3D 2-D"}


def target_rows(results: Results, levels: tuple[float, ...], methods: tuple[str, ...]) -> list[list]:
    """Per target level: the model's in-mask figures, its margins over NLM and BM3D, and each target's verdict."""
    rows = []
    for level in [lv for lv in levels if lv in TARGET_LEVELS and {"nlm", "bm3d"} <= set(methods)]:
        model, nlm, bm3d = (results.find(m, noise=level) for m in ("model", "nlm", "bm3d"))
        over_nlm = model["psnr_mask"] - nlm["psnr_mask"]
        over_bm3d = model["psnr_mask"] - bm3d["psnr_mask"]
        ssim_gap = model["ssim_mask"] - max(nlm["ssim_mask"], bm3d["ssim_mask"])
        verdict = lambda ok: "met" if ok else "missed"  # noqa: E731
        rows.append([level, model["psnr_mask"], model["ssim_mask"], over_nlm, verdict(over_nlm >= NLM_MARGIN_DB),
                     over_bm3d, verdict(over_bm3d >= 0), ssim_gap, verdict(ssim_gap >= 0)])
    return rows


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


def _input_sentence(context: int) -> str:
    if not context:
        return "Input: one axial slice at a time (2-D)."
    return (f"Input: each axial slice with its {context} neighbour{'s' if context > 1 else ''} on each side as extra "
            "channels (2.5-D, as in Jiang et al. 2018); the network predicts the centre slice's noise.")


def write_report(
    paths: DomainPaths,
    params: EvaluateParams,
    results: Results,
    cases: list[Case],
    outputs: list[CaseOutputs],
    loaded: LoadedModel,
    whole_volume: dict,
) -> None:
    figure_backend()
    methods = ("model", *params.methods)
    levels = params.noise
    info, data = loaded.info, loaded.meta["data"]
    slab = cases[0].zs
    parts = [
        "# MRI denoising: noise-blind residual denoising autoencoder vs NLM and BM3D\n",
        f"Trained on {', '.join(data['train_volumes'])} ({data['train_slices']} training and {data['val_slices']} validation "
        f"axial slices that hold brain); tested on {', '.join(data['test_volumes'])}, a volume never seen in training "
        f"(split by volume). One model covers every noise level (noise-blind; trained on {loaded.preprocessing['noise_kind']} "
        f"noise with σ drawn uniformly from {loaded.preprocessing['noise_levels']}). "
        + _input_sentence(loaded.preprocessing["context_slices"]) + "\n",
        f"**Protocol.** Clean volume rescaled to [0, 1]; {params.kind} noise √((x+n₁)²+n₂²) (seed {params.seed}; the same noisy "
        f"volume for every method); axial slices {slab.start}–{slab.stop - 1} ({slab.stop - slab.start} central slices, as in "
        f"../shared/BASELINES.md) are scored. `psnr_mask`/`ssim_mask` are inside clean > {params.mask_threshold} (the headline); "
        "`psnr`/`ssim` cover the whole slab. SSIM is MONAI's 2-D SSIM per slice (Gaussian window σ = 1.5). "
        "The model gets the noisy volume exactly as `latente mri denoise` would (min–max rescaled, denoised, scaled back). "
        "NLM (skimage, h = 0.8σ, patch 5, distance 6, fast mode) and BM3D (`bm3d` package, slice by slice) are given the "
        "**true** σ; the Gaussian filter's width is the oracle best of a grid per level "
        f"({', '.join(f'{lv:g}: {w:g} vox' for lv, w in outputs[0].gaussian_width.items())}).\n",
        "## Targets (in mask): PSNR ≥ NLM + 1.5 dB and ≥ BM3D; SSIM ≥ both\n",
        markdown_table(["σ", "model PSNR", "model SSIM", "PSNR − NLM (dB)", "≥ 1.5 dB", "PSNR − BM3D (dB)", "≥ 0",
                        "SSIM − best of NLM/BM3D", "≥ 0"], target_rows(results, levels, params.methods), digits=4),
        "\n## In-mask PSNR (dB) of every method, beside ../shared/BASELINES.md\n",
        markdown_table(["σ", *[LABELS[m] for m in methods], *[f"ref. {LABELS[m]}" for m in params.methods]],
                       [[lv, *[results.find(m, noise=lv)["psnr_mask"] for m in methods],
                         *[REFERENCE_PSNR_MASK.get(lv, {}).get(m) for m in params.methods]] for lv in levels], digits=2),
        "\n## In-mask SSIM\n",
        markdown_table(["σ", *[LABELS[m] for m in methods]], [[lv, *[results.find(m, noise=lv)["ssim_mask"] for m in methods]] for lv in levels], digits=4),
        "\n## Whole slab (background included)\n",
        "Rician noise leaves a positive bias (≈ 1.25σ) on the zero background. The classical filters keep it; a "
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
        "\n## Times (this evaluate run, shared 2-core CPU)\n",
        f"Seconds per axial slice of the test volume, and × {depth} slices for the whole volume. The model's whole-volume "
        f"time was also measured directly: **{whole_volume['seconds']:.1f} s** for {whole_volume['shape']}. "
        "`python -m bench.mri` measures the 181×217×181 target volume under controlled threads (bench/results/mri.json).\n",
        markdown_table(["method", "s / slice", "s / volume (per-slice × slices)"], time_rows, digits=3),
        "\n## Model\n",
        "```json\n" + json.dumps(loaded.meta["model"]) + "\n```\n",
        f"Training: {info.get('epochs_run')} epochs, best validation loss {info.get('best_val_loss', float('nan')):.4g} at epoch "
        f"{info.get('best_epoch')}; {info.get('train_seconds', 0) / 60:.1f} min in the last run"
        + (f", which resumed from a checkpoint after epoch {info['resumed_after_epoch']}" if info.get("resumed_after_epoch") else "")
        + ".\n",
        "\n## References\n",
        "- Jiang D. et al., *Denoising of 3D magnetic resonance images with multi-channel residual learning of convolutional "
        "neural network*, Jpn J Radiol 36:566–574 (2018): a multi-channel (2.5-D) DnCNN on BrainWeb/IXI with Rician noise "
        "1–15 %, reported to beat BM4D and NLM. Their figures are on other data and are not directly comparable.\n",
        "- Zhang K. et al., *Beyond a Gaussian denoiser: residual learning of deep CNN for image denoising* (DnCNN), IEEE TIP 2017.\n",
        "- Dabov K. et al., *Image denoising by sparse 3-D transform-domain collaborative filtering* (BM3D), IEEE TIP 2007; "
        "Buades A. et al., *A non-local algorithm for image denoising* (NLM), CVPR 2005.\n",
        "- Data: Colin27 (Holmes et al., JCAT 1998) via Debian `mricron-data`; MNI ICBM152 2009a (Fonov et al. 2009/2011) via nilearn.\n",
    ]
    write_text(paths.report, "\n".join(part.rstrip("\n") + "\n" for part in parts))
