"""The scores: accuracy and macro-F1 of the digit predictions, per held-out speaker, per method and condition.

Every number is per held-out speaker first, then averaged over speakers, so a speaker with
more clips does not weigh more; `Comparison.results` is the one place metrics.json rows are made.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from sklearn.metrics import f1_score

from latente.domains.speech import DOMAIN
from latente.shared.results import Results

METHODS = ("model", "mfcc")
Condition = float | None  # SNR in dB; None is clean


def classification_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 (every label weighs the same; a label never predicted scores 0)."""
    return {"accuracy": float((truth == predicted).mean()), "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0))}


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
    tested: np.ndarray | None = None

    def speakers(self) -> list[str]:
        return sorted({key[2] for key in self.per_speaker})

    def mean(self, method: str, condition: Condition) -> dict[str, float]:
        rows = [m for (meth, cond, _), m in self.per_speaker.items() if meth == method and cond == condition]
        return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

    def results(self, source: str, items: list[str]) -> Results:
        out = Results(DOMAIN, source, items)
        for method in METHODS:
            for condition in self.conditions:
                extra = {"dims": self.dims[method], "seconds": self.seconds[method]} if condition is None else {}
                out.add(method, {**self.mean(method, condition), **extra}, **condition_row(condition))
            for condition in self.conditions:
                for speaker in self.speakers():
                    out.add(method, self.per_speaker[(method, condition, speaker)], speaker=speaker, **condition_row(condition))
        return out
