"""The scores: accuracy and macro-F1 of the digit predictions, per held-out speaker, per method and condition.

Every number is per held-out speaker first, then averaged over speakers, so a speaker with
more clips does not weigh more; `Comparison.results` is the one place metrics.json rows are made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import f1_score

from latente.domains.speech import DOMAIN
from latente.shared.results import Results

METHODS = ("model", "mfcc")
Condition = float | None  # SNR in dB; None is clean


def classification_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (every label weighs the same; a label never predicted scores 0)."""
    return {"accuracy": float((truth == predicted).mean()), "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0))}


def speaker_probe(features: np.ndarray, speakers: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """How much speaker identity the features carry: the accuracy with which a linear classifier
    (StandardScaler + logistic regression) names the speaker of held-back clips, over `folds`
    stratified splits (fewer when a speaker has fewer clips). Lower is better for speaker-independent
    features; chance is 1 / speakers. NaN when there is nothing to tell apart."""
    from sklearn.model_selection import StratifiedKFold

    from latente.domains.speech.model import fit_scaled_regression

    speakers = np.asarray(speakers)
    _, counts = np.unique(speakers, return_counts=True)
    folds = min(folds, int(counts.min()))
    if len(counts) < 2 or folds < 2:
        return float("nan")  # one speaker, or one clip of some speaker: nothing to tell apart
    correct = 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, speakers):
        scaler, regression = fit_scaled_regression(features[train], speakers[train], C=1.0, max_iter=2000)
        correct += int((regression.predict(scaler.transform(features[test])) == speakers[test]).sum())
    return correct / len(speakers)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """[spoken, predicted] fractions: each row sums to 1 (rows of labels never spoken stay 0)."""
    index = {c: k for k, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)))
    for spoken, guess in zip(truth, predicted):
        matrix[index[spoken], index[guess]] += 1
    return matrix / matrix.sum(1, keepdims=True).clip(min=1)


def condition_row(condition: Condition) -> dict[str, float]:
    """The condition keys of a metrics.json row: {} for clean audio, {"snr_db": …} for noisy."""
    return {} if condition is None else {"snr_db": condition}


@dataclass
class Comparison:
    """Per-speaker scores and every held-out prediction, per method and condition.

    `seconds` is the time to turn the whole clean corpus into features (for the model: mean
    over folds of log-mel + encoder), `dims` the feature size of each method.
    """

    conditions: list[Condition]
    dims: dict[str, int]
    seconds: dict[str, float]
    per_speaker: dict[tuple[str, Condition, str], dict[str, float]] = field(default_factory=dict)
    predictions: dict[tuple[str, Condition], np.ndarray] = field(default_factory=dict)
    adapted: dict[tuple[str, Condition, str], dict[str, float]] = field(default_factory=dict)  # like per_speaker, features standardised per speaker
    chosen_C: dict[tuple[str, str], float] = field(default_factory=dict)  # (method, fold) → the classifier search's C
    speaker_probe: dict[tuple[str, str], float] = field(default_factory=dict)  # (method, fold) → `speaker_probe` on its training speakers
    probe_chance: dict[str, float] = field(default_factory=dict)  # fold → 1 / its training speakers
    tested: np.ndarray | None = None

    def speakers(self) -> list[str]:
        return sorted({key[2] for key in self.per_speaker})

    def mean(self, method: str, condition: Condition, adapted: bool = False) -> dict[str, float]:
        table = self.adapted if adapted else self.per_speaker
        rows = [m for (meth, cond, _), m in table.items() if meth == method and cond == condition]
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    def results(self, source: str, items: list[str], arms: Sequence["Arm"] = ()) -> Results:
        """metrics.json's rows; an ablation arm's carry `ablation: <arm>` (the model under every
        condition and per held-out speaker clean; MFCC on the design arm's folds once, for reference)."""
        out = Results(DOMAIN, source, items)
        for method in METHODS:
            for condition in self.conditions:
                extra = {"dims": self.dims[method], "seconds": self.seconds[method]} if condition is None else {}
                out.add(method, {**self.mean(method, condition), **extra}, **condition_row(condition))
            for condition in self.conditions:
                for speaker in self.speakers():
                    out.add(method, self.per_speaker[(method, condition, speaker)], speaker=speaker, **condition_row(condition))
            for condition in self.conditions:
                out.add(method, self.mean(method, condition, adapted=True), adaptation="speaker", **condition_row(condition))
                for speaker in self.speakers():
                    out.add(method, self.adapted[(method, condition, speaker)], adaptation="speaker", speaker=speaker, **condition_row(condition))
            probed = {fold: v for (m, fold), v in self.speaker_probe.items() if m == method and np.isfinite(v)}
            if probed:
                out.add(method, {"accuracy": float(np.mean(list(probed.values()))), "chance": float(np.mean([self.probe_chance[f] for f in probed]))}, probe="speaker")
        for arm in arms:
            for method in METHODS if arm.name == arms[0].name else ("model",):
                for condition in arm.comparison.conditions:
                    out.add(method, arm.comparison.mean(method, condition), ablation=arm.name, **condition_row(condition))
                for speaker in arm.comparison.speakers():
                    out.add(method, arm.comparison.per_speaker[(method, None, speaker)], ablation=arm.name, speaker=speaker)
        return out


@dataclass
class Arm:
    """One design ablation: its changes to the trained model's params, its comparison on the inner
    leave-one-speaker-out, and the seconds its encoders took to train."""

    name: str
    changes: dict[str, dict[str, Any]]
    comparison: Comparison
    train_seconds: float
