"""Fitting detectors, and the train stage: SKAB's per-file detectors, seed replicas of them, and the
global detector.

models/anomaly holds one detector folder per benchmark file (SKAB's protocol fits a model
per file, `skab/valve1/0/`, ...), the global detector trained on the anomaly-free run
(`global/`), the robustness-seed detectors (`seeds/<seed>/...`) and `protocol.json`, which
says which folder belongs to which file and how they were trained. Every folder is a model
that `latente anomaly score` accepts; its `info.fit` is the trainer's record of the fit.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latente.domains.anomaly.data import Series, load_prepared, split
from latente.domains.anomaly.model import Detector, model_config, sensor_weights, threshold, windows
from latente.domains.anomaly.params import DetectorConfig, ReaderConfig, TrainParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, write_json
from latente.shared.models import build_model
from latente.shared.stage import DomainPaths
from latente.shared.trainer import fit, seed_everything

PROTOCOL = "protocol.json"


def window_split(n_rows: int, config: DetectorConfig, where: str) -> tuple[int, int]:
    """(training windows, validation windows) of `n_rows` training rows; too few rows is a user error,
    checked before any work (the `fit` command calls it before it starts training)."""
    n_windows = n_rows - config.window + 1
    n_val = max(1, int(n_windows * config.val_fraction)) if config.val_fraction > 0 else 0
    if n_windows - n_val < 1:
        raise UserError(where, f"{n_rows} training rows are fewer than one window of {config.window} (plus validation)",
                        "train on more rows or use a shorter window")
    return n_windows, n_val


def fit_detector(
    values: np.ndarray,
    sensors: list[str],
    config: DetectorConfig,
    *,
    reader: ReaderConfig,
    step_s: float | None,
    where: str,
    checkpoint_dir: str | Path | None = None,
    fingerprint: dict[str, Any] | None = None,
    live_dir: str | Path | None = None,
    quiet: bool = True,
) -> Detector:
    """Standardise on `values` (normal operation), train the autoencoder, set the threshold.

    The last `val_fraction` of the windows validate (early stopping), as Keras's
    validation_split does in SKAB's Conv-AE; the threshold uses every training window.
    """
    window = config.window
    n_windows, n_val = window_split(len(values), config, where)
    mean = values.mean(axis=0)
    level = values.std(axis=0)
    constant = [s for s, sd in zip(sensors, level) if sd == 0]
    scale = np.where(level > 0, level, 1.0)
    z = ((values - mean) / scale).astype(np.float32)
    train_windows = torch.from_numpy(np.ascontiguousarray(windows(z, window)))
    fit_set, val_set = (train_windows[: n_windows - n_val], train_windows[n_windows - n_val:]) if n_val else (train_windows, train_windows)

    seed_everything(config.trainer.seed)
    model = build_model(model_config(config.model, len(sensors), window))
    with contextlib.ExitStack() as stack:
        if checkpoint_dir is None:
            checkpoint_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="latente-anomaly-"))
        if quiet:
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        result = fit(model, fit_set, val_set, config.trainer, checkpoint_dir,
                     fingerprint={"detector": config.model_dump(mode="json"), **(fingerprint or {})}, live_dir=live_dir)
    detector = Detector(model=model, sensors=list(sensors), mean=mean, scale=scale, weights=sensor_weights(values, config),
                        window=window, threshold=math.nan, rule=config.rule(), reader=reader, step_s=step_s, info={})
    detector.threshold = threshold(detector.residuals(detector.window_errors(z)), config)
    detector.info = {
        "train_rows": len(values), "train_windows": n_windows - n_val, "val_windows": n_val,
        "constant_sensors": constant, "sensor_weights": config.sensor_weights,
        "threshold_rule": f"quantile {config.threshold_quantile} of training residuals × {config.threshold_factor:.6g}",
        "fit": result.to_json(),
    }
    return detector


def fit_file(series: Series, key: str, train_rows: int, config: DetectorConfig, reader: ReaderConfig,
             **fit_kwargs) -> Detector:
    """SKAB's per-file detector: fitted on the file's first `train_rows` rows."""
    train, _ = split(series, train_rows, config.window, key)
    return fit_detector(train, series.sensors, config, reader=reader, step_s=series.report.step_s, where=key, **fit_kwargs)


def model_folder(key: str) -> str:
    """skab/valve1/0.csv → skab/valve1/0"""
    return Path(key).with_suffix("").as_posix()


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


def train(params: TrainParams, paths: DomainPaths) -> None:
    """The train stage: a detector per benchmark file and seed, and the global one; checkpoints resume."""
    reader, labelled, normal = load_prepared(paths.prepared)
    config = params.detector
    started = time.perf_counter()
    folders: dict[str, str] = {}
    with atomic_dir(paths.model) as tmp:
        for seed in (config.trainer.seed, *params.robustness_seeds):
            prefix = "" if seed == config.trainer.seed else f"seeds/{seed}/"
            for key, series in labelled.items():
                folder = prefix + model_folder(key)
                detector = fit_file(series, key, params.train_rows, config.with_trainer(seed=seed), reader,
                                    checkpoint_dir=paths.checkpoint / folder,
                                    fingerprint={"file": key, "rows": params.train_rows, "data": _digest(series.values)})
                detector.save(tmp / folder, data={"file": key, "rows": [0, params.train_rows]})
                if not prefix:
                    folders[key] = folder
                record = detector.info["fit"]
                print(f"{folder}: {record['epochs_run']} epochs, {record['seconds']:.1f} s, "
                      f"threshold {detector.threshold:.3f}", flush=True)
        global_folder = None
        if normal is not None:
            detector = fit_detector(normal.values, normal.sensors, config.with_trainer(epochs=params.global_epochs),
                                    reader=reader, step_s=normal.report.step_s, where=str(normal.path),
                                    checkpoint_dir=paths.checkpoint / "global",
                                    fingerprint={"file": str(normal.path), "data": _digest(normal.values)},
                                    live_dir=paths.training_log, quiet=False)
            global_folder = "global"
            detector.save(tmp / global_folder, data={"file": str(normal.path), "rows": [0, len(normal)]})
            record = detector.info["fit"]
            print(f"global: {record['epochs_run']} epochs on {len(normal)} rows, {record['seconds']:.1f} s")
        write_json(tmp / PROTOCOL, {
            "protocol": "SKAB per-file: fit on the first train_rows rows of each file, score the rest",
            "train_rows": params.train_rows, "detector": config.model_dump(mode="json"),
            "files": folders, "global": global_folder,
            "robustness_seeds": {str(s): {k: f"seeds/{s}/{v}" for k, v in folders.items()} for s in params.robustness_seeds},
            "seconds": time.perf_counter() - started,
        })
