"""The scores, their per-speaker means, and the targets of params.yaml read against the rows they produce."""
from __future__ import annotations

import numpy as np
import pytest

from latente.domains.speech import DOMAIN
from latente.domains.speech.metrics import Comparison, classification_scores, confusion_matrix, speaker_probe
from latente.shared.report import check_target, load_references

TRUTH = np.array(["a", "a", "b", "b", "c"])
PREDICTED = np.array(["a", "b", "b", "b", "a"])


def test_scores_as_computed_by_hand():
    scores = classification_scores(TRUTH, PREDICTED)
    assert scores["accuracy"] == pytest.approx(3 / 5)
    # F1 per label: a (tp 1, fp 1, fn 1) 1/2; b (tp 2, fp 1, fn 0) 2·(2/3)·1/(2/3 + 1) = 4/5; c never predicted: 0
    assert scores["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 0) / 3)


def test_confusion_rows_are_fractions_of_each_spoken_label():
    matrix = confusion_matrix(TRUTH, PREDICTED, ["a", "b", "c", "d"])
    expected = [[1 / 2, 1 / 2, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]  # "d" is never spoken: its row stays 0
    np.testing.assert_allclose(matrix, expected)


def comparison(model_clean: float, mfcc_clean: float, model_10db: float, mfcc_10db: float) -> Comparison:
    """Two held-out speakers whose accuracies average to the given values (their macro-F1 is irrelevant here)."""
    out = Comparison([None, 10.0], {"model": 16, "mfcc": 78}, {"model": 0.5, "mfcc": 0.25})
    for method, clean, noisy in (("model", model_clean, model_10db), ("mfcc", mfcc_clean, mfcc_10db)):
        for condition, mean in ((None, clean), (10.0, noisy)):
            out.per_speaker[(method, condition, "jackson")] = {"accuracy": mean - 0.1, "macro_f1": 0.0}
            out.per_speaker[(method, condition, "theo")] = {"accuracy": mean + 0.1, "macro_f1": 0.0}
            out.adapted[(method, condition, "jackson")] = {"accuracy": mean, "macro_f1": 0.0}
            out.adapted[(method, condition, "theo")] = {"accuracy": mean + 0.1, "macro_f1": 0.0}
        out.speaker_probe.update({(method, "jackson"): 0.9, (method, "theo"): 0.7})
    out.probe_chance.update({"jackson": 0.5, "theo": 0.25})
    return out


def test_results_rows_hold_speaker_means_and_each_speaker():
    results = comparison(0.6, 0.5, 0.4, 0.3).results("test data", ["jackson", "theo"])
    assert results.domain == DOMAIN
    assert results.find("model") == {"accuracy": pytest.approx(0.6), "macro_f1": 0.0, "dims": 16, "seconds": 0.5}
    assert results.find("mfcc", snr_db=10.0) == {"accuracy": pytest.approx(0.3), "macro_f1": 0.0}
    assert results.find("model", snr_db=10.0, speaker="jackson")["accuracy"] == pytest.approx(0.3)
    # the adapted rows are apart: the same conditions, marked `adaptation: speaker`, 0.05 above the plain means here
    assert results.find("model", adaptation="speaker")["accuracy"] == pytest.approx(0.65)
    assert results.find("mfcc", adaptation="speaker", snr_db=10.0, speaker="theo")["accuracy"] == pytest.approx(0.4)
    assert results.find("mfcc", probe="speaker") == {"accuracy": pytest.approx(0.8), "chance": pytest.approx(0.375)}
    # per method: 2 conditions, 2 conditions × 2 speakers, the same adapted, and the speaker probe
    assert len(results.rows) == 2 * (2 * (2 + 2 * 2) + 1)


@pytest.mark.parametrize("model_10db, met", [(0.34, False), (0.36, True)])
def test_the_targets_of_params_yaml_read_the_rows_the_evaluation_writes(model_10db, met):
    """Clean: the code at least as accurate as MFCC; 10 dB: at least 5 points above (MFCC is at 0.30 here)."""
    targets = load_references(DOMAIN).targets
    results = comparison(0.5, 0.5, model_10db, 0.3).results("test data", ["jackson", "theo"])
    clean, noisy = (check_target(results, t) for t in targets if t.source == "issue 4")
    assert (clean.measured, clean.threshold, clean.passed) == (pytest.approx(0.5), pytest.approx(0.5), True)
    assert noisy.measured == pytest.approx(model_10db) and noisy.threshold == pytest.approx(0.35) and noisy.passed is met


def test_speaker_probe_reads_identity_and_not_noise():
    """Features that encode the speaker are named perfectly; features that carry none score about chance."""
    speakers = np.repeat(np.array(["a", "b", "c", "d"]), 50)
    identity = np.eye(4)[np.repeat(np.arange(4), 50)] + 0.01 * np.random.default_rng(0).normal(size=(200, 4))
    assert speaker_probe(identity, speakers) == 1.0
    blind = np.random.default_rng(1).normal(size=(200, 8))
    assert abs(speaker_probe(blind, speakers) - 0.25) < 0.12
    assert np.isnan(speaker_probe(blind, np.full(200, "a")))  # one speaker: not measured
    few = [0, 1, 2, 50, 51, 52]
    assert speaker_probe(identity[few, :2], speakers[few]) == 1.0  # three clips each: three splits, not five


def test_every_target_of_params_yaml_reads_a_row_the_evaluation_writes():
    """Issue 13's targets (clean margin and floor, each speaker against MFCC, 10 and 0 dB) all find their rows."""
    speakers = ["jackson", "lucas", "nicolas", "theo", "yweweler"]
    out = Comparison([None, 10.0, 0.0], {"model": 64, "mfcc": 78}, {"model": 0.5, "mfcc": 0.25})
    for k, speaker in enumerate(speakers):
        for condition in out.conditions:
            for method, accuracy in (("model", 0.9 - 0.01 * k), ("mfcc", 0.5)):
                out.per_speaker[(method, condition, speaker)] = {"accuracy": accuracy, "macro_f1": 0.0}
                out.adapted[(method, condition, speaker)] = {"accuracy": accuracy, "macro_f1": 0.0}
    checks = [check_target(out.results("test data", speakers), t) for t in load_references(DOMAIN).targets]
    assert len(checks) == 11 and all(c.measured is not None for c in checks)
    # the code's mean here is 0.88: 0.38 above MFCC, above 85 %, above MFCC for every speaker, at every SNR
    assert all(c.passed for c in checks)
    theo = next(c for c in checks if c.target.condition == {"speaker": "theo"})
    assert theo.measured == pytest.approx(0.87) and theo.threshold == pytest.approx(0.5)
