"""SKAB's per-file protocol: fit on the first rows of each file, score the rest, pool the counts.

Every method sees the same split. The test part is scored on its own (the baselines' rolling
medians and the model's windows start at its first row), and F1/FAR/MAR pool the confusion
counts of all test rows of all files, as in BASELINES.md.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from latente.domains.anomaly.baselines import isolation_forest, pca_t2q
from latente.domains.anomaly.data import Series, read_series
from latente.domains.anomaly.detector import Detector, fit_detector, short_term_weights, threshold
from latente.domains.anomaly.metrics import Confusion, confusion, nab_counts, nab_scores, predicted_changepoints
from latente.domains.anomaly.params import DetectorConfig, EvaluateParams, ReaderConfig
from latente.domains.anomaly.scoring import ScoredRows, score_series
from latente.shared.errors import UserError
from latente.shared.results import Results

BASELINES = ("pca_t2q", "isolation_forest")


def split(series: Series, train_rows: int, window: int, key: str) -> tuple[np.ndarray, Series]:
    """(training values, test part); the file must hold a training segment and one test window."""
    if series.labels is None:
        raise UserError(key, "has no label column", "evaluation needs labelled files (set the label column)")
    if len(series) < train_rows + window:
        raise UserError(key, f"has {len(series)} rows, fewer than the {train_rows} training rows plus one window of {window}")
    return series.values[:train_rows], series.crop(train_rows)


def fit_file(series: Series, key: str, train_rows: int, config: DetectorConfig, reader: ReaderConfig,
             **fit_kwargs) -> Detector:
    """A detector fitted on the file's training segment."""
    train, _ = split(series, train_rows, config.window, key)
    return fit_detector(train, series.sensors, config, reader=reader, step_s=series.report.step_s, where=key, **fit_kwargs)


def calibrate(network: Detector, train: np.ndarray, config: DetectorConfig) -> Detector:
    """Another file's trained network with this file's standardisation, weights and threshold."""
    level = train.std(axis=0)
    weights = short_term_weights(train) if config.sensor_weights == "short_term" else np.ones(train.shape[1])
    d = Detector(model=network.model, sensors=network.sensors, mean=train.mean(axis=0), scale=np.where(level > 0, level, 1.0),
                 weights=weights, window=network.window, threshold=np.nan, reader=network.reader,
                 step_s=network.step_s, info=dict(network.info))
    d.threshold = threshold(d.residuals(d.window_errors(d.standardize(train))), config)
    return d


@dataclass
class FileRun:
    """One file's test part, the model's scored rows and every method's predictions."""

    key: str
    test: Series
    scored: ScoredRows
    detector: Detector
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0

    def confusion(self, method: str) -> Confusion:
        return confusion(self.test.labels, self.predictions[method])


def run_file(series: Series, key: str, detector: Detector, train_rows: int, config: DetectorConfig,
             params: EvaluateParams, global_network: Detector | None = None) -> FileRun:
    train, test = split(series, train_rows, detector.window, key)
    started = time.perf_counter()
    scored = score_series(detector, test)
    run = FileRun(key, test, scored, detector, {"model": scored.flag}, time.perf_counter() - started)
    if config.sensor_weights != "uniform":
        uniform = detector.recalibrated(train, np.ones(len(detector.sensors)), config)
        run.predictions["model_unweighted"] = score_series(uniform, test).flag
    if global_network is not None:
        run.predictions["model_global"] = score_series(calibrate(global_network, train, config), test).flag
    run.predictions["pca_t2q"] = pca_t2q(train, test.values, params.pca_t2q)
    run.predictions["isolation_forest"] = isolation_forest(train, test.values, params.isolation_forest)
    return run


def summarize(runs: list[FileRun], params: EvaluateParams, source: str, fit_seconds: float | None = None) -> Results:
    """Pooled metrics per method (condition {}), then per-file F1/FAR/MAR (condition {file})."""
    results = Results("anomaly", source, [r.key for r in runs])
    methods = list(runs[0].predictions)
    for method in methods:
        pooled = sum((r.confusion(method) for r in runs), Confusion())
        metrics = pooled.metrics()
        if all(r.test.changepoints is not None for r in runs):
            metrics.update(nab_scores([
                nab_counts(r.test.seconds(), r.test.changepoints, predicted_changepoints(r.predictions[method]), params.nab_window_s)
                for r in runs]))
        metrics.update(tp=pooled.tp, tn=pooled.tn, fp=pooled.fp, fn=pooled.fn)
        if method == "model":
            metrics["seconds"] = (fit_seconds or 0.0) + sum(r.seconds for r in runs)
        results.add(method, metrics)
    for r in runs:
        for method in methods:
            results.add(method, r.confusion(method).metrics(), file=r.key)
    return results


def labelled_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.csv") if p.is_file())
    if not files:
        raise UserError(folder, "no CSV files found", "point --data at a folder of labelled CSV files")
    return files


def evaluate_folder(folder: Path, reader: ReaderConfig, train_rows: int, config: DetectorConfig, params: EvaluateParams,
                    epochs: int | None = None, progress: Callable[[str], None] | None = None) -> tuple[Results, list[FileRun]]:
    """The whole protocol on a folder: a detector fitted per file, then every method scored."""
    runs, fit_seconds = [], 0.0
    for path in labelled_files(folder):
        key = path.relative_to(folder).as_posix()
        series = read_series(path, reader, labels_required=True)
        started = time.perf_counter()
        detector = fit_file(series, key, train_rows, config, reader, epochs=epochs)
        fit_seconds += time.perf_counter() - started
        runs.append(run_file(series, key, detector, train_rows, config, params))
        if progress:
            progress(f"{key}: {describe(runs[-1])}")
    return summarize(runs, params, str(folder), fit_seconds), runs


def describe(run: FileRun) -> str:
    m = run.confusion("model").metrics()
    return f"F1 {m['f1']:.3f}, FAR {m['far']:.1f} %, MAR {m['mar']:.1f} % (epochs {run.detector.info.get('epochs_run')})"
