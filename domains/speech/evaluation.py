"""The downstream comparison: codes vs MFCCs, same classifier, same speaker-disjoint folds, same noise.

For each fold the classifier is fitted on the clean features of the training speakers and
scored on the held-out speakers, clean and with white noise added to their recordings.
Both methods see exactly the same noisy waveforms. The design ablations retrain the encoder
per arm on an inner leave-one-speaker-out without the test speakers (`ablation`).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from latente.domains.speech import DOMAIN
from latente.domains.speech.baselines import Mfcc
from latente.domains.speech.data import Corpus, fold_name, held_out_mask, noisy, read_prepared
from latente.domains.speech.metrics import METHODS, Arm, Comparison, Condition, classification_scores, speaker_probe
from latente.domains.speech.model import LinearClassifier, SpeechModel, model_config
from latente.domains.speech.params import DESIGN_ARM, ClassifierParams, EvaluateParams, FeatureParams, MfccParams, TrainParams
from latente.domains.speech.report import build_report, clip_index
from latente.shared.errors import UserError
from latente.domains.speech.training import spectrograms, train_fold
from latente.shared.io import atomic_dir, write_text
from latente.shared.params import PARAMS_FILE, validate
from latente.shared.report import load_references
from latente.shared.stage import DomainPaths


def speaker_standardised(features: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Each speaker's features standardised with that speaker's own mean and standard deviation.

    Test-speaker adaptation from unlabelled audio (per-speaker CMVN on the features): allowed
    only in the rows reported apart (`adaptation: speaker`), because it reads the held-out
    speaker's own statistics.
    """
    out = np.empty_like(features, dtype=np.float64)
    for speaker in sorted(set(speakers.tolist())):
        mine = speakers == speaker
        out[mine] = (features[mine] - features[mine].mean(0)) / (features[mine].std(0) + 1e-6)
    return out


def compare(
    corpus: Corpus,
    folds: Sequence[tuple[str, ...]],
    encoder_for: Callable[[tuple[str, ...]], SpeechModel],
    snr_db: Sequence[float],
    noise_seed: int,
    mfcc: MfccParams,
    classifier: ClassifierParams,
    sample_rate: int,
) -> Comparison:
    """Fit on the training speakers of each fold, score its held-out speakers under every condition."""
    conditions: list[Condition] = [None, *snr_db]
    tested = np.zeros(len(corpus), dtype=bool)
    for fold in folds:
        tested |= held_out_mask(corpus.speakers, fold)
    test_index = np.flatnonzero(tested)
    waves = {c: ([corpus.recordings[i] for i in test_index] if c is None else noisy([corpus.recordings[i] for i in test_index], c, noise_seed)) for c in conditions}
    position = {int(i): k for k, i in enumerate(test_index)}

    started = time.perf_counter()
    mfcc_features = Mfcc(mfcc, sample_rate)
    mfcc_clean = mfcc_features(corpus.recordings).numpy()
    seconds = {"mfcc": time.perf_counter() - started}
    mfcc_test = {c: (mfcc_clean[test_index] if c is None else mfcc_features(waves[c]).numpy()) for c in conditions}

    comparison = Comparison(conditions, {"mfcc": mfcc.dims}, seconds, tested=tested)
    for method in METHODS:
        for c in conditions:
            comparison.predictions[(method, c)] = np.full(len(corpus), None, dtype=object)
    model_seconds: list[float] = []
    for fold in folds:
        print(f"scoring held-out {', '.join(fold)}", file=sys.stderr)
        held = held_out_mask(corpus.speakers, fold)
        train = np.flatnonzero(~held)
        test = np.flatnonzero(held)
        at = [position[int(i)] for i in test]
        model = encoder_for(fold)
        started = time.perf_counter()
        codes = model.encode(corpus.recordings).numpy()
        model_seconds.append(time.perf_counter() - started)
        comparison.dims["model"] = codes.shape[1]
        training_features = {"model": codes[train], "mfcc": mfcc_clean[train]}
        fit = lambda features: LinearClassifier.fit(features, corpus.labels[train], corpus.speakers[train], classifier)  # noqa: E731
        fitted = {method: fit(f) for method, f in training_features.items()}
        adapted = {method: fit(speaker_standardised(f, corpus.speakers[train])) for method, f in training_features.items()}
        for method in METHODS:
            comparison.chosen_C[(method, fold_name(fold))] = fitted[method].C
            comparison.speaker_probe[(method, fold_name(fold))] = speaker_probe(training_features[method], corpus.speakers[train])
        comparison.probe_chance[fold_name(fold)] = 1.0 / len(set(corpus.speakers[train].tolist()))
        for c in conditions:
            test_codes = codes[test] if c is None else model.encode([waves[c][k] for k in at]).numpy()
            test_features = {"model": test_codes, "mfcc": mfcc_test[c][at]}
            for method in METHODS:
                predicted = fitted[method].predict(test_features[method])
                comparison.predictions[(method, c)][test] = predicted
                predicted_adapted = adapted[method].predict(speaker_standardised(test_features[method], corpus.speakers[test]))
                for speaker in fold:
                    mine = corpus.speakers[test] == speaker
                    comparison.per_speaker[(method, c, speaker)] = classification_scores(corpus.labels[test][mine], predicted[mine])
                    comparison.adapted[(method, c, speaker)] = classification_scores(corpus.labels[test][mine], predicted_adapted[mine])
    comparison.seconds["model"] = float(np.mean(model_seconds))
    return comparison


def arm_settings(design: TrainParams, features: FeatureParams, changes: dict[str, dict[str, Any]], where: str) -> tuple[TrainParams, FeatureParams]:
    """The design's training params and spectrogram features with an arm's changes, key by key within
    each section, validated as params.yaml would be (`where` names the arm in errors)."""
    train = design.model_dump(mode="json")
    for section, values in changes.items():
        if section != "features":
            train[section] = {**train[section], **values}
    return (validate(TrainParams, train, where),
            validate(FeatureParams, {**features.model_dump(mode="json"), **changes.get("features", {})}, f"{where}.features"))


def without_speakers(corpus: Corpus, speakers: Sequence[str]) -> Corpus:
    keep = np.flatnonzero(~held_out_mask(corpus.speakers, speakers))
    return Corpus([corpus.names[i] for i in keep], [corpus.recordings[i] for i in keep], corpus.labels[keep], corpus.speakers[keep])


def ablation_settings(design: TrainParams, features: FeatureParams, params: EvaluateParams) -> dict[str, tuple[TrainParams, FeatureParams]]:
    """The design and each of `params.ablation`'s arms, validated (before anything is scored)."""
    return {DESIGN_ARM: (design, features)} | {
        name: arm_settings(design, features, changes, f"{DOMAIN}.evaluate.ablation.{name}") for name, changes in params.ablation.items()}


def ablation(corpus: Corpus, settings: dict[str, tuple[TrainParams, FeatureParams]], label_pattern: str, params: EvaluateParams) -> list[Arm]:
    """Every arm of `ablation_settings`, trained (`train_fold`, one encoder per fold) and scored
    (`compare`) on the leave-one-speaker-out of the speakers other than the design's `test_speakers`,
    whose recordings are dropped before anything is computed."""
    excluded = settings[DESIGN_ARM][0].test_speakers
    inner = without_speakers(corpus, excluded)
    folds = [(speaker,) for speaker in sorted(set(inner.speakers.tolist()))]
    if len(folds) < 2:
        raise UserError(f"{PARAMS_FILE}: {DOMAIN}.evaluate.ablation", f"needs two or more speakers besides {', '.join(excluded)}; the corpus has {len(folds)}")
    arms = []
    for name, (train, arm_features) in settings.items():
        print(f"ablation arm {name}: {len(folds)} folds without {', '.join(excluded)}", file=sys.stderr)
        config = model_config(train.model, arm_features)
        specs = spectrograms(inner.recordings, arm_features, train.augment, train.trainer.seed)
        models, started = {}, time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            for fold in folds:
                models[fold], _ = train_fold(specs, inner.labels.tolist(), inner.speakers.tolist(), fold, train, arm_features, config,
                                             label_pattern, Path(work) / fold_name(fold), None, {"ablation": name})
        seconds = time.perf_counter() - started
        comparison = compare(inner, folds, models.__getitem__, params.snr_db, params.noise_seed, params.mfcc, train.classifier, arm_features.sample_rate)
        arms.append(Arm(name, params.ablation.get(name, {}), comparison, seconds))
    return arms


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """The evaluate stage: score every fold model and the MFCC baseline on their held-out speakers; metrics.json and the report."""
    prepared = read_prepared(paths.prepared)
    main = SpeechModel.load(paths.model)
    if main.features != prepared.features:
        raise UserError(paths.model, f"was trained on other features than {paths.prepared}", f"rerun `dvc repro train@{DOMAIN}`")
    if params.interpolation:  # a misnamed clip stops here, not after the scoring
        for end in ("start", "end"):
            clip_index(prepared.corpus, getattr(params.interpolation, end), f"interpolation.{end}")
    settings = ablation_settings(main.training, prepared.features, params)
    models = {fold_name(e["held_out"]): SpeechModel.load(paths.model / e["folder"]) for e in main.info["folds"]}
    held_out = [tuple(e["held_out"]) for e in main.info["folds"]]
    scored = [f for f in held_out if len(f) == 1] if main.info["loso"] else held_out[:1]
    comparison = compare(
        prepared.corpus, scored, lambda fold: models[fold_name(fold)], params.snr_db, params.noise_seed,
        params.mfcc, main.training.classifier, prepared.features.sample_rate,
    )
    source = f"{prepared.dataset['root']} ({'Speech Commands' if prepared.dataset['kind'] == 'speechcommands' else 'labelled folder'})"
    if Path(prepared.dataset["root"]).resolve().is_relative_to(paths.raw.resolve()):
        source = f"FSDD v1.0.10 ({len(set(prepared.corpus.speakers.tolist()))} speakers) from fetch@{DOMAIN}, {prepared.dataset['root']}"
    arms = ablation(prepared.corpus, settings, prepared.label_pattern, params) if params.ablation else []
    results = comparison.results(source, sorted({s for f in scored for s in f}), arms)
    scored_models = {name: models[name] for name in map(fold_name, scored)}
    with atomic_dir(paths.figures) as figures, atomic_dir(paths.plots) as plots:
        text = build_report(figures, plots, comparison, results, load_references(DOMAIN), prepared.corpus, main, scored_models, params, source, arms)
    results.write(paths.metrics)
    write_text(paths.report, text)
