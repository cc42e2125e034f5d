"""The baselines on SKAB valve1 + valve2 land on independently measured figures.

The expected F1/FAR/MAR are an independent measurement of the same two baselines on the same
20 files (first 400 rows train, the rest pooled), recorded when the domain was added (commit
70a560e, issue 6); this code reproduces them to the precision given.
"""
from __future__ import annotations

import numpy as np
import pytest

from latente.domains.anomaly.baselines import PCAT2Q, isolation_forest, pca_t2q
from latente.domains.anomaly.data import read_series, split
from latente.domains.anomaly.metrics import Confusion, confusion
from latente.domains.anomaly.params import IsolationForestParams, PCABaselineParams, ReaderConfig


@pytest.fixture(scope="module")
def valve_files(mirror):
    root = mirror / "anomaly/skab"
    paths = [root / f"valve1/{i}.csv" for i in range(16)] + [root / f"valve2/{i}.csv" for i in range(4)]
    return [split(read_series(p, ReaderConfig(), labels_required=True), 400, 60, p.name) for p in paths]


def pooled(files, predict) -> dict:
    total = Confusion()
    for train, test in files:
        total += confusion(test.labels, predict(train, test.values))
    return total.metrics()


@pytest.mark.parametrize("q_limit, expected", [
    ("skab", (0.75, 26.83, 26.19)),  # independent measurement, SKAB's own T²+Q (core/t2.py)
    ("jackson_mudholkar", (0.74, 38.56, 21.85)),  # independent measurement, textbook Q limit
])
def test_pca_t2q_matches_the_independent_measurement(valve_files, q_limit, expected):
    m = pooled(valve_files, lambda tr, te: pca_t2q(tr, te, PCABaselineParams(q_limit=q_limit)))
    assert round(m["f1"], 2) == expected[0]
    assert m["far"] == pytest.approx(expected[1], abs=0.01)
    assert m["mar"] == pytest.approx(expected[2], abs=0.01)


def test_isolation_forest_matches_the_independent_measurement(valve_files):
    m = pooled(valve_files, lambda tr, te: isolation_forest(tr, te, IsolationForestParams()))
    assert round(m["f1"], 2) == 0.20
    assert m["far"] == pytest.approx(1.17, abs=0.01)
    assert m["mar"] == pytest.approx(88.61, abs=0.01)


def test_t2_and_q_statistics_by_hand():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((400, 2))
    train = latent @ np.array([[1.0, 0.5, 0.0, 1.0], [0.0, 1.0, 1.0, -0.5]]) + 0.1 * rng.standard_normal((400, 4))
    model = PCAT2Q(PCABaselineParams(median_window=1)).fit(train)
    assert model.pca.n_components_ == 2 and model.with_q  # two factors explain over 85 %
    z = (train - train.mean(0)) / train.std(0)
    t2, q = model.statistics(train)
    scores = model.pca.transform(z)
    np.testing.assert_allclose(t2, np.einsum("ij,jk,ik->i", scores, np.linalg.inv(np.cov(scores.T)), scores))
    p = model.pca.components_.T
    np.testing.assert_allclose(q, ((z - z @ p @ p.T) ** 2).sum(1), atol=1e-9)  # squared residual off the PCA plane
    assert t2.mean() == pytest.approx(2 * 399 / 400, rel=1e-9)  # mean T² of the fitting rows is m (n−1)/n
    outlier = train[:1] + np.array([[0.0, 0.0, 0.0, 5.0]])  # breaks the correlation structure
    assert model.predict(np.vstack([train[:1], outlier])).tolist() == [False, True]
