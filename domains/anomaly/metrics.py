"""SKAB's metrics: F1/FAR/MAR over all test rows together, and the NAB change-point score.

Definitions follow SKAB's `core/metrics.py` (the tsad library):
F1 = TP / (TP + (FN + FP) / 2), FAR = FP / (FP + TN) · 100, MAR = FN / (FN + TP) · 100.
NAB: a detection window of `window_s` seconds to the right of each true change point
(overlaps cut from the right window); the first predicted change point inside a window
scores on SKAB's "improved" tanh scale from A_tp (at the window start) down to A_fp (at its
end), one outside every window scores A_fp, a window with none scores A_fn; the summed
score is normalised as 100 · (S − S_null) / (S_perfect − S_null) over all files.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NAB_PROFILES = {  # A_tp, A_fp, A_fn (SKAB/NAB's Standard, LowFP, LowFN)
    "nab_standard": (1.0, -0.11, -1.0),
    "nab_low_fp": (1.0, -0.22, -1.0),
    "nab_low_fn": (1.0, -0.11, -2.0),
}


@dataclass
class Confusion:
    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: "Confusion") -> "Confusion":
        return Confusion(self.tp + other.tp, self.tn + other.tn, self.fp + other.fp, self.fn + other.fn)

    def metrics(self) -> dict[str, float]:
        return {"f1": _ratio(self.tp, self.tp + (self.fn + self.fp) / 2),
                "far": 100 * _ratio(self.fp, self.fp + self.tn),
                "mar": 100 * _ratio(self.fn, self.fn + self.tp)}


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def confusion(labels: np.ndarray, predicted: np.ndarray) -> Confusion:
    y, p = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    return Confusion(int((y & p).sum()), int((~y & ~p).sum()), int((~y & p).sum()), int((y & ~p).sum()))


def predicted_changepoints(predicted: np.ndarray) -> np.ndarray:
    """SKAB: |Δ prediction|, with the first row's prediction as its own change."""
    p = np.asarray(predicted).astype(np.int8)
    return np.abs(np.diff(p, prepend=0)).astype(bool)


def nab_windows(seconds: np.ndarray, changepoints: np.ndarray, window_s: float) -> list[tuple[float, float]]:
    """[cp, cp + window_s] per true change point; an overlapping right window starts where the left ends."""
    bounds = [[float(t), float(t) + window_s] for t in seconds[np.asarray(changepoints).astype(bool)]]
    for left, right in zip(bounds, bounds[1:]):
        if left[1] >= right[0]:
            right[0] = left[1]
    return [(a, b) for a, b in bounds]


def _scale(position: float, a_tp: float, a_fp: float, detail: int = 1000) -> float:
    """SKAB's `my_scale` (koef 1): tanh from A_tp at the window start to A_fp at its end."""
    x = np.linspace(-np.pi / 2, np.pi / 2, detail)
    y = (a_tp - a_fp) / 2 * -np.tanh(x) / np.tanh(np.pi / 2) + (a_tp - a_fp) / 2 + a_fp
    return float(y[min(int(position * detail), detail - 1)])


def nab_counts(seconds: np.ndarray, true_cp: np.ndarray, predicted_cp: np.ndarray, window_s: float) -> dict:
    """Per-file NAB ingredients: detection positions in their windows, false positives, misses."""
    windows = nab_windows(seconds, true_cp, window_s)
    times = seconds[np.asarray(predicted_cp).astype(bool)]
    positions, misses = [], 0
    outside = np.ones(len(times), dtype=bool)
    for start, end in windows:
        inside = (times >= start) & (times <= end)
        outside &= ~inside
        if inside.any():
            positions.append((times[inside][0] - start) / (end - start) if end > start else 0.0)
        else:
            misses += 1
    return {"positions": positions, "fp": int(outside.sum()) if windows else len(times), "fn": misses, "windows": len(windows)}


def nab_scores(per_file: list[dict]) -> dict[str, float]:
    """SKAB's normalised NAB scores, summed over files before normalising."""
    out = {}
    for name, (a_tp, a_fp, a_fn) in NAB_PROFILES.items():
        score = null = perfect = 0.0
        for counts in per_file:
            score += a_fp * counts["fp"] + a_fn * counts["fn"] + sum(_scale(p, a_tp, a_fp) for p in counts["positions"])
            null += counts["windows"] * a_fn
            perfect += counts["windows"] * a_tp
        out[name] = 100 * (score - null) / (perfect - null) if perfect != null else math.nan
    return out
