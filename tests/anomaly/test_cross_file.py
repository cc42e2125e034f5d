"""The "apply to your own files" path (issue 16): a detector fitted on one known-normal period scores
whole other files, each calibrated on its own first rows (`score --calibrate-rows`), with a warning
when a file lies far from the training data and a threshold by false-alarm rate (`--far`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import call_latente

from latente.domains.anomaly.data import read_series
from latente.domains.anomaly.evaluation import cross_file
from latente.domains.anomaly.metrics import Confusion
from latente.domains.anomaly.model import load_detector, row_scores, score_series
from latente.domains.anomaly.params import EvaluateParams, ReaderConfig

CALIBRATE_ROWS = 400  # SKAB's normal segment at the start of every file; not tuned


@pytest.fixture(scope="module")
def skab(mirror):
    return mirror / "anomaly/skab"


@pytest.fixture(scope="module")
def valve1_0_detector(tmp_path_factory, skab):
    """The issue's own example: `latente anomaly fit` on rows 0:400 of valve1/0.csv, default settings."""
    folder = tmp_path_factory.mktemp("cross_file") / "valve1_0"
    result = call_latente("anomaly", "fit", skab / "valve1/0.csv", "--rows", "0:400", "--model-out", folder)
    assert result.returncode == 0, result.stderr
    epochs = load_detector(folder).info["fit"]["epochs_run"]
    progress = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert len(progress) == epochs and progress[0].startswith("epoch 1: train ")  # one line per epoch (issue 16)
    assert "trained on rows 0:400 (400 rows) of 1147 usable rows (1147 read)" in result.stderr  # not the whole file
    return folder


def test_cross_file_protocol_meets_the_target(valve1_0_detector, skab):
    """Fitted on valve1/0.csv rows 0:400, scoring the 19 other valve files whole: F1 ≥ 0.70 with FAR ≤ 20 %
    (issue 16's target), on valve1 and valve2 apart and together.

    The calibration rows (each file's first 400) count in no metric; valve1/0.csv, the training
    file, is left out. Nothing was tuned: 400 rows is SKAB's split, the threshold the model's rule.
    Measured at the time of writing (`latente anomaly evaluate --data <valve files but 0> --model
    <this detector> --calibrate-rows 400`): valve1 F1 0.825, FAR 6.2 %, MAR 26.0 %; valve2 F1 0.802,
    FAR 10.6 %, MAR 27.5 %; the per-file protocol on all 20 files: F1 0.823, FAR 12.4 %, MAR 22.7 %.
    """
    detector = load_detector(valve1_0_detector)
    files = [skab / "valve1" / f"{i}.csv" for i in range(1, 16)] + [skab / "valve2" / f"{i}.csv" for i in range(4)]
    results, runs = cross_file(files, skab, ReaderConfig(), detector, CALIBRATE_ROWS, None, EvaluateParams())
    assert [r.key for r in runs] == [f.relative_to(skab).as_posix() for f in files]
    assert all(r.test.rows[0] == CALIBRATE_ROWS + 1 for r in runs)  # scoring starts after the calibration rows
    groups = {group: sum((r.confusion("model") for r in runs if r.key.startswith(group)), Confusion())
              for group in ("valve1/", "valve2/")}
    for group, pooled in [*groups.items(), ("both", groups["valve1/"] + groups["valve2/"])]:
        m = pooled.metrics()
        assert m["f1"] >= 0.70 and m["far"] <= 20.0, (group, m)
    overall = results.find("model")
    assert overall["f1"] == pytest.approx((groups["valve1/"] + groups["valve2/"]).metrics()["f1"])


def test_calibration_stops_the_issue_example_flagging_every_row(capsys, valve1_0_detector, skab, tmp_path):
    """Issue 16: valve1/0's detector flagged 968 of 968 scored rows of valve1/1.csv. It now warns, naming the
    drifted sensors, and calibrated on the file's first 400 rows it flags a part of the file only."""
    csv = skab / "valve1/1.csv"
    plain = call_latente("anomaly", "score", csv, "--model", valve1_0_detector, "--out", tmp_path / "plain.csv")
    assert plain.returncode == 0, plain.stderr
    warnings = [line for line in plain.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "Temperature" in warnings[0] and "Thermocouple" in warnings[0], plain.stderr
    assert "--calibrate-rows" in warnings[0]
    flagged = pd.read_csv(tmp_path / "plain.csv")["flag"]
    assert flagged.sum() == 968  # every scored row: 1145 − 59 − 118

    calibrated = call_latente("anomaly", "score", csv, "--model", valve1_0_detector, "--out", tmp_path / "cal.csv",
                              "--calibrate-rows", CALIBRATE_ROWS)
    assert calibrated.returncode == 0, calibrated.stderr
    assert "warning:" not in calibrated.stderr and "calibrated on the first 400 rows" in calibrated.stderr
    out = pd.read_csv(tmp_path / "cal.csv")
    labels = read_series(csv, ReaderConfig()).labels
    after = out["row"] > CALIBRATE_ROWS
    flags = out.loc[after, "flag"].to_numpy().astype(bool)
    normal = labels[after.to_numpy()] == 0
    assert 0 < flags.sum() < len(flags) and flags[normal].mean() < 0.2  # false alarms on the normal rows


def test_calibrated_scoring_streams_like_the_whole_file(valve1_0_detector, skab, tmp_path):
    """Calibration holds back the first chunks; with 97-row chunks the output is byte for byte that of one
    chunk, and equals the cross-file protocol's scoring of the same file."""
    csv = skab / "valve2/1.csv"
    for name, chunk in (("whole.csv", "100000"), ("chunked.csv", "97")):
        result = call_latente("anomaly", "score", csv, "--model", valve1_0_detector, "--out", tmp_path / name,
                              "--calibrate-rows", CALIBRATE_ROWS, "--chunk-rows", chunk)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    _, runs = cross_file([csv], skab, ReaderConfig(), load_detector(valve1_0_detector), CALIBRATE_ROWS, None,
                         EvaluateParams())
    out = pd.read_csv(tmp_path / "whole.csv")
    np.testing.assert_array_equal(out["flag"].to_numpy()[CALIBRATE_ROWS:].astype(bool), runs[0].predictions["model"])


def test_far_threshold_is_the_calibration_rows_quantile(valve1_0_detector, skab):
    """`--far 0.05`: 5 % of the calibration rows' scores lie above the threshold (their own rows scored by
    SKAB's rule, by hand here from every window's residual)."""
    detector = load_detector(valve1_0_detector)
    values = read_series(skab / "valve1/2.csv", ReaderConfig()).values[:CALIBRATE_ROWS]
    calibrated = detector.calibrated(values, far=0.05)
    residuals = calibrated.residuals(calibrated.window_errors(calibrated.standardize(values)))
    w = detector.window
    by_hand = [residuals[t - w + 1: t].min() for t in range(w - 1, len(residuals) - w + 1)]  # SKAB's labelled rows
    np.testing.assert_allclose(row_scores(residuals, w), by_hand)
    assert len(by_hand) == CALIBRATE_ROWS - 3 * w + 3  # 223 scored calibration rows
    assert calibrated.threshold == pytest.approx(np.quantile(by_hand, 0.95))
    assert 0 < np.mean(np.asarray(by_hand) > calibrated.threshold) <= 0.05  # ≤: a row's score repeats its neighbours'
    assert calibrated.threshold < detector.calibrated(values).threshold  # the rule (4/3 × the 0.999 quantile) is stricter


def test_calibration_redoes_the_per_file_fit(valve1_0_detector, skab):
    """Calibrated on its own training rows, a detector is the one its fit produced: same standardisation,
    weights and threshold (so `--calibrate-rows` applies exactly the fit's rule to other rows)."""
    detector = load_detector(valve1_0_detector)
    series = read_series(skab / "valve1/0.csv", ReaderConfig())
    again = detector.calibrated(series.values[:400])
    np.testing.assert_allclose(again.mean, detector.mean)
    np.testing.assert_allclose(again.scale, detector.scale)
    np.testing.assert_allclose(again.weights, detector.weights)
    assert again.threshold == pytest.approx(detector.threshold, rel=1e-6)
    np.testing.assert_array_equal(score_series(again, series).flag, score_series(detector, series).flag)



def test_score_takes_the_separator(valve1_0_detector, skab, tmp_path):
    """`score --sep ','` reads a comma-separated copy of a file exactly as the model's own ';' reads the original."""
    text = (skab / "valve2/3.csv").read_text()
    (tmp_path / "comma.csv").write_text(text.replace(";", ","))
    for name, csv, extra in (("semicolon.out", skab / "valve2/3.csv", ()), ("comma.out", tmp_path / "comma.csv", ("--sep", ","))):
        result = call_latente("anomaly", "score", csv, "--model", valve1_0_detector, "--out", tmp_path / name,
                              "--calibrate-rows", CALIBRATE_ROWS, *extra)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "semicolon.out").read_bytes() == (tmp_path / "comma.out").read_bytes()
