"""The ECG report: operating points beside the wavelet baseline and the literature, with figures."""
from __future__ import annotations

import numpy as np

from latente.domains.ecg import codec, wavelet
from latente.domains.ecg.evaluate import Codec, RecordCase, wavelet_at_cr, wavelet_cr_at_prd
from latente.domains.ecg.metrics import prd, prdn
from latente.domains.ecg.params import EvaluateParams
from latente.shared.io import write_text
from latente.shared.report import figure_backend, markdown_table, save_figure, write_plot_csv
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

WAVELET_STEPS = (4.0, 8.0, 12.0, 18.0, 24.0, 32.0, 45.0, 60.0, 80.0, 110.0)
LITERATURE = [
    ("Yildirim et al. 2018, conv. AE (MIT-BIH)", 32.25, 2.73, "the target of operating point A"),
    ("Wavelet (bior4.4, ../shared/BASELINES.md), rec. 100", 32.25, 5.21, "PRDN 9.77 %"),
    ("Wavelet (bior4.4, ../shared/BASELINES.md), rec. 208", 32.25, 8.81, "PRDN 9.31 %"),
]
TARGETS = {"A": "CR ≥ 32.25, PRD ≤ 2.73 %, R-peak F1 within 0.005 of the original",
           "B": "CR ≥ 50, PRDN ≤ 9 %, R-peak F1 ≥ 0.99"}


def rate_distortion(cases: list[RecordCase], codecs: list[Codec], wavelet_crs: tuple[float, ...]) -> list[dict]:
    """CR/PRD/PRDN per record for each model point and for a sweep of wavelet steps."""
    rows = []
    for point in codecs:
        for case in cases:
            adc, n_bytes = point.round_trip(case.lead)
            rows.append({"method": "model", "point": point.label, "record": case.name,
                         "cr": codec.compression_ratio(len(adc), n_bytes), "prd": prd(case.lead.adc, adc), "prdn": prdn(case.lead.adc, adc)})
    for case in cases:
        for step in WAVELET_STEPS:
            data = wavelet.encode(case.lead.adc, case.lead.baseline, step)
            adc = wavelet.decode(data)
            rows.append({"method": "wavelet", "point": f"step {step:g}", "record": case.name,
                         "cr": codec.compression_ratio(len(adc), len(data)), "prd": prd(case.lead.adc, adc), "prdn": prdn(case.lead.adc, adc)})
        for target in wavelet_crs:
            adc, n_bytes = wavelet_at_cr(case, target)
            rows.append({"method": "wavelet", "point": f"CR {target:g}", "record": case.name,
                         "cr": codec.compression_ratio(len(adc), n_bytes), "prd": prd(case.lead.adc, adc), "prdn": prdn(case.lead.adc, adc)})
    return rows


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
    import matplotlib.pyplot as plt

    t = np.arange(window.start, window.stop) / case.lead.fs
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 2.6 * len(labels)), sharex=True, squeeze=False)
    for ax, label in zip(axes[:, 0], labels):
        original = case.lead.mv[window]
        for key, style in ((label, "-"), ("wavelet " + label, ":")):
            rec = (decoded[(key, case.name)][window] - case.lead.baseline) / case.lead.gain
            ax.plot(t, rec, style, lw=1, label=f"{'model' if key == label else 'wavelet'} (PRD {prd(case.lead.adc[window], decoded[(key, case.name)][window]):.2f} % here)")
        ax.plot(t, original, "k", lw=0.8, alpha=0.6, label="original")
        ax.set_ylabel("mV")
        ax.set_title(f"operating point {label}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title)
    save_figure(fig, paths.figures / name)
    return f"figures/{name}"


def _plot_rd(paths: DomainPaths, curve: list[dict], records: list[str]) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(records), figsize=(6 * len(records), 4.5), squeeze=False)
    for ax, record in zip(axes[0], records):
        rows = [r for r in curve if r["record"] == record]
        wav = sorted((r for r in rows if r["method"] == "wavelet"), key=lambda r: r["cr"])
        ax.plot([r["cr"] for r in wav], [r["prd"] for r in wav], "o--", color="grey", label="wavelet (bior4.4)")
        for point in sorted({r["point"] for r in rows if r["method"] == "model"}):
            pts = [r for r in rows if r["point"] == point and r["method"] == "model"]
            ax.plot([r["cr"] for r in pts], [r["prd"] for r in pts], "s", label=f"model {point}")
        ax.plot([32.25], [2.73], "r*", ms=12, label="Yildirim 2018 (target A)")
        ax.set_xlabel("CR (11 bits/sample reference)")
        ax.set_ylabel("PRD (%)")
        ax.set_title(f"record {record}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, paths.figures / "rate_distortion.png")
    return "figures/rate_distortion.png"


def _plot_errors(paths: DomainPaths, cases: list[RecordCase], decoded: dict, label: str) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for case in cases:
        err = case.lead.adc - decoded[(label, case.name)]
        ax.hist(err, bins=np.arange(-60.5, 61.5), histtype="step", density=True, label=f"record {case.name} (σ {err.std():.1f} ADC)")
    ax.set_yscale("log")
    ax.set_xlabel("original − decoded (ADC units; 200 units = 1 mV)")
    ax.set_ylabel("density")
    ax.set_title(f"error distribution at operating point {label}")
    ax.legend(fontsize=8)
    save_figure(fig, paths.figures / "error_distribution.png")
    return "figures/error_distribution.png"


def _verdict(label: str, model: dict, original: dict | None) -> str:
    if label == "A":
        ok = model["cr"] >= 32.25 and model["prd"] <= 2.73
        if original and model.get("rpeak_f1") is not None:
            ok = ok and model["rpeak_f1"] >= original["rpeak_f1"] - 0.005
    elif label == "B":
        ok = model["cr"] >= 50 and model["prdn"] <= 9 and (model.get("rpeak_f1") or 0) >= 0.99
    else:
        return "–"
    return "met" if ok else "**missed**"


def write_report(paths: DomainPaths, params: EvaluateParams, results: Results, cases: list[RecordCase],
                 decoded: dict, curve: list[dict], loaded: dict) -> None:
    figure_backend()
    labels = list(params.operating_points)
    try:
        original = results.find("original")
    except KeyError:
        original = None
    lines = ["# ECG compression on MIT-BIH\n",
             f"Test records: {', '.join(params.test_records)} (lead {params.lead}); training records never overlap them.\n",
             "**CR** counts every byte of the compressed file (header, latent stream, residual, checksum) against the "
             "original at 11 bits per sample: CR = 11·n / (8·bytes). **PRD** is taken on ADC − 1024 (the MIT-BIH baseline), "
             "**PRDN** on ADC minus its mean, **SNR** = −20·log10(PRDN/100) dB, **QS** = CR/PRD. R-peaks: WFDB's XQRS on the "
             "signal in mV, scored against the `.atr` beat annotations with a 150 ms window.\n",
             "## Operating points (mean over test records)\n"]
    rows = []
    for label in labels:
        p = params.operating_points[label]
        m, w = results.find("model", operating_point=label), results.find("wavelet", operating_point=label)
        rows.append([f"{label}: model `{p.model}` {p.bits}-bit" + (f", |e| ≤ {p.max_error}" if p.max_error else ""),
                     m["cr"], m["prd"], m["prdn"], m["snr"], m["qs"], m.get("rpeak_f1"), _verdict(label, m, original)])
        rows.append([f"{label}: wavelet at the same CR", w["cr"], w["prd"], w["prdn"], w["snr"], w["qs"], w.get("rpeak_f1"), ""])
    if original:
        rows.append(["original signal", None, None, None, None, None, original["rpeak_f1"], ""])
    lines.append(markdown_table(["codec", "CR", "PRD %", "PRDN %", "SNR dB", "QS", "R-peak F1", "target"], rows, 3))
    lines.append("\nTargets: " + "; ".join(f"**{k}**: {v}" for k, v in TARGETS.items()) + ".\n")
    lines.append("\n## Per record\n")
    per = []
    for row in results.rows:
        c = row["condition"]
        if "record" in c and "operating_point" in c:
            m = row["metrics"]
            per.append([c["record"], c["operating_point"], row["method"], m["cr"], m["prd"], m["prdn"], m.get("rpeak_se"), m.get("rpeak_ppv"), m.get("rpeak_f1"), m.get("seconds")])
        elif row["method"] == "original" and "record" in c:
            m = row["metrics"]
            per.append([c["record"], "–", "original", None, None, None, m["rpeak_se"], m["rpeak_ppv"], m["rpeak_f1"], None])
    lines.append(markdown_table(["record", "point", "method", "CR", "PRD %", "PRDN %", "R-peak Se", "R-peak +P", "R-peak F1", "codec s"], per, 3))
    lines.append("\n## Wavelet baseline check against ../shared/BASELINES.md\n")
    check = []
    for case in cases:
        at = {r["point"]: r for r in curve if r["record"] == case.name and r["method"] == "wavelet"}
        cr_at_prd = wavelet_cr_at_prd(case, params.wavelet_target_prd)
        results.add("wavelet", {"cr": cr_at_prd}, target_prd=params.wavelet_target_prd, record=case.name)
        check.append([case.name] + [f"{at[f'CR {t:g}']['prd']:.2f} / {at[f'CR {t:g}']['prdn']:.2f}" for t in params.wavelet_target_crs] + [cr_at_prd])
    lines.append(markdown_table(["record"] + [f"PRD / PRDN at CR {t:g}" for t in params.wavelet_target_crs] + [f"CR at PRD {params.wavelet_target_prd} %"], check, 1))
    lines.append("\nBASELINES.md: record 100 5.21 / 9.77 % at CR 32.25, PRDN 16.8 % at CR 50, CR 12.6 at PRD 2.73 %; "
                 "record 208 8.81 / 9.31 %, 16.3 %, 10.4.\n")
    lines.append("\n## Reading the targets\n")
    reach = ", ".join(f"{row[0]}: CR {row[-1]:.1f}" for row in check)
    lines.append(f"With PRD taken on whole 30-min records against ADC − 1024, the wavelet codec reaches PRD "
                 f"{params.wavelet_target_prd} % only at a far lower CR ({reach}); target A asks for CR 32.25 at that PRD, "
                 "the figure Yildirim et al. report under their own evaluation protocol. "
                 "Target B's R-peak criterion is bounded by the detector itself: ")
    if original:
        per_record = [(r["condition"]["record"], r["metrics"]["rpeak_f1"]) for r in results.rows
                      if r["method"] == "original" and "record" in r["condition"]]
        lines.append("XQRS on the *original* signal scores F1 " + ", ".join(f"{n}: {f:.3f}" for n, f in per_record)
                     + ", so no codec can reach F1 ≥ 0.99 on a record where the original stays below it.\n")
    else:
        lines.append("(no reference beat annotations in these records).\n")
    lines.append("\n## Literature\n")
    lines.append(markdown_table(["reference", "CR", "PRD %", "note"], LITERATURE, 2))
    lines.append("\nYildirim Ö., Tan R.S., Acharya U.R. (2018), *An efficient compression of ECG signals using deep convolutional "
                 "autoencoders*, Cognitive Systems Research 52:198–211.\n")
    lines.append("\n## Figures\n")
    normal_case = cases[0]
    lines.append(f"![normal stretch]({_plot_stretch(paths, normal_case, decoded, labels, _stretch(normal_case, None), 'normal_stretch.png', f'record {normal_case.name}: normal rhythm')})\n")
    with_pvcs = [c for c in cases if c.beats is not None and "V" in set(c.beats[1])]
    if with_pvcs:
        pvc_case = max(with_pvcs, key=lambda c: int(np.sum(c.beats[1] == "V")))
        lines.append(f"![PVC stretch]({_plot_stretch(paths, pvc_case, decoded, labels, _stretch(pvc_case, 'V'), 'pvc_stretch.png', f'record {pvc_case.name}: around a PVC (V beat)')})\n")
    lines.append(f"![rate-distortion]({_plot_rd(paths, curve, [c.name for c in cases])})\n")
    lines.append(f"![error distribution]({_plot_errors(paths, cases, decoded, labels[0])})\n")
    lines.append("\n## Models\n")
    lines.append(markdown_table(["model", "config", "best val loss", "epochs", "train s"], [
        [name, f"{m.model.config.name}, channels {list(m.model.config.channels)}, strides {list(m.model.config.strides)}, "
               f"{m.model.config.latent_channels} code channels, {m.model.config.code_bits} bits",
         m.info.get("best_val_loss"), m.info.get("epochs_run"), m.info.get("train_seconds")] for name, m in loaded.items()], 4))
    write_text(paths.report, "\n".join(lines))
    write_plot_csv(paths.plots / "rate_distortion.csv", curve)
