"""SKAB's per-file protocol: fit on the first rows of each file, score the rest, pool the counts;
the evaluate stage; and the cross-file protocol of `latente anomaly evaluate --model`.

Every method sees the same split. The test part is scored on its own (the baselines' rolling
medians and the model's windows start at its first row), and F1/FAR/MAR pool the confusion
counts of all test rows of all files, as SKAB's leaderboard does.

The cross-file protocol is how a user applies a detector: fitted once on a known-normal period
(another file), it scores whole later files, each calibrated on its own first rows
(`score --calibrate-rows`). The file is scored as one stream, exactly as `score` does; its
calibration rows count in no metric.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from latente.domains.anomaly import DOMAIN
from latente.domains.anomaly.baselines import isolation_forest, pca_t2q
from latente.domains.anomaly.data import Series, load_prepared, read_series, split
from latente.domains.anomaly.metrics import Confusion, confusion, nab_counts, nab_scores, predicted_changepoints
from latente.domains.anomaly.model import Detector, ScoredRows, load_detector, score_series, shortest_calibration
from latente.domains.anomaly.params import DetectorConfig, EvaluateParams, ReaderConfig
from latente.domains.anomaly.report import write_report
from latente.domains.anomaly.sources import SKAB_RELEASE
from latente.domains.anomaly.training import PROTOCOL, fit_file
from latente.shared.errors import UserError
from latente.shared.io import read_json
from latente.shared.results import Results
from latente.shared.stage import DomainPaths


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
        run.predictions["model_global"] = score_series(global_network.calibrated(train, config), test).flag
    run.predictions["pca_t2q"] = pca_t2q(train, test.values, params.pca_t2q)
    run.predictions["isolation_forest"] = isolation_forest(train, test.values, params.isolation_forest)
    return run


def summarize(runs: list[FileRun], params: EvaluateParams, source: str, with_training: bool = False) -> Results:
    """Pooled metrics per method (condition {}), then per-file F1/FAR/MAR (condition {file}).

    The model's `seconds` is its scoring time, plus the detectors' training time `with_training`.
    """
    results = Results(DOMAIN, source, [r.key for r in runs])
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
            metrics["seconds"] = sum(r.seconds + (r.detector.info["fit"]["seconds"] if with_training else 0.0) for r in runs)
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
                    progress: Callable[[str], None] | None = None) -> tuple[Results, list[FileRun]]:
    """The whole protocol on a folder: a detector fitted per file, then every method scored."""
    runs = []
    for path in labelled_files(folder):
        key = path.relative_to(folder).as_posix()
        series = read_series(path, reader, labels_required=True)
        detector = fit_file(series, key, train_rows, config, reader)
        runs.append(run_file(series, key, detector, train_rows, config, params))
        if progress:
            progress(f"{key}: {describe(runs[-1])}")
    return summarize(runs, params, str(folder), with_training=True), runs


def cross_file(files: list[Path], folder: Path, reader: ReaderConfig, detector: Detector, calibrate_rows: int,
               far: float | None, params: EvaluateParams,
               progress: Callable[[str], None] | None = None) -> tuple[Results, list[FileRun]]:
    """The cross-file protocol on `files` (keys relative to `folder`): `detector` calibrated on each
    file's first `calibrate_rows` rows (threshold by its rule, or by `far`), the rest of the file scored."""
    if calibrate_rows < shortest_calibration(detector.window):
        raise UserError("--calibrate-rows", f"{calibrate_rows} rows are too few for windows of {detector.window}",
                        f"calibrate on at least {shortest_calibration(detector.window)} rows (3 × window − 2)")
    runs = []
    for path in files:
        key = path.relative_to(folder).as_posix()
        series = read_series(path, reader, sensors=detector.sensors, labels_required=True)
        if len(series) < calibrate_rows + detector.window:
            raise UserError(key, f"has {len(series)} rows, fewer than the {calibrate_rows} calibration rows plus one "
                                 f"window of {detector.window}", "lower --calibrate-rows")
        started = time.perf_counter()
        calibrated = detector.calibrated(series.values[:calibrate_rows], far=far)
        scored = score_series(calibrated, series).tail(calibrate_rows)
        runs.append(FileRun(key, series.crop(calibrate_rows), scored, calibrated, {"model": scored.flag},
                            time.perf_counter() - started))
        if progress:
            progress(f"{key}: {describe(runs[-1])}")
    return summarize(runs, params, str(folder)), runs


def describe(run: FileRun) -> str:
    m = run.confusion("model").metrics()
    epochs = run.detector.info.get("fit", {}).get("epochs_run")
    return f"F1 {m['f1']:.3f}, FAR {m['far']:.1f} %, MAR {m['mar']:.1f} %" + (f" (epochs {epochs})" if epochs else "")


def data_source(keys: list[str]) -> str:
    """The release the pinned checksums belong to and the benchmark's folders: '…, valve1 + valve2'."""
    return f"{SKAB_RELEASE}, " + " + ".join(dict.fromkeys(Path(k).parent.name for k in keys))


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """The evaluate stage: every benchmark file with its detector, the baselines and the seed replicas;
    metrics.json, plot data, figures and report.md."""
    _, labelled, _ = load_prepared(paths.prepared)
    protocol = read_json(paths.model / PROTOCOL)
    config = DetectorConfig.model_validate(protocol["detector"])
    train_rows = int(protocol["train_rows"])
    global_network = load_detector(paths.model / protocol["global"]) if protocol.get("global") else None
    runs: list[FileRun] = []
    for key, series in labelled.items():
        if key not in protocol["files"]:
            raise UserError(paths.model / PROTOCOL, f"has no detector for {key}", f"rerun `dvc repro train@{DOMAIN}`")
        detector = load_detector(paths.model / protocol["files"][key])
        runs.append(run_file(series, key, detector, train_rows, config, params, global_network))
        print(f"{key}: " + ", ".join(f"{m} F1 {runs[-1].confusion(m).metrics()['f1']:.2f}" for m in runs[-1].predictions))
    results = summarize(runs, params, data_source(list(labelled)))  # `seconds`: scoring only; training time is in the report
    seeds = [int(seed) for seed in protocol.get("robustness_seeds", {})]
    for seed, folders in protocol.get("robustness_seeds", {}).items():
        pooled = Confusion()
        for key, series in labelled.items():
            _, test = split(series, train_rows, config.window, key)
            pooled += confusion(test.labels, score_series(load_detector(paths.model / folders[key]), test).flag)
        results.add("model", pooled.metrics(), seed=int(seed))
    results.write(paths.metrics)
    write_report(results, runs, seeds, config, protocol, global_network, params, paths)
    overall = results.find("model")
    print(f"model: F1 {overall['f1']:.3f}, FAR {overall['far']:.2f} %, MAR {overall['mar']:.2f} % → {paths.report}")
