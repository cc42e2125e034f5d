"""ECG metrics against hand-computed values."""
import numpy as np
import pytest

from latente.domains.ecg.metrics import bd_rate, compression_ratio, pareto_front, prd, prdn, quality_score, rpeak_scores, snr


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


def test_pareto_front_keeps_the_points_nothing_beats():
    rate = np.array([3.0, 1.0, 2.0, 4.0, 2.5])
    dist = np.array([9.0, 10.0, 8.0, 5.0, 7.0])  # (3, 9) is beaten by (2, 8) and (2.5, 7)
    front_rate, front_dist = pareto_front(rate, dist)
    assert front_rate.tolist() == [1.0, 2.0, 2.5, 4.0] and front_dist.tolist() == [10.0, 8.0, 7.0, 5.0]
    assert [a.tolist() for a in pareto_front(np.array([1.0, 2.0]), np.array([5.0, 6.0]))] == [[1.0], [5.0]]  # more bits, worse


CURVE = (np.array([0.3, 0.5, 0.8, 1.2]), np.array([20.0, 12.0, 8.0, 5.0]))  # bits per sample, PRDN %


@pytest.mark.parametrize("factor,expected", [(1.0, 0.0), (0.5, -50.0), (2.0, 100.0), (1.1, 10.0)])
def test_bd_rate_of_a_curve_scaled_in_rate(factor, expected):
    """Every rate × factor at the same PRDNs: log-rate moves by log(factor) everywhere, so BD-rate = factor − 1."""
    assert bd_rate(CURVE, (CURVE[0] * factor, CURVE[1])) == pytest.approx(expected, abs=1e-9)
    assert bd_rate((CURVE[0] * factor, CURVE[1]), CURVE) == pytest.approx((1 / factor - 1) * 100, abs=1e-9)


def test_bd_rate_averages_log_rate_over_the_common_range():
    # two points each: PCHIP is the straight line through them. The log-rate gap grows linearly
    # from 0 (PRDN 10) to log 2 (PRDN 5): its mean is log(2)/2, so BD-rate = √2 − 1
    reference, test = (np.array([1.0, 2.0]), np.array([10.0, 5.0])), (np.array([1.0, 4.0]), np.array([10.0, 5.0]))
    assert bd_rate(reference, test) == pytest.approx((np.sqrt(2) - 1) * 100, rel=1e-9)
    # a point the test curve's own front beats changes nothing
    dominated = (np.append(test[0], 5.0), np.append(test[1], 8.0))
    assert bd_rate(reference, dominated) == pytest.approx((np.sqrt(2) - 1) * 100, rel=1e-9)
    # only the PRDN range both cover counts. Log-rate linear in PRDN (which PCHIP reproduces exactly), the
    # test curve half the reference's rate up to PRDN 30, then a far cheaper point at 40: that kink moves
    # PCHIP between 25 and 40 only, outside the common range 10–20, so the BD-rate stays exactly −50 %
    d_ref, d_test = np.array([5.0, 10.0, 15.0, 20.0]), np.array([10.0, 15.0, 20.0, 25.0, 30.0, 40.0])
    r_test = 0.5 * np.exp(-0.1 * d_test)
    r_test[-1] = 1e-6
    assert bd_rate((np.exp(-0.1 * d_ref), d_ref), (r_test, d_test)) == pytest.approx(-50.0, abs=1e-9)


def test_bd_rate_is_undefined_without_two_points_or_a_common_range():
    with pytest.raises(ValueError, match="at least two points"):
        bd_rate(CURVE, (np.array([0.5]), np.array([10.0])))
    with pytest.raises(ValueError, match="at least two points"):  # two points, but one beats the other
        bd_rate(CURVE, (np.array([0.5, 0.6]), np.array([10.0, 11.0])))
    with pytest.raises(ValueError, match="no common distortion range"):
        bd_rate(CURVE, (np.array([2.0, 3.0]), np.array([2.0, 1.0])))
