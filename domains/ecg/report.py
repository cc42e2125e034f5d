"""The ECG report: operating points beside the wavelet baseline, the targets and the published anchors, with figures.

Every number in it is measured in this run, or read from the saved model configs, the metric
definitions, or `references.<domain>` of params.yaml (anchors and targets); none is typed here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.data import AAMI_CLASSES
from latente.domains.ecg.metrics import BITS_PER_SAMPLE, MIT_BIH_BASELINE, RPEAK_TOLERANCE_S, prd
from latente.domains.ecg.params import EvaluateParams
from latente.shared.io import write_text
from latente.shared.report import (
    Anchor, TargetCheck, check_target, figure_backend, load_references, markdown_table, projection, save_figure, target_table,
    write_plot_csv,
)
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

if TYPE_CHECKING:
    from latente.domains.ecg.evaluation import BeatCodes, RecordCase

PROJECTIONS = {"pca": "PCA", "tsne": "t-SNE"}


def _stretch(case: RecordCase, symbol: str | None, seconds: float = 4.0) -> slice | None:
    """A window around the first beat of `symbol` (or at 60 s, or the start, for a normal stretch)."""
    fs = case.lead.fs
    if symbol is None:
        start = min(int(60 * fs), len(case.lead.adc) - int(seconds * fs))
    else:
        if case.beats is None or symbol not in set(case.beats[1]):
            return None
        start = int(case.beats[0][list(case.beats[1]).index(symbol)] - seconds * fs / 2)
    start = max(0, start)
    return slice(start, min(len(case.lead.adc), start + int(seconds * fs)))


def _plot_stretch(paths: DomainPaths, case: RecordCase, decoded: dict, labels: list[str], window: slice, name: str, title: str) -> str:
    """Per operating point: the original with both codecs' reconstructions, and below it their errors."""
    import matplotlib.pyplot as plt

    t = np.arange(window.start, window.stop) / case.lead.fs
    fig, axes = plt.subplots(2 * len(labels), 1, figsize=(10, 2.4 * 2 * len(labels)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [2, 1] * len(labels)})
    for i, label in enumerate(labels):
        ax, err_ax = axes[2 * i, 0], axes[2 * i + 1, 0]
        ax.plot(t, case.lead.mv[window], "k", lw=0.8, alpha=0.6, label="original")
        for key, style in ((label, "-"), ("wavelet " + label, ":")):
            adc = decoded[(key, case.name)][window]
            codec = "model" if key == label else "wavelet"
            ax.plot(t, (adc - case.lead.baseline) / case.lead.gain, style, lw=1,
                    label=f"{codec} (PRD {prd(case.lead.adc[window], adc):.2f} % here)")
            err_ax.plot(t, (case.lead.adc[window] - adc) / case.lead.gain, style, lw=0.8, label=f"{codec} error")
        ax.set_ylabel("mV")
        ax.set_title(f"operating point {label}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
        err_ax.set_ylabel("error (mV)")
        err_ax.axhline(0, color="k", lw=0.5)
        err_ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title)
    save_figure(fig, paths.figures / name)
    return f"figures/{name}"


def _plot_rd(paths: DomainPaths, curve: list[dict], records: list[str], results: Results) -> str:
    """PRDN against bits per sample, both codecs on one plot per record, with the BD-rate."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(records), figsize=(6 * len(records), 4.5), squeeze=False)
    for ax, record in zip(axes[0], records):
        rows = [r for r in curve if r["record"] == record]
        for method, style, color in (("wavelet", "o--", "grey"), ("model", "s-", "C0")):
            pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["cr"])
            ax.plot([BITS_PER_SAMPLE / r["cr"] for r in pts], [r["prdn"] for r in pts], style, color=color,
                    label="wavelet (bior4.4)" if method == "wavelet" else "learned codec")
        bd = results.find("model", against="wavelet", record=record)["bd_rate"]
        ax.set_xlabel(f"bits per sample (CR = {BITS_PER_SAMPLE} / bits)")
        ax.set_ylabel("PRDN (%)")
        ax.set_title(f"record {record}: BD-rate {'undefined' if bd is None else f'{bd:+.1f} %'}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, paths.figures / "rate_distortion.png")
    return "figures/rate_distortion.png"


def _plot_errors(paths: DomainPaths, cases: list[RecordCase], decoded: dict, label: str) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for case in cases:
        err = case.lead.adc - decoded[(label, case.name)]
        ax.hist(err, bins=np.arange(-60.5, 61.5), histtype="step", density=True, label=f"record {case.name} (σ {err.std():.1f} ADC)")
    ax.set_yscale("log")
    ax.set_xlabel(f"original − decoded (ADC units; {cases[0].lead.gain:g} units = 1 mV)")
    ax.set_ylabel("density")
    ax.set_title(f"error distribution at operating point {label}")
    ax.legend(fontsize=8)
    save_figure(fig, paths.figures / "error_distribution.png")
    return "figures/error_distribution.png"


def _point_verdict(checks: list[TargetCheck], label: str) -> str:
    """Whether every target on operating point `label` is met ("–" when none is set for it)."""
    own = [c for c in checks if c.target.condition == {"operating_point": label}]
    if not own:
        return "–"
    return "met" if all(c.passed for c in own) else "**missed**"


def _published(anchor: Anchor) -> str:
    return ", ".join(f"{metric} {value:g}" if value is not None else f"{metric}: no figure" for metric, value in anchor.values.items())


def _durations(cases: list[RecordCase]) -> str:
    return " / ".join(sorted({f"{case.lead.seconds / 60:.1f}" for case in cases})) + " min"


def _reading_the_targets(params: EvaluateParams, results: Results, cases: list[RecordCase], checks: list[TargetCheck],
                         anchors: tuple[Anchor, ...], original: dict | None) -> list[str]:
    """Why targets are missed, from this run's numbers: what the wavelet reaches, what the detector allows."""
    reach = ", ".join(f"{results.find('wavelet', target_prd=params.wavelet_target_prd, record=case.name)['cr']:.1f} on record {case.name}"
                      for case in cases)
    text = (f"With PRD taken on {_durations(cases)} of each test record against ADC − {MIT_BIH_BASELINE}, the wavelet codec "
            f"stays within PRD {params.wavelet_target_prd:g} % up to CR {reach}.")
    for anchor in anchors:
        if anchor.values.get("cr") is not None and anchor.values.get("prd") is not None:
            text += (f" {anchor.label} report CR {anchor.values['cr']:g} at PRD {anchor.values['prd']:g} % under their own "
                     f"protocol: {anchor.protocol}")
    lines = [text + "\n"]
    for check in checks:
        if check.target.metric != "rpeak_f1" or check.target.value is None:
            continue
        goal = check.target.describe()
        if original is None:
            lines.append(f"\nTarget {check.target.name} ({goal}): no reference beat annotations in these records.\n")
            continue
        per_record = [(r["condition"]["record"], r["metrics"]["rpeak_f1"]) for r in results.rows
                      if r["method"] == "original" and "record" in r["condition"]]
        below = [name for name, f1 in per_record if f1 < check.target.value]
        scores = ", ".join(f"{name}: {f1:.3f}" for name, f1 in per_record)
        if below:
            bound = (f"; it stays below {check.target.value:g} on record {', '.join(below)}, so no codec can be expected to "
                     f"reach {goal} there.")
        else:
            bound = f", at least {check.target.value:g} on every test record."
        lines.append(f"\nTarget {check.target.name} ({goal}) is bounded by the R-peak detector itself: XQRS on the *original* "
                     f"signal scores F1 {scores}{bound}\n")
    return lines


def _ablations(results: Results, label: str) -> list[str]:
    """The evaluation-time ablations at operating point `label`: rate and PRDN of each arm, per record."""
    from latente.domains.ecg.evaluation import ABLATIONS

    rows = [r for r in results.rows if "ablation" in r["condition"]]
    lines = [f"At operating point {label}'s step on each record, with the trained model (bits from the integer tables):\n"]
    lines += [f"- **{arm}**: {what}." for arm, what in ABLATIONS.items()]
    lines.append("")
    lines.append(markdown_table(["record", "arm", "bits/sample", "CR", "PRDN %"],
                                [[r["condition"]["record"], r["condition"]["ablation"], r["metrics"]["bits_per_sample"],
                                  BITS_PER_SAMPLE / r["metrics"]["bits_per_sample"], r["metrics"]["prdn"]] for r in rows], 3))
    lines.append("\nThe trained ablations (a factorized prior trained as such, fewer side channels, wider transforms, leads "
                 "left unnormalised; on the validation split of the training records, or on training records left out of "
                 "training with `--held-out`) are `python -m bench.ecg_ablation`'s.\n")
    return lines


def _rate_setting(point) -> str:
    if point.cr is not None:
        return f"finest step reaching CR {point.cr:g}"
    if point.prdn is not None:
        return f"coarsest step within PRDN {point.prdn:g} %"
    return f"fixed shift {point.shift}"


def _beat_codes(paths: DomainPaths, params: EvaluateParams, beats: BeatCodes) -> list[str]:
    """The explorer's CSV (`plots/beats.csv`: projections, class, both waveforms) and its figure."""
    import matplotlib.pyplot as plt

    if not beats.rows:
        return ["No test record has beat annotations (`.atr`), so there are no beat codes to show.\n"]
    points = projection(beats.codes)
    rows = [{**{f"{name}_{axis + 1}": round(float(points[name][i, axis]), 5) for name in PROJECTIONS for axis in (0, 1)}, **row}
            for i, row in enumerate(beats.rows)]
    write_plot_csv(paths.plots / "beats.csv", rows)
    classes = [row["class"] for row in rows]
    present = [name for name in AAMI_CLASSES if name in classes]
    fig, axes = plt.subplots(1, len(PROJECTIONS), figsize=(6 * len(PROJECTIONS), 5), squeeze=False)
    for ax, (name, title) in zip(axes[0], PROJECTIONS.items()):
        for beat_class in present:
            mask = np.array(classes) == beat_class
            ax.scatter(points[name][mask, 0], points[name][mask, 1], s=8, alpha=0.7, label=f"{beat_class} ({int(mask.sum())})")
        ax.set_title(title)
        ax.legend(title="AAMI class", fontsize=8)
    save_figure(fig, paths.figures / "beat_codes.png")
    e = params.explorer
    counts = ", ".join(f"{sum(1 for c in classes if c == name)} {name}" for name in present)
    return [f"{len(rows)} beats ({counts}), evenly spaced over the test records (at most {e.beats_per_record} each), each "
            f"from {e.before_s:g} s before its annotated R peak to {e.after_s:g} s after. A beat's code is the latent frames "
            f"that cover it as operating point {e.operating_point}'s decoder receives them (symbols × step), projected by PCA and "
            "t-SNE and coloured by the beat's AAMI class from the annotations (N normal, S supraventricular, V ventricular, "
            "F fusion, Q paced or unclassified). `plots/beats.csv` holds both projections and each beat's original and decoded "
            "waveform in mV; the site's explorer shows them.\n",
            "![beat codes](figures/beat_codes.png)\n"]


def _models_table(loaded: dict) -> str:
    """The trained codecs as their saved config.json describes them, with their training record."""
    rows = []
    for name, m in loaded.items():
        c, h = m.codec.transform.config, m.hyperprior.config
        rows.append([name, str(list(c.channels)), str(list(c.strides)), c.kernel_size, c.latent_channels,
                     f"{h.channels} × {h.hidden}, {h.levels} scales", f"{m.codec.rate_weight:g}", m.preprocessing["window"],
                     m.info.get("best_val_loss"), m.info.get("epochs_run"), m.info.get("seconds")])
    return markdown_table(["model", "channels", "strides", "kernel", "latent channels", "hyperprior (z channels × width)",
                           "rate weight λ", "training window", "best val loss", "epochs", "train s"], rows, 4)


def write_report(paths: DomainPaths, params: EvaluateParams, results: Results, cases: list[RecordCase],
                 decoded: dict, curve: list[dict], loaded: dict, beats: BeatCodes) -> None:
    figure_backend()
    references = load_references(DOMAIN)
    checks = [check_target(results, target) for target in references.targets]
    labels = list(params.operating_points)
    try:
        original = results.find("original")
    except KeyError:
        original = None
    lines = ["# ECG compression on MIT-BIH\n",
             f"Test records: {', '.join(params.test_records)} (lead {params.lead}); training records never overlap them.\n",
             "**CR** counts every byte of the compressed file (header, latent stream, residual, checksum) against the "
             f"original at {BITS_PER_SAMPLE} bits per sample: CR = {BITS_PER_SAMPLE}·n / (8·bytes). **PRD** is taken on "
             f"ADC − {MIT_BIH_BASELINE} (the MIT-BIH baseline), **PRDN** on ADC minus its mean, **SNR** = −20·log10(PRDN/100) dB, "
             "**QS** = CR/PRD. R-peaks: WFDB's XQRS on the signal in mV, scored against the `.atr` beat annotations with a "
             f"{RPEAK_TOLERANCE_S * 1000:g} ms window.\n",
             "## The codec\n",
             "The lead is first scaled to the training records' mean standard deviation (the factor is in the file's header), so "
             "the squared error the codec was trained on weighs every record by its own energy, as PRDN does: unscaled, a "
             "small lead is coded as if its detail mattered less. "
             "A convolutional autoencoder maps the whole record at once (fully convolutional: no block edges) to a latent "
             "sequence at a fraction of the sampling rate; the latent is divided by a quantisation step, rounded and range-coded "
             "under a zero-mean Gaussian whose scale a **scale hyperprior** (Ballé et al. 2018) predicts for every value from "
             "side information, itself coded first. A factorized per-channel prior would spend the same bits on a flat "
             "stretch as on a QRS complex; the hyperprior does not (see the ablations). **Rate control** picks the step per "
             "record: the finest step whose file reaches the operating point's CR. **Decoding is exact across machines**: the "
             "scale of each value is one of a fixed table, the table's CDFs are integer frequencies stored with the model, and "
             "the table index is computed from the integer side symbols by the hyperprior's decoder run in exact fixed point, "
             "so a float difference between two machines cannot desynchronise the range decoder. Each model is trained for "
             "one rate weight λ (loss = squared error + λ · bits; `ecg.train.variants`); each operating point and each point of "
             "the curve uses the model trained for its rate, because a step finer than the trained one buys little: the "
             "transforms' own distortion floor remains.\n",
             "## Operating points (mean over test records)\n"]
    rows = []
    for label in labels:
        p = params.operating_points[label]
        m, w = results.find("model", operating_point=label), results.find("wavelet", operating_point=label)
        rows.append([f"{label}: model `{p.model}`, {_rate_setting(p)}" + (f", max error {p.max_error} ADC" if p.max_error else ""),
                     m["cr"], m["prd"], m["prdn"], m["snr"], m["qs"], m.get("rpeak_f1"), _point_verdict(checks, label)])
        rows.append([f"{label}: wavelet at the same CR", w["cr"], w["prd"], w["prdn"], w["snr"], w["qs"], w.get("rpeak_f1"), ""])
    if original:
        rows.append(["original signal", None, None, None, None, None, original["rpeak_f1"], ""])
    lines.append(markdown_table(["codec", "CR", "PRD %", "PRDN %", "SNR dB", "QS", "R-peak F1", "targets"], rows, 3))
    lines.append("\n## Targets\n")
    lines.append(target_table(checks) if checks else f"No targets are set in `references.{DOMAIN}.targets` of params.yaml.\n")
    lines.append("\n## Per record\n")
    per = []
    for row in results.rows:
        c = row["condition"]
        if "record" in c and "operating_point" in c and "ablation" not in c:
            m = row["metrics"]
            per.append([c["record"], c["operating_point"], row["method"], m.get("shift"), m["cr"], m["prd"], m["prdn"], m.get("rpeak_se"),
                        m.get("rpeak_ppv"), m.get("rpeak_f1"), m.get("seconds")])
        elif row["method"] == "original" and "record" in c:
            m = row["metrics"]
            per.append([c["record"], "–", "original", None, None, None, None, m["rpeak_se"], m["rpeak_ppv"], m["rpeak_f1"], None])
    lines.append(markdown_table(["record", "point", "method", "shift", "CR", "PRD %", "PRDN %", "R-peak Se", "R-peak +P", "R-peak F1",
                                 "codec s"], per, 3))
    lines.append("\n## Rate–distortion\n")
    lines.append("Each learned-codec point is one model with its step chosen per record by rate control (the points of "
                 f"`{DOMAIN}.evaluate.rate_distortion`); the wavelet's are its quantiser steps. The **BD-rate** (Bjøntegaard delta "
                 "rate) is the mean difference in bits per sample at equal PRDN over the PRDN range both curves cover (log-rate "
                 "interpolated by PCHIP in PRDN, Pareto fronts only); negative means the learned codec needs fewer bits.\n")
    bd_rows = [[case.name, results.find("model", against="wavelet", record=case.name)["bd_rate"]] for case in cases]
    bd_rows.append(["mean", results.find("model", against="wavelet")["bd_rate"]])
    lines.append(markdown_table(["record", "BD-rate vs wavelet (%)"], bd_rows, 1))
    lines.append("")
    lines.append(markdown_table(["record", "method", "point", "CR", "bits/sample", "PRD %", "PRDN %"],
                                [[r["record"], r["method"], r["point"], r["cr"], BITS_PER_SAMPLE / r["cr"], r["prd"], r["prdn"]]
                                 for r in sorted(curve, key=lambda r: (r["record"], r["method"], r["cr"]))], 3))
    lines.append("\n## Ablations\n")
    lines += _ablations(results, labels[0])
    lines.append("\n## Wavelet baseline at fixed rates\n")
    wavelet_rows = []
    for case in cases:
        at = {r["point"]: r for r in curve if r["record"] == case.name and r["method"] == "wavelet"}
        cr_at_prd = results.find("wavelet", target_prd=params.wavelet_target_prd, record=case.name)["cr"]
        wavelet_rows.append([case.name] + [f"{at[f'CR {t:g}']['prd']:.2f} / {at[f'CR {t:g}']['prdn']:.2f}" for t in params.wavelet_target_crs] + [cr_at_prd])
    lines.append(markdown_table(["record"] + [f"PRD / PRDN at CR {t:g}" for t in params.wavelet_target_crs]
                                + [f"CR at PRD {params.wavelet_target_prd:g} %"], wavelet_rows, 1))
    lines.append("\n## Reading the targets\n")
    lines += _reading_the_targets(params, results, cases, checks, references.anchors, original)
    lines.append("\n## Published results\n")
    lines.append(markdown_table(["reference", "published", "protocol", "citation"],
                                [[a.label, _published(a), a.protocol, a.citation] for a in references.anchors]))
    lines.append("\n## Figures\n")
    normal_case = cases[0]
    lines.append(f"![normal stretch]({_plot_stretch(paths, normal_case, decoded, labels, _stretch(normal_case, None), 'normal_stretch.png', f'record {normal_case.name}: normal rhythm')})\n")
    with_pvcs = [c for c in cases if c.beats is not None and "V" in set(c.beats[1])]
    if with_pvcs:
        pvc_case = max(with_pvcs, key=lambda c: int(np.sum(c.beats[1] == "V")))
        lines.append(f"![PVC stretch]({_plot_stretch(paths, pvc_case, decoded, labels, _stretch(pvc_case, 'V'), 'pvc_stretch.png', f'record {pvc_case.name}: around a PVC (V beat)')})\n")
    lines.append(f"![rate-distortion]({_plot_rd(paths, curve, [c.name for c in cases], results)})\n")
    lines.append(f"![error distribution]({_plot_errors(paths, cases, decoded, labels[0])})\n")
    lines.append("\n## Beat codes\n")
    lines += _beat_codes(paths, params, beats)
    lines.append("\n## Models\n")
    lines.append(_models_table(loaded))
    write_text(paths.report, "\n".join(lines))
    write_plot_csv(paths.plots / "rate_distortion.csv", curve)
