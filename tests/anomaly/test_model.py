"""Windows, SKAB's window→point rule, the threshold rule, the model hook, streaming = whole file, alarm explanations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny import ANOMALY

import latente.domains.anomaly.model as model_module
from latente.domains.anomaly.data import DataReport, Series
from latente.domains.anomaly.model import (
    AlarmTracker, ScoredRows, find_alarms, model_config, score_chunks, score_series, short_term_weights, threshold, windows,
)
from latente.domains.anomaly.params import DetectorConfig, ReaderConfig
from latente.domains.anomaly.training import fit_detector

SENSORS = ["a", "b", "c"]
SMALL = DetectorConfig.model_validate({**ANOMALY["train"]["detector"], "window": 8})  # the tiny detector, on short windows


def skab_point_labels(residuals: np.ndarray, ucl: float, window: int) -> np.ndarray:
    """SKAB's rule written as in its Conv-AE notebook (a loop): the oracle for the vectorised scorer."""
    n_windows = len(residuals)
    labels = np.zeros(n_windows + window - 1, dtype=bool)
    above = residuals > ucl
    for t in range(window - 1, n_windows - window + 1):
        labels[t] = above[t - window + 1: t].all()
    return labels


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return np.sin(t / 5.0 + np.array([0.0, 1.0, 2.0])) + 0.1 * rng.standard_normal((n, 3))


def as_series(values: np.ndarray) -> Series:
    n = len(values)
    return Series(Path("synthetic.csv"), SENSORS, values, np.arange(1, n + 1), np.arange(n, dtype=np.int64) * 10**9,
                  None, None, DataReport())


@pytest.fixture(scope="module")
def detector():
    return fit_detector(synthetic(200), SENSORS, SMALL, reader=ReaderConfig(), step_s=1.0, where="synthetic")


def test_windows_start_at_each_row():
    z = np.arange(30, dtype=np.float32).reshape(10, 3)
    w = windows(z, 4)
    assert w.shape == (7, 3, 4)
    np.testing.assert_array_equal(w[2], z[2:6].T)
    np.testing.assert_array_equal(w[-1], z[6:10].T)


def test_skab_rule_by_hand():
    # W = 4: row t (3 <= t <= n_windows - 4) is anomalous when windows t-3, t-2, t-1 all exceed the UCL
    residuals = np.array([0, 2, 2, 2, 0, 2, 2, 2, 2, 2], dtype=float)  # windows over 13 rows
    labels = skab_point_labels(residuals, 1.0, 4)
    assert len(labels) == 13
    assert np.flatnonzero(labels).tolist() == [4]  # t=4 checks windows 1,2,3; t=7.. is past n_windows - W = 6


def test_model_config_takes_sensors_and_window_from_the_data():
    config = model_config(DetectorConfig().model, sensors=8, window=60)
    assert (config.spatial_dims, config.in_channels, config.input_size) == (1, 8, (60,))
    assert config.model_dump(exclude={"in_channels", "input_size"}) == DetectorConfig().model.model_dump(exclude={"in_channels", "input_size"})


def test_detector_network_is_built_from_the_hook(detector):
    assert detector.model.config == model_config(SMALL.model, len(SENSORS), SMALL.window)
    assert detector.code_shape() == (2, 2)  # 2 latent channels; 8 rows halved twice


def test_threshold_rule_by_hand():
    residuals = np.arange(1001, dtype=float)  # 0.999 quantile (linear) = 999
    assert threshold(residuals, DetectorConfig()) == pytest.approx(999 * 4 / 3)
    assert threshold(residuals, DetectorConfig(threshold_quantile=0.5, threshold_factor=2.0)) == pytest.approx(1000.0)


def test_short_term_weights_by_hand():
    values = np.array([[0.0, 0.0, 5.0], [1.0, 1.0, 5.0], [0.0, 2.0, 5.0], [1.0, 3.0, 5.0]])
    # column 0 alternates: σ = 0.5, σ(Δ) = sqrt(8/9) → ratio 1.333 → capped at 1; column 1 is a ramp: σ(Δ) = 0 → 0;
    # column 2 is constant → 1
    np.testing.assert_allclose(short_term_weights(values), [1.0, 0.0, 1.0])
    drift = np.array([[0.0], [0.1], [0.0], [2.0], [2.1], [2.0]])
    expected = np.diff(drift[:, 0]).std() / (np.sqrt(2) * drift[:, 0].std())
    np.testing.assert_allclose(short_term_weights(drift), [expected])
    assert 0 < expected < 1


def test_row_score_flags_exactly_skab_rule(detector):
    test = as_series(synthetic(300, seed=1) + np.where(np.arange(300)[:, None] > 150, 1.5, 0.0))
    scored = score_series(detector, test)
    residuals = detector.residuals(detector.window_errors(detector.standardize(test.values)))
    np.testing.assert_array_equal(scored.flag, skab_point_labels(residuals, detector.threshold, detector.window))
    assert scored.flag.sum() > 50  # the shift is detected, so the comparison is not vacuous
    w = detector.window
    unscored = np.isnan(scored.score)
    assert unscored[: w - 1].all() and unscored[len(test) - 2 * w + 2:].all() and not unscored[w - 1: len(test) - 2 * w + 2].any()
    t = 100  # the score is the smallest residual of windows t-W+1 … t-1
    assert scored.score[t] == pytest.approx(residuals[t - w + 1: t].min())


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_streaming_equals_whole_file(detector, chunk, monkeypatch):
    monkeypatch.setattr(model_module, "SCORE_BATCH", 16)  # forward passes cross chunk boundaries
    test = as_series(synthetic(257, seed=2) + np.where(np.arange(257)[:, None] > 120, 1.0, 0.0))
    whole = score_series(detector, test)
    parts = [test.crop(i, i + chunk) for i in range(0, len(test), chunk)]
    streamed = ScoredRows.concat(list(score_chunks(detector, iter(parts))))
    np.testing.assert_array_equal(streamed.rows, whole.rows)
    np.testing.assert_array_equal(streamed.timestamps, whole.timestamps)
    np.testing.assert_array_equal(streamed.score, whole.score)
    np.testing.assert_array_equal(streamed.flag, whole.flag)
    np.testing.assert_array_equal(streamed.contributions, whole.contributions)
    whole_alarms = find_alarms(whole, 3)
    tracker = AlarmTracker(3)
    for part in score_chunks(detector, iter(parts)):
        tracker.update(part)
    streamed_alarms = tracker.finish()
    assert [(a.rows, a.length) for a in streamed_alarms] == [(a.rows, a.length) for a in whole_alarms]
    for a, b in zip(streamed_alarms, whole_alarms):
        np.testing.assert_allclose(a.shares, b.shares, rtol=1e-12)


def test_alarm_explanation_names_the_sensor_that_moved(detector):
    values = synthetic(260, seed=3)
    values[120:200, 1] += 4.0  # only sensor "b" misbehaves
    scored = score_series(detector, as_series(values))
    alarms = find_alarms(scored, 3)
    assert alarms, "the injected fault should raise an alarm"
    main = max(alarms, key=lambda a: a.length)
    assert SENSORS[int(np.argmax(main.shares))] == "b"
    assert main.shares.sum() == pytest.approx(1.0)
    assert main.shares[1] > 0.5
    flagged = scored.flag
    shares = scored.contributions[flagged] / scored.contributions[flagged].sum(axis=1, keepdims=True)
    assert (shares.argmax(axis=1) == 1).mean() > 0.9
