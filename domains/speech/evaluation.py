"""The downstream comparison: codes vs MFCCs, same classifier, same speaker-disjoint folds, same noise.

For each fold the classifier is fitted on the clean features of the training speakers and
scored on the held-out speakers, clean and with white noise added to their recordings.
Both methods see exactly the same noisy waveforms.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import f1_score

from latente.domains.speech.audio import add_white_noise, load_audio, warn
from latente.domains.speech.data import Utterance, held_out_mask
from latente.domains.speech.features import Mfcc
from latente.domains.speech.model import LinearClassifier, SpeechModel
from latente.domains.speech.params import ClassifierParams, MfccParams
from latente.shared.results import Results

METHODS = ("model", "mfcc")
Condition = float | None  # SNR in dB; None is clean


@dataclass
class Corpus:
    """Recordings at the feature rate with their labels and speakers."""

    names: list[str]
    recordings: list[torch.Tensor]
    labels: np.ndarray
    speakers: np.ndarray

    @classmethod
    def read(cls, utterances: Sequence[Utterance], sample_rate: int, root: Path | None = None) -> "Corpus":
        recordings, clipped = [], []
        for u in utterances:
            samples, was_clipped = load_audio(u.path, sample_rate)
            recordings.append(samples)
            if was_clipped:
                clipped.append(u.path)
        if clipped:
            warn(clipped[0], f"audio is clipped (runs of full-scale samples){f'; so are {len(clipped) - 1} more files' if len(clipped) > 1 else ''}")
        names = [str(u.path.relative_to(root)) if root else str(u.path) for u in utterances]
        return cls(names, recordings, np.array([u.label for u in utterances]), np.array([u.speaker for u in utterances]))

    def __len__(self) -> int:
        return len(self.recordings)


def noisy(recordings: Sequence[torch.Tensor], snr_db: float, seed: int) -> list[torch.Tensor]:
    """White noise at `snr_db` on every recording; a function of the seed, the SNR and the recordings only."""
    generator = torch.Generator().manual_seed(seed * 100_003 + int(round((snr_db + 1000.0) * 10)))
    return [add_white_noise(r, snr_db, generator) for r in recordings]


@dataclass
class Comparison:
    """Per-speaker metrics and every held-out prediction, per method and condition.

    `seconds` is the time to turn the whole clean corpus into features (for the model: mean
    over folds of log-mel + encoder), `dims` the feature size of each method.
    """

    conditions: list[Condition]
    dims: dict[str, int]
    seconds: dict[str, float]
    per_speaker: dict[tuple[str, Condition, str], dict[str, float]] = field(default_factory=dict)
    predictions: dict[tuple[str, Condition], np.ndarray] = field(default_factory=dict)
    tested: np.ndarray | None = None

    def speakers(self) -> list[str]:
        return sorted({key[2] for key in self.per_speaker})

    def mean(self, method: str, condition: Condition) -> dict[str, float]:
        rows = [m for (meth, cond, _), m in self.per_speaker.items() if meth == method and cond == condition]
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    def results(self, source: str, items: list[str]) -> Results:
        out = Results("speech", source, items)
        for method in METHODS:
            for condition in self.conditions:
                extra = {"dims": self.dims[method], "seconds": self.seconds[method]} if condition is None else {}
                out.add(method, {**self.mean(method, condition), **extra}, **_condition(condition))
            for condition in self.conditions:
                for speaker in self.speakers():
                    out.add(method, self.per_speaker[(method, condition, speaker)], speaker=speaker, **_condition(condition))
        return out


def _condition(condition: Condition) -> dict[str, float]:
    return {} if condition is None else {"snr_db": condition}


def _metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {"accuracy": float((truth == predicted).mean()), "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0))}


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
        fitted = {
            "model": LinearClassifier.fit(codes[train], corpus.labels[train], classifier),
            "mfcc": LinearClassifier.fit(mfcc_clean[train], corpus.labels[train], classifier),
        }
        for c in conditions:
            test_codes = codes[test] if c is None else model.encode([waves[c][k] for k in at]).numpy()
            test_features = {"model": test_codes, "mfcc": mfcc_test[c][at]}
            for method in METHODS:
                predicted = fitted[method].predict(test_features[method])
                comparison.predictions[(method, c)][test] = predicted
                for speaker in fold:
                    mine = corpus.speakers[test] == speaker
                    comparison.per_speaker[(method, c, speaker)] = _metrics(corpus.labels[test][mine], predicted[mine])
    comparison.seconds["model"] = float(np.mean(model_seconds))
    return comparison
