"""The classical baselines on the same protocol, written to match SKAB's own implementations.

PCA T²+Q follows SKAB's `core/t2.py` (Katser): standardise on the training rows, keep the
components explaining 85 % of the variance, T² against an F-based limit, Q (SPE) against
SKAB's limit, a rolling median of 5 on both statistics, alarm when either exceeds its limit.
Two quirks are kept because the published numbers depend on them: the quantiles are found
on a grid of 10,000 points over [0, 15] (rounding them down), and SKAB's Q limit raises the
*sum* of the residual eigenvalues to the powers 1–3 (θ_i = (Σλ)^i, not Σλ^i), taking the
eigenvalues in the unsorted order `numpy.linalg.eig` returns. `q_limit: jackson_mudholkar`
gives the textbook limit instead (sorted eigenvalues, θ_i = Σλ^i).

Isolation Forest follows SKAB's notebook: raw features, contamination 0.0005, random_state
0, and a rolling median of 3 over the ±1 predictions.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.stats as stats
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

from latente.domains.anomaly.params import IsolationForestParams, PCABaselineParams

_GRID = np.linspace(0, 15, 10000)


def _grid_quantile(cdf: np.ndarray, p: float) -> float:
    """The largest grid point whose cdf is below p (SKAB's way of inverting a cdf)."""
    return float(_GRID[cdf < p][-1])


def _rolling_median(values: np.ndarray, window: int) -> np.ndarray:
    """pandas' rolling median: NaN until the window fills, which never exceeds a limit."""
    return pd.Series(values).rolling(window).median().to_numpy()


class PCAT2Q:
    """Hotelling T² + Q (SPE) on principal components, fitted on normal rows."""

    def __init__(self, params: PCABaselineParams):
        self.params = params

    def fit(self, train: np.ndarray) -> "PCAT2Q":
        p = self.params
        level = train.std(axis=0)
        self.keep = level > 0  # SKAB drops constant columns
        x = train[:, self.keep]
        self.mean, self.scale = x.mean(axis=0), level[self.keep]
        z = (x - self.mean) / self.scale
        self.pca = PCA(n_components=p.explained_variance, svd_solver="full").fit(z)
        n, m = len(z), int(self.pca.n_components_)
        self.components = self.pca.components_.T
        self.inv_cov = np.linalg.inv(np.atleast_2d(np.cov(self.pca.transform(z).T)))
        f_quantile = _grid_quantile(stats.f.cdf(_GRID, m, n - m), p.p_value)
        self.t2_limit = m * (n - 1) * (n + 1) / (n * (n - m)) * f_quantile
        self.with_q = m < z.shape[1]
        if self.with_q:
            self.residual_projector = np.eye(z.shape[1]) - self.components @ self.components.T
            self.q_limit = self._q_limit(z, m)
        return self

    def _q_limit(self, z: np.ndarray, m: int) -> float:
        cov = np.cov(z.T)
        if self.params.q_limit == "skab":
            eigenvalues = np.linalg.eig(cov)[0].real  # LAPACK order, as SKAB uses it
            theta = [eigenvalues[m:].sum() ** i for i in (1, 2, 3)]
        else:
            eigenvalues = np.sort(np.linalg.eigvalsh(cov))[::-1]
            theta = [(eigenvalues[m:] ** i).sum() for i in (1, 2, 3)]
        h0 = 1 - 2 * theta[0] * theta[2] / (3 * theta[1] ** 2)
        c_alpha = _grid_quantile(stats.norm.cdf(_GRID), self.params.p_value)
        return theta[0] * (1 + c_alpha * h0 * math.sqrt(2 * theta[1]) / theta[0]
                           + theta[1] * h0 * (h0 - 1) / theta[0] ** 2) ** (1 / h0)

    def statistics(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw (unsmoothed) T² and Q of each row."""
        z = (rows[:, self.keep] - self.mean) / self.scale
        scores = (z - self.pca.mean_) @ self.components
        t2 = np.einsum("ij,jk,ik->i", scores, self.inv_cov, scores)
        q = np.einsum("ij,jk,ik->i", z, self.residual_projector, z) if self.with_q else None
        return t2, q

    def predict(self, rows: np.ndarray) -> np.ndarray:
        t2, q = self.statistics(rows)
        w = self.params.median_window
        alarm = _rolling_median(t2, w) > self.t2_limit
        if q is not None:
            alarm |= _rolling_median(q, w) > self.q_limit
        return alarm


def pca_t2q(train: np.ndarray, test: np.ndarray, params: PCABaselineParams) -> np.ndarray:
    return PCAT2Q(params).fit(train).predict(test)


def isolation_forest(train: np.ndarray, test: np.ndarray, params: IsolationForestParams) -> np.ndarray:
    forest = IsolationForest(n_estimators=params.n_estimators, contamination=params.contamination,
                             random_state=params.seed).fit(train)
    votes = -forest.predict(test).astype(np.float64)  # +1 outlier, −1 inlier
    smoothed = pd.Series(votes).rolling(params.median_window).median().fillna(0).to_numpy()
    return smoothed > 0
