"""SKAB's metric definitions against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from latente.domains.anomaly.metrics import (
    Confusion, confusion, nab_counts, nab_scores, nab_windows, predicted_changepoints,
)


def test_f1_far_mar_by_hand():
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    predicted = np.array([1, 0, 1, 1, 0, 0, 0, 0])
    c = confusion(labels, predicted)
    assert (c.tp, c.tn, c.fp, c.fn) == (2, 3, 1, 2)
    m = c.metrics()
    assert m["f1"] == pytest.approx(2 / (2 + (2 + 1) / 2))  # 0.5714
    assert m["far"] == pytest.approx(25.0)  # 1 / (1 + 3)
    assert m["mar"] == pytest.approx(50.0)  # 2 / (2 + 2)


def test_metrics_pool_counts_over_files_not_average_scores():
    a = confusion(np.array([1, 1, 0, 0]), np.array([1, 1, 0, 0]))  # perfect file
    b = confusion(np.array([1, 0, 0, 0, 0, 0]), np.array([0, 1, 1, 0, 0, 0]))  # tp 0, fp 2, fn 1, tn 3
    pooled = (a + b).metrics()
    assert pooled["f1"] == pytest.approx(2 / (2 + (1 + 2) / 2))
    assert pooled["far"] == pytest.approx(100 * 2 / (2 + 5))
    assert pooled["mar"] == pytest.approx(100 * 1 / 3)


def test_undefined_rates_are_nan():
    m = Confusion(tp=0, tn=5, fp=0, fn=0).metrics()
    assert math.isnan(m["mar"]) and math.isnan(m["f1"]) and m["far"] == 0.0


def test_predicted_changepoints_follow_skab():
    # SKAB: |diff(prediction)| with the first row's prediction as its own change
    assert predicted_changepoints(np.array([0, 1, 1, 0, 1])).tolist() == [False, True, False, True, True]
    assert predicted_changepoints(np.array([1, 1, 0])).tolist() == [True, False, True]


def test_nab_windows_are_right_of_each_changepoint_and_cut_on_overlap():
    seconds = np.arange(200.0)
    cps = np.zeros(200, dtype=bool)
    cps[[10, 40, 150]] = True
    assert nab_windows(seconds, cps, 60) == [(10.0, 70.0), (70.0, 100.0), (150.0, 210.0)]


def _skab_scale(position: float, a_tp: float, a_fp: float) -> float:
    """SKAB's my_scale at an event position, written out independently."""
    x = -math.pi / 2 + int(position * 1000) * math.pi / 999
    return (a_tp - a_fp) / 2 * -math.tanh(x) / math.tanh(math.pi / 2) + (a_tp - a_fp) / 2 + a_fp


def test_nab_score_by_hand():
    seconds = np.arange(200.0)
    true_cp = np.zeros(200, dtype=bool)
    true_cp[[10, 100]] = True  # windows [10, 70] and [100, 160]
    predicted = np.zeros(200, dtype=bool)
    predicted[[25, 40, 180]] = True  # 25: first in window 1 (position 0.25); 40: later in window 1, ignored; 180: FP
    counts = nab_counts(seconds, true_cp, predicted, 60)
    assert counts == {"positions": [0.25], "fp": 1, "fn": 1, "windows": 2}
    scores = nab_scores([counts])
    for name, (a_fp, a_fn) in {"nab_standard": (-0.11, -1.0), "nab_low_fp": (-0.22, -1.0), "nab_low_fn": (-0.11, -2.0)}.items():
        raw = a_fp * 1 + a_fn * 1 + _skab_scale(0.25, 1.0, a_fp)
        null, perfect = 2 * a_fn, 2 * 1.0
        assert scores[name] == pytest.approx(100 * (raw - null) / (perfect - null))


def test_nab_perfect_and_silent_detectors():
    seconds = np.arange(100.0)
    true_cp = np.zeros(100, dtype=bool)
    true_cp[[20, 60]] = True
    perfect = nab_scores([nab_counts(seconds, true_cp, true_cp, 10)])
    assert perfect["nab_standard"] == pytest.approx(100 * (2 * _skab_scale(0.0, 1, -0.11) + 2) / 4)
    assert perfect["nab_standard"] > 99.9
    silent = nab_scores([nab_counts(seconds, true_cp, np.zeros(100, dtype=bool), 10)])
    assert silent == {"nab_standard": 0.0, "nab_low_fp": 0.0, "nab_low_fn": 0.0}
