"""reports/speech: accuracy tables, confusion matrices, code projections, spectrograms and audio."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import soundfile as sf
import torch

from latente.domains.speech import DOMAIN
from latente.domains.speech.data import FLOOR_QUANTILE, VOICE_DB, Corpus, GriffinLimInverter, noisy
from latente.domains.speech.metrics import METHODS, Arm, Comparison, Condition, confusion_matrix
from latente.domains.speech.model import SpeechModel, encode_batches
from latente.domains.speech.params import SPEED_STEPS, AugmentParams, ClassifierParams, EvaluateParams, FeatureParams, SupervisionParams
from latente.shared.errors import UserError
from latente.shared.io import write_bytes
from latente.shared.params import InterpolationParams
from latente.shared.report import (
    Anchor, References, check_target, figure_backend, markdown_table, projection, save_figure, target_table, write_plot_csv,
)
from latente.shared.results import Results

PROJECTION_NAMES = {"pca": "PCA", "tsne": "t-SNE"}
METHOD_NAMES = {"model": "code", "mfcc": "MFCC"}


def condition_name(condition: Condition) -> str:
    return "clean" if condition is None else f"{condition:g} dB SNR"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def target_snr(comparison: Comparison, references: References) -> Condition:
    """The noise level a target is set at, if it was tested: the figures show the condition the targets judge."""
    for target in references.targets:
        snr = target.condition.get("snr_db")
        if snr is not None and snr in comparison.conditions:
            return float(snr)
    return None


def anchor_table(anchors: Sequence[Anchor], results: Results) -> str:
    """Published figures beside this run's overall clean scores, on the metrics the anchors report."""
    metrics = sorted({name for anchor in anchors for name in anchor.values})
    rows = [(anchor.label, *[pct(anchor.values.get(m)) for m in metrics], anchor.protocol) for anchor in anchors]
    rows += [(f"this run: {METHOD_NAMES[method]}", *[pct(results.find(method).get(m)) for m in metrics],
              "held-out speakers (every test speaker unseen), clean recordings") for method in METHODS]
    return markdown_table(["", *metrics, "protocol"], rows)


# --- figures -----------------------------------------------------------------------------------
def confusion_figure(comparison: Comparison, corpus: Corpus, classes: Sequence[str], noisy_condition: Condition):
    import matplotlib.pyplot as plt

    conditions = [None] + ([] if noisy_condition is None else [noisy_condition])
    fig, axes = plt.subplots(len(conditions), 2, figsize=(9, 4.3 * len(conditions)), squeeze=False)
    tested = comparison.tested
    for row, condition in enumerate(conditions):
        for col, method in enumerate(METHODS):
            matrix = confusion_matrix(corpus.labels[tested], comparison.predictions[(method, condition)][tested], classes)
            ax = axes[row, col]
            ax.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
            for i in range(len(classes)):
                for j in range(len(classes)):
                    if matrix[i, j] >= 0.005:
                        ax.text(j, i, f"{100 * matrix[i, j]:.0f}", ha="center", va="center", fontsize=7, color="white" if matrix[i, j] > 0.5 else "black")
            ax.set_xticks(range(len(classes)), classes)
            ax.set_yticks(range(len(classes)), classes)
            ax.set_xlabel("predicted")
            ax.set_ylabel("spoken")
            acc = comparison.mean(method, condition)["accuracy"]
            ax.set_title(f"{METHOD_NAMES[method]}, {condition_name(condition)}: {pct(acc)}")
    fig.suptitle("Held-out speakers, row-normalised %")
    fig.tight_layout()
    return fig


def projection_figure(points: dict[str, np.ndarray], corpus: Corpus, held_out: Sequence[str]):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 10))
    for row, (name, xy) in enumerate(points.items()):
        for col, (title, values) in enumerate((("spoken label", corpus.labels), ("speaker", corpus.speakers))):
            ax = axes[row, col]
            kinds = sorted(set(values.tolist()))
            cmap = plt.get_cmap("tab10" if len(kinds) <= 10 else "tab20")
            for k, kind in enumerate(kinds):
                mask = values == kind
                marker_label = f"{kind} (held out)" if title == "speaker" and kind in held_out else kind
                ax.scatter(xy[mask, 0], xy[mask, 1], s=5, alpha=0.7, color=cmap(k % cmap.N), label=marker_label)
            ax.set_title(f"{PROJECTION_NAMES[name]} of the codes, coloured by {title}")
            ax.legend(markerscale=3, fontsize=7, loc="best")
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig


def spectrogram_figure(rows: list[tuple[str, list[torch.Tensor]]], titles: list[str], floor_db: float):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(titles), figsize=(3.2 * len(titles), 2.2 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image.squeeze().numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-floor_db, vmax=0.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.tight_layout()
    return fig


def accuracy_figure(comparison: Comparison):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    names = [condition_name(c) for c in comparison.conditions]
    for method, label in (("model", "code (AE)"), ("mfcc", "MFCC")):
        ax.plot(names, [100 * comparison.mean(method, c)["accuracy"] for c in comparison.conditions], marker="o", label=label)
    ax.set_ylabel("held-out speaker accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def wav_bytes(samples: torch.Tensor, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples.clamp(-1, 1).numpy(), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# --- the report ----------------------------------------------------------------------------------
def build_report(
    figures: Path, plots: Path, comparison: Comparison, results: Results, references: References, corpus: Corpus,
    main: SpeechModel, fold_models: dict[str, SpeechModel], params: EvaluateParams, source: str, arms: Sequence[Arm] = (),
) -> str:
    """Write figures (with audio under figures/audio) and plot data; return report.md's text."""
    figure_backend()
    held_out = main.info.get("held_out", [])
    classes = sorted(set(corpus.labels.tolist()))
    shown_snr = target_snr(comparison, references)

    save_figure(confusion_figure(comparison, corpus, classes, shown_snr), figures / "confusion.png")
    save_figure(accuracy_figure(comparison), figures / "accuracy_vs_snr.png")
    write_plot_csv(plots / "accuracy_vs_snr.csv", [
        {"condition": condition_name(c), "snr_db": "" if c is None else c,
         **{f"{m}_accuracy": round(comparison.mean(m, c)["accuracy"], 4) for m in METHODS}}
        for c in comparison.conditions
    ])

    codes = main.encode(corpus.recordings).numpy()
    points = projection(codes)
    save_figure(projection_figure(points, corpus, held_out), figures / "projection.png")
    write_plot_csv(plots / "projection.csv", [
        {"file": name, "label": label, "speaker": speaker, "held_out": speaker in held_out,
         "pca_1": round(float(p[0]), 5), "pca_2": round(float(p[1]), 5), "tsne_1": round(float(t[0]), 5), "tsne_2": round(float(t[1]), 5)}
        for name, label, speaker, p, t in zip(corpus.names, corpus.labels, corpus.speakers, points["pca"], points["tsne"])
    ])

    chosen = _examples(corpus, held_out, params.examples)
    snr = comparison.conditions[-1] if shown_snr is None else shown_snr
    clean_waves = [corpus.recordings[i] for i in chosen]
    noisy_waves = noisy(clean_waves, snr, params.noise_seed) if snr is not None else clean_waves
    spec_clean, spec_noisy = main.spectrograms(clean_waves), main.spectrograms(noisy_waves)
    recon_clean, recon_noisy = main.reconstruct(spec_clean), main.reconstruct(spec_noisy)
    to_db = main.normaliser.inverse
    titles = [f"{corpus.labels[i]} · {corpus.speakers[i]}" for i in chosen]
    rows = [
        ("original", list(to_db(spec_clean))), ("reconstruction", list(to_db(recon_clean))),
        (f"input at {snr:g} dB", list(to_db(spec_noisy))), ("its reconstruction", list(to_db(recon_noisy))),
    ]
    save_figure(spectrogram_figure(rows, titles, main.features.top_db), figures / "spectrograms.png")

    rate = main.features.sample_rate
    inverter = GriffinLimInverter(main.features)
    audio_rows = []
    for k, i in enumerate(chosen):
        stem = Path(corpus.names[i]).stem
        fixed = lambda w: main.logmel.fixed([w])[0]  # noqa: E731
        files = {  # file suffix: (column title, samples)
            "original": ("original clip", fixed(clean_waves[k])),
            "original_griffinlim": ("Griffin-Lim of its spectrogram", inverter(to_db(spec_clean[k, 0]))),
            "reconstruction_griffinlim": ("Griffin-Lim of the reconstruction", inverter(to_db(recon_clean[k, 0]))),
            f"noisy_{snr:g}db": (f"clip with noise at {snr:g} dB", fixed(noisy_waves[k]) / max(1.0, float(noisy_waves[k].abs().max()))),
            f"noisy_{snr:g}db_reconstruction_griffinlim": ("Griffin-Lim of its reconstruction", inverter(to_db(recon_noisy[k, 0]))),
        }
        for kind, (_, samples) in files.items():
            write_bytes(figures / "audio" / f"{stem}_{kind}.wav", wav_bytes(samples, rate))
        audio_rows.append((stem, *[f"[{kind}.wav](figures/audio/{stem}_{kind}.wav)" for kind in files]))
    audio_headers = ["clip", *[title for title, _ in files.values()]]
    path_lines = interpolation(main, corpus, params.interpolation, figures, plots) if params.interpolation else []

    return _markdown(comparison, results, references, corpus, main, fold_models, params, held_out, audio_headers, audio_rows, path_lines, source, snr, arms)


def interpolation(main: SpeechModel, corpus: Corpus, params: InterpolationParams, figures: Path, plots: Path) -> list[str]:
    """The decoded path between two clips' codes: per step a spectrogram image, its Griffin-Lim audio and the digit
    the main model's classifier reads from that code (plots/interpolation.csv, for the site's slider); returns the
    report's lines."""
    ends = [clip_index(corpus, name, f"interpolation.{end}") for end, name in (("start", params.start), ("end", params.end))]
    spectrograms = main.spectrograms([corpus.recordings[i] for i in ends])
    codes = encode_batches(main.autoencoder, spectrograms)
    t = torch.linspace(0.0, 1.0, params.steps)
    path = (1 - t[:, None]) * codes[0] + t[:, None] * codes[1]
    decoded = main.normaliser.inverse(main.decode(path, tuple(spectrograms.shape[2:])))
    predicted = main.classifier.predict(path.numpy())
    inverter = GriffinLimInverter(main.features)
    floor_db = main.features.top_db
    rows = []
    for step, (position, image) in enumerate(zip(t.tolist(), decoded)):
        stem = f"interpolation/step_{step:02d}"
        write_bytes(figures / f"{stem}.wav", wav_bytes(inverter(image[0]), main.features.sample_rate))
        save_figure(spectrogram_figure([("", [image])], [f"t = {position:.3g}"], floor_db), figures / f"{stem}.png")
        rows.append({"step": step, "t": round(position, 6), "start": params.start, "end": params.end,
                     "predicted": predicted[step], "audio": f"figures/{stem}.wav", "image": f"figures/{stem}.png"})
    write_plot_csv(plots / "interpolation.csv", rows)
    strip = [("decoded", list(decoded))]
    save_figure(spectrogram_figure(strip, [f"t = {r['t']:.3g}: {r['predicted']}" for r in rows], floor_db), figures / "interpolation.png")
    flips = [r["t"] for before, r in zip(rows, rows[1:]) if r["predicted"] != before["predicted"]]
    return [
        f"The codes of {params.start} and {params.end} joined by a straight line and decoded at {params.steps} evenly spaced "
        "points (the site's slider plays each one; `plots/interpolation.csv`). Above each spectrogram, the digit the main "
        "model's classifier reads from that code" + (f"; it changes at t = {', '.join(f'{x:.3g}' for x in flips)}." if flips else
                                                     "; it does not change along the path."),
        "",
        "![interpolation](figures/interpolation.png)",
        "",
    ]


def clip_index(corpus: Corpus, name: str, key: str) -> int:
    """The corpus position of the clip `name`, or one error line naming the params key."""
    found = np.flatnonzero(np.asarray(corpus.names) == name)
    if not len(found):
        raise UserError(f"params.yaml: {DOMAIN}.evaluate.{key}", f"no clip named {name!r} in the corpus",
                        f"name one of its files, e.g. {corpus.names[0]}")
    return int(found[0])


def _examples(corpus: Corpus, held_out: Sequence[str], count: int) -> list[int]:
    """The first clip of `count` different labels, from the main model's held-out speakers."""
    chosen, seen = [], set()
    for i in np.flatnonzero(np.isin(corpus.speakers, list(held_out))):
        if corpus.labels[i] not in seen:
            chosen.append(int(i))
            seen.add(corpus.labels[i])
        if len(chosen) == count:
            break
    return chosen


def _losses(comparison: Comparison) -> str:
    """One sentence naming every (speaker, condition) where the code scores below MFCC."""
    worse = [f"{s} ({condition_name(c)}: {pct(comparison.per_speaker[('model', c, s)]['accuracy'])} vs {pct(comparison.per_speaker[('mfcc', c, s)]['accuracy'])})"
             for c in comparison.conditions for s in comparison.speakers()
             if comparison.per_speaker[("model", c, s)]["accuracy"] < comparison.per_speaker[("mfcc", c, s)]["accuracy"]]
    if not worse:
        return "The code scores at least as well as MFCC for every held-out speaker in every condition.\n"
    return "The code scores below MFCC for: " + "; ".join(worse) + ".\n"


def per_speaker_table(comparison: Comparison) -> str:
    """Accuracy per held-out speaker, every condition, code then MFCC (the report's and `latente speech evaluate`'s)."""
    return markdown_table(
        ["held-out speaker", *[f"{METHOD_NAMES[m]}, {condition_name(c)}" for m in METHODS for c in comparison.conditions]],
        [(s, *[pct(comparison.per_speaker[(m, c, s)]["accuracy"]) for m in METHODS for c in comparison.conditions]) for s in comparison.speakers()],
    )


def _classifier_search(comparison: Comparison, classifier: ClassifierParams) -> str:
    """The C each fold's search chose, per method: the same search, on the training speakers only."""
    grid = ", ".join(f"{c:g}" for c in classifier.C)
    if len(classifier.C) == 1:
        return f"Both classifiers use C = {grid} (no search).\n"
    folds = sorted({fold for _, fold in comparison.chosen_C})
    table = markdown_table(["held-out speaker(s)", *[f"C for {METHOD_NAMES[m]}" for m in METHODS]],
                           [(fold, *[f"{comparison.chosen_C[(m, fold)]:g}" for m in METHODS]) for fold in folds])
    return (f"C is chosen from {{{grid}}} separately for each method and fold by the same search: leave-one-speaker-out "
            "accuracy over that fold's training speakers (the held-out speaker plays no part).\n\n" + table)


def _speaker_probe(comparison: Comparison) -> str:
    """How well the speaker can be named from each feature set (lower: more speaker-independent)."""
    folds = sorted(comparison.probe_chance)
    table = markdown_table(["training speakers of the fold without", *[METHOD_NAMES[m] for m in METHODS], "chance"],
                           [(fold, *[pct(probe if np.isfinite(probe := comparison.speaker_probe[(m, fold)]) else None) for m in METHODS],
                             pct(comparison.probe_chance[fold])) for fold in folds])
    return ("A linear probe (StandardScaler + logistic regression, 5 stratified splits of the clean clips) names the speaker "
            "among each fold's training speakers. It measures how much speaker identity the features keep: lower is better "
            "for a speaker-independent feature, and chance is one over the number of speakers.\n\n" + table)


def _denoising(settings: AugmentParams) -> str:
    """How the saved model was trained, from its `augment` settings."""
    if settings.copies == 0:
        return "Trained on the clean spectrograms only."
    low, high = settings.snr_db
    corruptions = []
    if settings.speed_steps() != [SPEED_STEPS]:
        slow, fast = settings.speed
        corruptions.append(f"played at a speed drawn from {slow:g}–{fast:g}× (speed perturbation, Ko et al. 2015: pitch, formants and "
                           "tempo shift together, as between voices)")
    corruptions.append(f"white noise added to its recording at an SNR drawn uniformly from {low:g}–{high:g} dB")
    if settings.freq_mask or settings.time_mask:
        corruptions.append(f"one band of up to {settings.freq_mask} mel bins and one span of up to {settings.time_mask} frames set to the "
                           "clip's mean (SpecAugment, Park et al. 2019)")
    if settings.shift:
        corruptions.append(f"its spectrogram moved by up to {settings.shift} frames either way, the uncovered frames at the clip's floor "
                           "(a speaker who leaves uneven silence around the word no longer moves it in the window)")
    return (f"Denoising training: each training clip is also presented {settings.copies} time(s) {', then '.join(corruptions)}, "
            "with the clean spectrogram as target (Vincent et al., 2008).")


def _supervision(settings: SupervisionParams) -> str:
    """The digit head and invariance term of the training, from the saved model's `supervision` settings."""
    invariance = "" if not settings.invariance_weight else (
        f" An invariance term adds {settings.invariance_weight:g} × the squared distance between each corrupted copy's code and its "
        "clean clip's code, over the batch's code variance.")
    if not settings.digit_weight:
        return "No labels enter the encoder's training." + invariance
    return (f"Supervised autoencoder (Le et al., 2018): while the encoder trains, a linear digit head on the code adds {settings.digit_weight:g} "
            "× its cross-entropy (nats per clip) to the reconstruction error, using the training speakers' labels only; the head is then "
            "dropped, and the code goes through the same classifier and search as MFCC." + invariance)


def _floor(features: FeatureParams) -> str:
    """The spectral subtraction of each band's noise floor, when it is on."""
    if not features.subtract_floor:
        return ""
    return (f", less each band's noise floor (spectral subtraction, Boll 1979: the {FLOOR_QUANTILE:g} quantile of the band's power "
            "over the clip's own recorded frames, negative results set to zero),")


def _alignment(features: FeatureParams) -> str:
    """Where a recording sits in the fixed window, in words."""
    if features.align == "voice":
        averaged = f", its energy averaged over the {features.voice_smoothing} blocks centred on it," if features.voice_smoothing > 1 else ""
        return (f"voice-aligned: the span from the first to the last {features.hop_length}-sample block{averaged} within {VOICE_DB:g} dB of "
                f"the loudest and {features.voice_margin_db:g} dB above the recording's noise floor (its quietest fifth of blocks) is centred")
    return f"{features.align}-aligned"


def changes_text(changes: dict[str, dict[str, Any]]) -> str:
    """An arm's changes as `section.key = value` (params.yaml's names), `as trained` for the design."""
    return "; ".join(f"`{section}.{key} = {value}`" for section, values in changes.items() for key, value in values.items()) or "as trained"


def _ablations(arms: Sequence[Arm], excluded: Sequence[str]) -> list[str]:
    """The design ablations: each arm's mean accuracy per condition and per held-out speaker (clean),
    against the design (the first arm), with the seed arms' spread as the yardstick of noise."""
    if not arms:
        return [f"No ablations were run (`{DOMAIN}.evaluate.ablation` in params.yaml is empty).", ""]
    design, conditions, speakers = arms[0], arms[0].comparison.conditions, arms[0].comparison.speakers()
    clean = {arm.name: arm.comparison.mean("model", None)["accuracy"] for arm in arms}
    rows = [(f"`{arm.name}`", changes_text(arm.changes), *[pct(arm.comparison.mean("model", c)["accuracy"]) for c in conditions],
             "" if arm is design else f"{100 * (clean[arm.name] - clean[design.name]):+.1f} pts",
             *[pct(arm.comparison.per_speaker[("model", None, s)]["accuracy"]) for s in speakers], f"{arm.train_seconds:.0f}")
            for arm in arms]
    rows.append(("MFCC", "the baseline on the same folds", *[pct(design.comparison.mean("mfcc", c)["accuracy"]) for c in conditions], "",
                 *[pct(design.comparison.per_speaker[("mfcc", None, s)]["accuracy"]) for s in speakers], ""))
    seeds = [arm for arm in arms[1:] if set(arm.changes) == {"trainer"} and set(arm.changes["trainer"]) == {"seed"}]
    spread = (f"The design trained with another seed ({', '.join(f'`{a.name}`' for a in seeds)}) moves clean accuracy by up to "
              f"{100 * max(abs(clean[a.name] - clean[design.name]) for a in seeds):.1f} points: a difference of that size is seed noise, "
              "not the arm's doing." if seeds else "No arm changes only the seed, so the table carries no measure of seed noise.")
    return [
        f"Each arm is `{DOMAIN}.train` as this model was trained, with the changes listed (params.yaml: `{DOMAIN}.evaluate.ablation`). "
        f"It is trained and scored like the rows above (one encoder per fold, the same classifier search and noisy waveforms), on a "
        f"leave-one-speaker-out over {', '.join(speakers)}: {', '.join(excluded)} is dropped altogether, so no choice these figures "
        f"justify saw {', '.join(excluded)}'s recordings. Accuracy, mean over the held-out speakers (the code; MFCC last).",
        "",
        markdown_table(["arm", "changes", *[condition_name(c) for c in conditions], "clean − design",
                        *[f"{s}, clean" for s in speakers], "training (s)"], rows),
        spread,
        "",
    ]


def _markdown(comparison, results, references, corpus, main, fold_models, params, held_out, audio_headers, audio_rows, path_lines, source, snr, arms) -> str:
    speakers = comparison.speakers()
    fits = {name: m.info["fit"] for name, m in fold_models.items()}
    fit_seconds = [f["seconds"] for f in fits.values()]
    training = ", ".join(f"without {name}: {f['epochs_run']} epochs, {f['seconds']:.0f} s" for name, f in fits.items())
    train = main.training
    config, features, mfcc, classifier = main.autoencoder.config, main.features, params.mfcc, train.classifier
    checks = [check_target(results, target) for target in references.targets]
    lines = [
        "# Speech: spectrogram autoencoder codes for spoken digits by unseen speakers",
        "",
        f"Data: {source}; {len(corpus)} clips, {len(set(corpus.speakers.tolist()))} speakers, "
        f"labels {', '.join(sorted(set(corpus.labels.tolist())))}. Every score below is on speakers the "
        f"autoencoder and the classifier never heard ({'leave-one-speaker-out: ' + str(len(speakers)) + ' models' if len(fold_models) > 1 else 'held out: ' + ', '.join(speakers)}).",
        "",
        "## Targets",
        "",
        (f"Set in params.yaml (`references.{DOMAIN}.targets`); accuracy as a fraction, mean over held-out speakers "
         "(`snr_db`: white noise at that SNR).") if checks else f"No targets are set in params.yaml (`references.{DOMAIN}.targets`).",
        "",
        target_table(checks) if checks else "",
        "## Accuracy (mean over held-out speakers)",
        "",
        markdown_table(
            ["condition", "code accuracy", "code macro-F1", "MFCC accuracy", "MFCC macro-F1", "code − MFCC"],
            [
                (condition_name(c), pct(comparison.mean("model", c)["accuracy"]), f"{comparison.mean('model', c)['macro_f1']:.3f}",
                 pct(comparison.mean("mfcc", c)["accuracy"]), f"{comparison.mean('mfcc', c)['macro_f1']:.3f}",
                 f"{100 * (comparison.mean('model', c)['accuracy'] - comparison.mean('mfcc', c)['accuracy']):+.1f} pts")
                for c in comparison.conditions
            ],
        ),
        "White noise is added to each held-out recording at the given SNR (relative to the recording's mean power); "
        "both methods see the same noisy waveforms, and both classifiers (StandardScaler + logistic regression, "
        f"at most {classifier.max_iter} iterations) are fitted on the clean features of the training speakers.",
        "",
        _classifier_search(comparison, classifier),
        "### Speaker information in the features",
        "",
        _speaker_probe(comparison),
        "### Per speaker (accuracy)",
        "",
        per_speaker_table(comparison),
        _losses(comparison),
        "### Adapted to each speaker's own unlabelled audio (reported apart)",
        "",
        "Here every speaker's features, the held-out speaker's included, are standardised with that speaker's own mean and "
        "standard deviation before the classifier (per-speaker CMVN on the features). It reads the held-out speaker's "
        "statistics, from unlabelled clips in the scored condition, so it is a test-time adaptation and never enters the rows above.",
        "",
        markdown_table(
            ["condition", "code accuracy", "MFCC accuracy", "code − MFCC", "code: change from adaptation", "MFCC: change from adaptation"],
            [
                (condition_name(c), pct(comparison.mean("model", c, adapted=True)["accuracy"]), pct(comparison.mean("mfcc", c, adapted=True)["accuracy"]),
                 f"{100 * (comparison.mean('model', c, adapted=True)['accuracy'] - comparison.mean('mfcc', c, adapted=True)['accuracy']):+.1f} pts",
                 *[f"{100 * (comparison.mean(m, c, adapted=True)['accuracy'] - comparison.mean(m, c)['accuracy']):+.1f} pts" for m in METHODS])
                for c in comparison.conditions
            ],
        ),
        "### Feature sets",
        "",
        markdown_table(
            ["features", "dimensions", "seconds to compute for all clean clips"],
            [("autoencoder code (log-mel → conv encoder)", comparison.dims["model"], f"{comparison.seconds['model']:.1f}"),
             (f"MFCC {comparison.dims['mfcc'] // 6} + Δ + ΔΔ, mean + std pooled", comparison.dims["mfcc"], f"{comparison.seconds['mfcc']:.1f}")],
        ),
        f"Training: {len(fold_models)} model(s), {sum(fit_seconds):.0f} s in all ({training}).",
        "",
        "## Design ablations",
        "",
        *_ablations(arms, held_out),
        "## Published figures",
        "",
        anchor_table(references.anchors, results),
        *[f"- {anchor.label}: {anchor.citation}" for anchor in references.anchors],
        "",
        "## Figures",
        "",
        "Confusion matrices of the held-out predictions (every clip is predicted by the model that did not hear its speaker):",
        "",
        "![confusion](figures/confusion.png)",
        "",
        "![accuracy vs SNR](figures/accuracy_vs_snr.png)",
        "",
        f"Codes of every clip from the main model (held out: {', '.join(held_out)}), projected to 2-D "
        "(points with labels in `plots/projection.csv`):",
        "",
        "![projection](figures/projection.png)",
        "",
        f"Log-mel spectrograms (dB relative to the clip maximum) of held-out clips, their reconstructions, the same clips with white noise at {snr:g} dB SNR, and the reconstructions from the noisy input:",
        "",
        "![spectrograms](figures/spectrograms.png)",
        "",
        "## Listening",
        "",
        "Reconstructions turned back into audio with Griffin-Lim (torchaudio `InverseMelScale` + `GriffinLim`); "
        "the Griffin-Lim of the input spectrogram itself shows what the inversion alone costs (phase is lost, and the mel "
        f"spectrogram floors everything {features.top_db:g} dB below the peak).",
        "",
        markdown_table(audio_headers, audio_rows),
        *(["## Latent interpolation", "", *path_lines] if path_lines else []),
        "## Method",
        "",
        f"- **Features.** {features.duration:g} s clips ({_alignment(features)}, padded with silence or cropped) at "
        f"{features.sample_rate} Hz; torchaudio `MelSpectrogram` (n_fft {features.n_fft}, hop {features.hop_length}, "
        f"{features.n_mels} mels){_floor(features)} and `AmplitudeToDB` (top_db {features.top_db:g}) relative to each clip's maximum; "
        "standardised with the mean and standard deviation of the training speakers only.",
        f"- **Model.** `{config.name}` from `latente.shared.models` on {' × '.join(map(str, config.input_size))} spectrograms "
        f"(channels {list(config.channels)}, strides {list(config.strides)}, kernel {config.kernel_size}, flat code of {config.latent_dim} dims). "
        f"{_denoising(train.augment)} {_supervision(train.supervision)} The held-out speaker is never used, not even for validation or normalisation.",
        f"- **Design choices.** params.yaml's defaults were chosen on an inner leave-one-speaker-out over the speakers other than "
        f"{', '.join(held_out)}, whose recordings informed no choice; the design ablations above re-measure the choices there.",
        f"- **Baseline.** torchaudio `MFCC` ({mfcc.n_mfcc} coefficients; n_fft {mfcc.n_fft}, hop {mfcc.hop_length}, {mfcc.n_mels} mels) "
        "with Δ and ΔΔ (`ComputeDeltas`), mean- and std-pooled over the whole recording.",
        "",
        "## References",
        "",
        "- Z. Jackson et al., *Free Spoken Digit Dataset* v1.0.10, github.com/Jakobovski/free-spoken-digit-dataset, archived on Zenodo (zenodo.org/badge/latestdoi/61622039), CC BY-SA 4.0.",
        "- S. Davis, P. Mermelstein, “Comparison of parametric representations for monosyllabic word recognition in continuously spoken sentences”, IEEE TASSP 28(4), 1980.",
        "- P. Vincent, H. Larochelle, Y. Bengio, P.-A. Manzagol, “Extracting and composing robust features with denoising autoencoders”, ICML 2008.",
        "- L. Le, A. Patterson, M. White, “Supervised autoencoders: improving generalization performance with unsupervised regularizers”, NeurIPS 2018.",
        "- T. Ko, V. Peddinti, D. Povey, S. Khudanpur, “Audio augmentation for speech recognition”, Interspeech 2015.",
        "- D. Griffin, J. Lim, “Signal estimation from modified short-time Fourier transform”, IEEE TASSP 32(2), 1984.",
        "",
    ]
    return "\n".join(lines)
