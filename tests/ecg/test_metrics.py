"""ECG metrics against hand-computed values."""
import numpy as np
import pytest

from latente.domains.ecg.metrics import compression_ratio, prd, prdn, quality_score, rpeak_scores, snr


def test_prd_uses_the_1024_baseline():
    x = np.array([1024 + 3, 1024 - 4, 1024, 1024])  # ||x - 1024|| = 5
    y = x + np.array([1, 0, 0, 0])                   # ||x - y|| = 1
    assert prd(x, y) == pytest.approx(20.0)


def test_prdn_removes_the_mean_and_snr_follows():
    x = np.array([1, 3, 1, 3], dtype=float)          # mean 2, ||x - 2|| = 2
    y = np.array([1, 3, 1, 2], dtype=float)          # ||x - y|| = 1
    assert prdn(x, y) == pytest.approx(50.0)
    assert snr(x, y) == pytest.approx(-20 * np.log10(0.5))
    assert quality_score(30.0, 2.0) == 15.0


def test_compression_ratio_counts_11_bits_per_sample():
    assert compression_ratio(n_samples=800, n_bytes=100) == pytest.approx(11.0)
    assert compression_ratio(650000, 27713) == pytest.approx(11 * 650000 / (8 * 27713))  # a whole 30-min record


def test_rpeak_scores_with_150_ms_tolerance():
    reference = np.array([100, 500, 900, 1300])
    detected = np.array([110, 560, 905, 2000])       # 54-sample window at 360 Hz: 560 misses, 2000 is false
    s = rpeak_scores(reference, detected, fs=360)
    tp, fn, fp = 2, 2, 2
    assert s["rpeak_se"] == pytest.approx(tp / (tp + fn))
    assert s["rpeak_ppv"] == pytest.approx(tp / (tp + fp))
    assert s["rpeak_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_rpeak_scores_when_nothing_is_detected():
    s = rpeak_scores(np.array([100, 500]), np.array([], dtype=int), fs=360)
    assert s["rpeak_se"] == 0.0 and s["rpeak_f1"] == 0.0 and np.isnan(s["rpeak_ppv"])
