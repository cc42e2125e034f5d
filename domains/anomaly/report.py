"""report.md, figures and plot data of the evaluate stage, and the CLI's results table.

Every description of a method is rendered from what was trained and evaluated (the saved
model config, protocol.json, the evaluate params); published figures and targets come from
`references.anomaly` of params.yaml.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from latente.domains.anomaly import DOMAIN
from latente.domains.anomaly.data import format_stamps
from latente.domains.anomaly.model import Detector, find_alarms, window_codes
from latente.domains.anomaly.params import DetectorConfig, EvaluateParams
from latente.shared.errors import UserError
from latente.shared.io import read_json, write_text
from latente.shared.models import AutoencoderConfig
from latente.shared.report import (
    References, check_target, figure_backend, load_references, markdown_table, projection, save_figure, target_table,
    write_plot_csv,
)
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

if TYPE_CHECKING:
    from latente.domains.anomaly.evaluation import FileRun

POINT_METRICS = (("f1", "F1"), ("far", "FAR %"), ("mar", "MAR %"))
NAB_METRICS = (("nab_standard", "Standard"), ("nab_low_fp", "LowFP"), ("nab_low_fn", "LowFN"))


def results_table(results: Results) -> str:
    """Pooled F1/FAR/MAR per method, for the CLI's human-readable output."""
    rows = [(row["method"], *(row["metrics"][k] for k, _ in POINT_METRICS)) for row in results.rows if not row["condition"]]
    return markdown_table(["method", *(h for _, h in POINT_METRICS)], rows, digits=3)


def write_report(results: Results, runs: list[FileRun], seeds: list[int], config: DetectorConfig, protocol: dict,
                 global_network: Detector | None, params: EvaluateParams, paths: DomainPaths) -> None:
    """Plot data, one figure per `plot_files` entry, and report.md."""
    _write_plot_data(runs, paths)
    figure_backend()
    figures = [_plot_file(_run(runs, key), paths.figures, int(protocol["train_rows"])) for key in params.plot_files]
    global_file = read_json(paths.model / protocol["global"] / "config.json")["data"]["file"] if global_network else None
    explored = _window_codes(_run(runs, params.explorer_file), paths)
    text = _report(results, runs, seeds, figures, _run(runs, params.explain_file), config, protocol, global_network,
                   global_file, params, load_references(DOMAIN), explored)
    write_text(paths.report, text)


def _safe(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", Path(key).with_suffix("").as_posix()).strip("_")


def _run(runs: list[FileRun], key: str) -> FileRun:
    for run in runs:
        if run.key == key:
            return run
    raise UserError(f"params.yaml: {DOMAIN}.evaluate: {key}", "is not a benchmark file", f"choose one of {', '.join(r.key for r in runs)}")


def _write_plot_data(runs: list[FileRun], paths: DomainPaths) -> None:
    rows = []
    for run in runs:
        for method in run.predictions:
            m = run.confusion(method).metrics()
            rows.append({"file": run.key, "method": method, "f1": m["f1"], "far": m["far"], "mar": m["mar"]})
    write_plot_csv(paths.plots / "per_file.csv", rows)
    for run in runs:  # one score trace per file: `dvc plots show` draws the last column (score) against the row
        write_plot_csv(paths.plots / f"score_{_safe(run.key)}.csv", [
            {"row": int(r), "threshold": run.detector.threshold, "label": int(y), "alarm": int(a),
             "score": None if np.isnan(v) else float(v)}
            for r, y, a, v in zip(run.test.rows - 1, run.test.labels, run.predictions["model"], run.scored.score)])


PROJECTIONS = {"pca": "PCA", "tsne": "t-SNE"}
WINDOW_LABELS = ("normal", "partly anomalous", "anomalous")


def _window_codes(run: FileRun, paths: DomainPaths) -> list[str]:
    """The explorer's CSV (`plots/windows.csv`: projections, label, score, error shares, the top sensor's
    window) for one file's test windows, its figure, and the report's lines about them."""
    import matplotlib.pyplot as plt

    explored = window_codes(run.detector, run.test)
    points = projection(explored.codes)
    rows = [{**{f"{name}_{axis + 1}": round(float(points[name][i, axis]), 5) for name in PROJECTIONS for axis in (0, 1)}, **row}
            for i, row in enumerate(explored.rows)]
    write_plot_csv(paths.plots / "windows.csv", rows)
    labels = np.array([row["label"] for row in rows])
    scores = np.array([row["score"] for row in rows])
    fig, axes = plt.subplots(2, len(PROJECTIONS), figsize=(6 * len(PROJECTIONS), 10), squeeze=False)
    for column, (name, title) in enumerate(PROJECTIONS.items()):
        for label in WINDOW_LABELS:
            mask = labels == label
            if mask.any():
                axes[0, column].scatter(points[name][mask, 0], points[name][mask, 1], s=8, alpha=0.7, label=f"{label} ({int(mask.sum())})")
        axes[0, column].set_title(f"{title}, by label")
        axes[0, column].legend(fontsize=8)
        shown = axes[1, column].scatter(points[name][:, 0], points[name][:, 1], s=8, c=np.log10(np.maximum(scores, 1e-3)), cmap="viridis")
        axes[1, column].set_title(f"{title}, by score")
        fig.colorbar(shown, ax=axes[1, column], label="log10(residual / threshold)")
    save_figure(fig, paths.figures / "window_codes.png")
    counts = ", ".join(f"{int((labels == label).sum())} {label}" for label in WINDOW_LABELS if (labels == label).any())
    return [f"Every test window of `{run.key}` ({len(rows)}: {counts}) through that file's detector: its code (the encoder's "
            f"output, {explored.codes.shape[1]} values) projected by PCA and t-SNE, coloured by its label (none, some or all of "
            "its rows labelled anomalous) and by its score (the window's residual over the threshold). `plots/windows.csv` "
            "holds both projections, each sensor's share of the residual and the top sensor's window against its "
            "reconstruction (standardised); the site's explorer shows them.", "",
            "![window codes](figures/window_codes.png)", ""]


def _plot_file(run: FileRun, folder: Path, train_rows: int) -> str:
    import matplotlib.pyplot as plt

    test, scored, d = run.test, run.scored, run.detector
    x = test.rows - 1  # 0-based row of the file
    z = (test.values - d.mean) / d.scale
    fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True, gridspec_kw={"height_ratios": [3, 2, 1]})
    for j, name in enumerate(d.sensors):
        axes[0].plot(x, z[:, j], lw=0.7, label=f"{name} (w={d.weights[j]:.2f})")
    axes[0].set_ylabel("standardised value")
    axes[0].legend(fontsize=6.5, ncol=4, loc="lower left")
    axes[1].plot(x, scored.score, lw=0.9, color="black", label="row score (min residual of checked windows)")
    axes[1].axhline(d.threshold, color="red", lw=1, ls="--", label=f"threshold {d.threshold:.2f}")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("score")
    axes[1].legend(fontsize=7, loc="upper left")
    axes[2].fill_between(x, 0, test.labels, step="mid", alpha=0.35, color="tab:orange", label="labelled anomaly")
    axes[2].plot(x, 0.5 * run.predictions["model"], drawstyle="steps-mid", color="tab:blue", label="model alarm")
    axes[2].plot(x, 0.25 * run.predictions["pca_t2q"], drawstyle="steps-mid", color="tab:green", lw=0.8, label="T²+Q alarm")
    axes[2].set_yticks([])
    axes[2].set_xlabel(f"row of the file (training rows 0–{train_rows - 1} not shown)")
    axes[2].legend(fontsize=7, ncol=3, loc="upper left")
    m = run.confusion("model").metrics()
    fig.suptitle(f"{run.key}: F1 {m['f1']:.2f}, FAR {m['far']:.1f} %, MAR {m['mar']:.1f} %")
    name = f"{_safe(run.key)}.png"
    save_figure(fig, folder / name)
    return f"figures/{name}"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.{digits}f}"


def method_labels(model: AutoencoderConfig, config: DetectorConfig, params: EvaluateParams,
                  global_network: Detector | None, global_file: str | None) -> dict[str, str]:
    """What each method row is, from the trained configs and the evaluate params."""
    weights = "short-term sensor weights" if config.sensor_weights == "short_term" else "SKAB's uniform sensor weights"
    labels = {
        "model": f"latente `{model.name}` ({weights})",
        "model_unweighted": f"latente `{model.name}`, SKAB's unweighted residual",
        "pca_t2q": "PCA T²+Q (" + ("SKAB's t2.py" if params.pca_t2q.q_limit == "skab" else "Jackson–Mudholkar Q limit") + ")",
        "isolation_forest": "Isolation Forest (SKAB's notebook)",
    }
    if global_network is not None:
        labels["model_global"] = (f"latente `{global_network.model.config.name}` trained on `{Path(global_file).name}`, "
                                  "calibrated per file")
    return labels


def model_description(model: AutoencoderConfig, code_shape: tuple[int, ...], config: DetectorConfig) -> str:
    """The network and its training, as saved in the model config and protocol.json."""
    window = model.input_size[0]
    if model.architecture == "conv":
        layers = "→".join(str(c) for c in (model.in_channels, *model.channels))
        blocks = ", ".join(filter(None, [f"kernel {model.kernel_size}", f"strides {'·'.join(map(str, model.strides))}",
                                         model.act, model.norm and f"{model.norm} norm",
                                         model.dropout and f"dropout {model.dropout:g}"]))
        code = (f"a {code_shape[0]}-channel code of {code_shape[1]} steps" if len(code_shape) == 2
                else f"a flat {code_shape[0]}-unit code")
        net = (f"convolutions {layers} channels ({blocks}), {code}, transposed convolutions back")
    else:
        net = (f"dense layers {model.in_channels}×{window}→{'→'.join(map(str, model.hidden))} ({model.act}), "
               f"a {code_shape[0]}-unit code, and back")
    variant = {
        "dae": model.corruption and f"; inputs corrupted with {model.corruption.kind} noise of level "
                                    f"{model.corruption.level[0]:g}–{model.corruption.level[1]:g} in training",
        "sae": model.sparsity and f"; {model.sparsity.kind} sparsity penalty, weight {model.sparsity.weight:g}",
        "vae": f"; variational, β = {model.beta:g}",
    }.get(model.variant) or ""
    t = config.trainer
    schedule = "constant" if t.scheduler == "constant" else "cosine-decayed"
    warmup = f" after {t.warmup_epochs} warm-up epochs" if t.warmup_epochs else ""
    stopping = (f"early stopping (patience {t.patience}) on the last {100 * config.val_fraction:g} % of the training windows"
                if t.patience is not None else f"the best epoch on the last {100 * config.val_fraction:g} % of the training windows kept")
    clip = f", gradients clipped at norm {t.grad_clip:g}" if t.grad_clip else ""
    return (f"Per file, `{model.name}` from `shared/` ({model.spatial_dims}-D, one input channel per sensor) over "
            f"windows of {window} rows: {net}{variant}. Loss {model.recon_loss.upper()}, AdamW (weight decay "
            f"{t.weight_decay:g}) at a {schedule} learning rate {t.lr:g}{warmup}, batch {t.batch_size}, at most "
            f"{t.epochs} epochs with {stopping}{clip}; seed {t.seed}, device `{t.device}`.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _target_rows(results: Results, references: References, **condition) -> list:
    """The target checks of the model row under `condition` added to each target's own."""
    return [check_target(results, t.model_copy(update={"condition": {**t.condition, **condition}})) for t in references.targets]


def _verdict(checks: list) -> str:
    if not checks:
        return "no targets"
    missed = [c.target.name for c in checks if not c.passed]
    return "all met" if not missed else "missed: " + ", ".join(missed)


def _training_line(runs: list[FileRun]) -> str:
    """Fit times of the whole training of each model (the trainer keeps them across resumes)."""
    fits = [r.detector.info["fit"] for r in runs]
    epochs = [f["epochs_run"] for f in fits]
    seconds = np.array([f["seconds"] for f in fits])
    cpu = np.array([f["cpu_seconds"] for f in fits])
    resumed = sum(1 for f in fits if f["resumed_from_epoch"])
    span = f"{min(epochs)}–{max(epochs)} epochs" if min(epochs) != max(epochs) else _count(epochs[0], "epoch")
    line = (f"- Training: {len(runs)} per-file fits of {span}, {seconds.mean():.1f} s on average "
            f"(max {seconds.max():.1f} s) and {cpu.mean():.1f} s of CPU time")
    if resumed:
        line += f"; {resumed} of them resumed from checkpoints, their times include the runs before"
    return line + "."


def _drift_line(runs: list[FileRun]) -> str:
    """How far each sensor's normal (label 0) test rows stray from its training rows, in training σ."""
    excursion = np.zeros(len(runs[0].detector.sensors))
    for r in runs:
        normal = r.test.labels == 0
        if normal.any():
            z = np.abs((r.test.values[normal] - r.detector.mean) / r.detector.scale)
            excursion = np.maximum(excursion, z.max(axis=0))
    order = np.argsort(-excursion)[:3]
    sensors = runs[0].detector.sensors
    return ", ".join(f"{sensors[i]} {excursion[i]:.0f} σ" for i in order)


def _global_line(runs: list[FileRun], global_network: Detector, global_file: str) -> str:
    """The global model's training data against the benchmark files': the sensor that differs most."""
    file_means = np.median([r.detector.mean for r in runs], axis=0)
    file_scales = np.median([r.detector.scale for r in runs], axis=0)
    shift = np.abs(global_network.mean - file_means) / file_scales
    j = int(np.argmax(shift))
    fit = global_network.info["fit"]
    return (f"- **Global model.** One `{global_network.model.config.name}` trained on `{global_file}` "
            f"({global_network.info['train_rows']} rows, {_count(fit['epochs_run'], 'epoch')}) with its own standardisation; per file it "
            "is re-standardised and re-thresholded on the training rows, without retraining. Its data sit at another "
            f"operating point: {global_network.sensors[j]} averages {global_network.mean[j]:.3g} there against "
            f"{file_means[j]:.3g} (median over the files' training rows), {shift[j]:.0f} training σ apart.")


def _report(results: Results, runs: list[FileRun], seeds: list[int], figures: list[str], explained: FileRun,
            config: DetectorConfig, protocol: dict, global_network: Detector | None, global_file: str | None,
            params: EvaluateParams, references: References, explored: list[str]) -> str:
    model = results.find("model")
    methods = list(runs[0].predictions)
    network = runs[0].detector.model.config
    labels = method_labels(network, config, params, global_network, global_file)
    window, train_rows = config.window, int(protocol["train_rows"])
    groups = " + ".join(dict.fromkeys(Path(r.key).parent.name for r in runs))
    lines = [
        f"# Anomaly detection on SKAB {groups}",
        "",
        f"SKAB's per-file protocol on {len(runs)} files ({sum(len(r.test) for r in runs)} test rows, "
        f"{sum(int(r.test.labels.sum()) for r in runs)} anomalous): train on the first {train_rows} rows of each "
        f"file, standardise with their statistics, windows of {window}, threshold = the {config.threshold_quantile} "
        f"quantile of the training residuals × {config.threshold_factor:.4g}, SKAB's window-to-point rule; F1, FAR and "
        "MAR pool the test rows of all files.",
        "",
        f"**Headline (model, seed {config.trainer.seed}): F1 {model['f1']:.3f}, FAR {model['far']:.2f} %, "
        f"MAR {model['mar']:.2f} %.**",
        "",
        "## Targets",
        "",
        target_table(_target_rows(results, references)) if references.targets else "(no targets in params.yaml)\n",
    ]

    lines += ["## Leaderboard", ""]
    rows = [(labels.get(m, m), *(_fmt(results.find(m)[k]) for k, _ in POINT_METRICS), f"{len(runs)} files, measured here")
            for m in methods]
    rows += [(a.label, *(_fmt(a.values.get(k)) for k, _ in POINT_METRICS), a.protocol)
             for a in references.anchors if any(k in a.values for k, _ in POINT_METRICS)]
    lines += [markdown_table(["Model", *(h for _, h in POINT_METRICS), "Data"], rows)]
    if references.anchors:
        lines += ["Published rows (from `references.anomaly` of params.yaml) were measured as their Data column says:"]
        lines += [f"- {a.label}: {a.citation}" for a in references.anchors]
    lines += [""]

    lines += ["## Robustness over training seeds", "",
              "The same protocol with the per-file autoencoders retrained under other seeds (everything else equal):", ""]
    seed_rows, f1s = [], []
    for seed in [config.trainer.seed, *seeds]:
        condition = {} if seed == config.trainer.seed else {"seed": seed}
        m = results.find("model", **condition)
        if m["f1"] is not None:
            f1s.append(m["f1"])
        seed_rows.append((seed, _fmt(m["f1"], 3), _fmt(m["far"]), _fmt(m["mar"]),
                          _verdict(_target_rows(results, references, **condition))))
    lines += [markdown_table(["seed", "F1", "FAR %", "MAR %", "targets"], seed_rows)]
    if f1s:
        lines += [f"Mean F1 over {len(f1s)} seeds: {np.mean(f1s):.3f} (min {np.min(f1s):.3f})."]
    lines += [""]

    lines += ["## Change points (NAB, extra)", "",
              f"Predicted change points are the edges of the alarm series (SKAB's convention); detection windows are "
              f"{params.nab_window_s:g} s to the right of each labelled change point.", ""]
    nab_rows = [(labels.get(m, m), *(_fmt(results.find(m).get(k)) for k, _ in NAB_METRICS)) for m in methods]
    nab_rows += [(a.label, *(_fmt(a.values.get(k)) for k, _ in NAB_METRICS))
                 for a in references.anchors if any(k in a.values for k, _ in NAB_METRICS)]
    lines += [markdown_table(["Model", *(h for _, h in NAB_METRICS)], nab_rows), ""]

    lines += ["## Per-file scores", ""]
    others = [b for b in methods if b != "model"]
    per_rows = []
    for run in runs:
        m = run.confusion("model").metrics()
        per_rows.append((run.key, _fmt(m["f1"]), _fmt(m["far"], 1), _fmt(m["mar"], 1),
                         *(_fmt(run.confusion(b).metrics()["f1"]) for b in others),
                         run.detector.info["fit"]["epochs_run"], _fmt(run.detector.threshold)))
    lines += [markdown_table(["file", "F1", "FAR %", "MAR %", *(f"F1 {b}" for b in others), "epochs", "threshold"],
                             per_rows), ""]

    lines += ["## Signal, score, threshold and labels", ""]
    lines += [f"![{f}]({f})" for f in figures] + ["",
              "Top: the test rows standardised with the training statistics (w = the sensor's weight in the residual). "
              "Middle: each row's score, the smallest residual of the windows SKAB's rule checks for it, against the "
              "threshold (log scale). Bottom: labelled anomaly, the model's alarms and T²+Q's alarms.", ""]

    alarms = find_alarms(explained.scored, len(explained.detector.sensors))
    sensors = explained.detector.sensors
    lines += ["## Alarm explanation", "",
              f"Each alarm of `{explained.key}` with every sensor's share of its weighted reconstruction error "
              "(the same numbers `latente anomaly score` prints for every alarm, and whose largest it writes per row as "
              "`top_sensor`/`top_share`):", ""]
    alarm_rows = []
    for a in alarms:
        when = " → ".join(format_stamps(np.asarray(a.timestamps, dtype=np.int64))) if a.timestamps else ""
        alarm_rows.append((f"{a.rows[0]}–{a.rows[1]}", when, a.length, *(f"{100 * s:.0f} %" for s in a.shares)))
    lines += [markdown_table(["rows", "time", "length", *sensors], alarm_rows) if alarm_rows else "(no alarms)\n", ""]

    lines += ["## Window codes", "", *explored]

    data_rows = [(r.key, r.test.report.rows_kept, r.test.report.gaps, _fmt(r.test.report.largest_gap_s, 0),
                  r.test.report.duplicate_rows, r.test.report.unsorted_rows, r.test.report.nan_cells) for r in runs]
    lines += ["## Data problems found while reading", "",
              "Handled by the reader (sorted, duplicates dropped, NaNs per policy) and counted here; gaps are steps over "
              "1.5× the file's usual step, kept as they are (SKAB treats each file as evenly sampled).", "",
              markdown_table(["file", "rows", "gaps", "largest gap s", "duplicates", "unsorted", "NaN"], data_rows), ""]

    weights = np.array([r.detector.weights for r in runs])
    if config.sensor_weights == "short_term":
        residual = ("SKAB's window residual is Σ_s mean_t |x̂ − x|. Ours weights sensor s by "
                    "w_s = min(1, σ(Δx_s) / (√2 σ(x_s))), the short-term share of its variance in the training rows: ≈ 1 "
                    "for a sensor whose training rows look like noise, small for a slowly drifting one, whose training "
                    "rows sample too little of its drift for a z-score to mean much. The weights use the training rows only. "
                    "Mean weights over the files: "
                    + ", ".join(f"{s} {w:.2f}" for s, w in zip(runs[0].detector.sensors, weights.mean(axis=0))) + ".")
    else:
        residual = "SKAB's window residual Σ_s mean_t |x̂ − x|, every sensor weighted 1."
    lines += ["## Method", "",
              f"- **Model.** {model_description(network, runs[0].detector.code_shape(), config)}",
              f"- **Residual.** {residual} Largest excursions of normal (label 0) test rows from their file's training "
              f"rows, in training standard deviations: {_drift_line(runs)}.",
              f"- **Point labels.** SKAB's rule: row t is anomalous when the residuals of the windows starting at "
              f"t−{window - 1} … t−1 all exceed the threshold, for t from {window - 1} to n_windows − {window}; the first "
              f"{window - 1} and last {2 * window - 2} test rows of each file are never flagged (as in SKAB's notebook). The "
              "row score is the smallest of those residuals, so a row is flagged exactly when its score exceeds the threshold.",
              f"- **Baselines.** PCA T²+Q ({100 * params.pca_t2q.explained_variance:g} % of the variance, p = "
              f"{params.pca_t2q.p_value:g}, rolling median of {params.pca_t2q.median_window}, "
              + ("SKAB's Q limit" if params.pca_t2q.q_limit == "skab" else "the Jackson–Mudholkar Q limit")
              + f") and Isolation Forest ({params.isolation_forest.n_estimators} trees, contamination "
              f"{params.isolation_forest.contamination:g}, rolling median of {params.isolation_forest.median_window}), "
              "written after SKAB's code (`domains/anomaly/baselines.py` documents the quirks kept), fitted on the same "
              "training rows and scored on the same test rows."]
    if global_network is not None:
        lines += [_global_line(runs, global_network, global_file)]
    lines += ["- **Model folder.** `models/anomaly` holds one detector folder per benchmark file (`skab/valve1/0/`, …), the "
              "seed replicas (`seeds/<seed>/…`), the global detector (`global/`) and `protocol.json` (which folder serves "
              "which file, the protocol and the detector settings). Each folder is a complete model for "
              "`latente anomaly score`; its `config.json` holds the trainer's record of the fit (`info.fit`).",
              ""]

    notes = ["- The sensor weighting and the architecture were chosen while looking at these files (there is no held-out "
             "SKAB data in this repository), so any comparison with the published rows is in-sample, as the "
             "leaderboard's own hyperparameters are. The seed table above shows how much of a margin is seed noise."]
    if "model_unweighted" in methods:
        losses = [(r.key, r.confusion("model_unweighted").metrics()["f1"], r.confusion("model").metrics()["f1"]) for r in runs]
        losses = [(k, u, w) for k, u, w in losses if u - w > 0.05]
        if losses:
            notes += ["- The weighting costs detections in some files (F1 unweighted → weighted): "
                      + ", ".join(f"{k} F1 {u:.2f} → {w:.2f}" for k, u, w in losses) + "."]
    notes += [_training_line(runs)]
    lines += ["## Notes", "", *notes, "",
              "Protocol, metrics and baselines follow github.com/waico/SKAB (`notebooks/Conv_AE.ipynb`, `core/t2.py`, "
              "`core/metrics.py`).", ""]
    return "\n".join(lines)
