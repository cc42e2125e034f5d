"""The train stage: SKAB's per-file detectors, seed replicas of them, and the global detector."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from latente.domains.anomaly.detector import Detector, fit_detector
from latente.domains.anomaly.params import TrainParams
from latente.domains.anomaly.prepared import load_prepared
from latente.domains.anomaly.protocol import fit_file
from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.stage import DomainPaths

PROTOCOL = "protocol.json"
TIMING = "fit_seconds.json"  # beside a finished checkpoint (the trainer rewrites the folder only while training)


def model_folder(key: str) -> str:
    """skab/valve1/0.csv → skab/valve1/0"""
    return Path(key).with_suffix("").as_posix()


def _digest(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()[:16]


def _keep_training_time(detector: Detector, checkpoint: Path) -> None:
    """A fit resumed from a finished checkpoint only reloads it; report the time the training took."""
    record = checkpoint / TIMING
    if detector.info["resumed_from_epoch"] == 0:
        write_json(record, {"fit_seconds": detector.info["fit_seconds"]})
    elif record.is_file():
        detector.info["fit_seconds"] = read_json(record)["fit_seconds"]
        detector.info["fit_seconds_from"] = str(record)


def train_all(params: TrainParams, paths: DomainPaths) -> None:
    reader, labelled, normal = load_prepared(paths.prepared)
    config = params.detector
    started = time.perf_counter()
    folders: dict[str, str] = {}
    with atomic_dir(paths.model) as tmp:
        for seed in (config.trainer.seed, *params.robustness_seeds):
            seeded = config.model_copy(update={"trainer": config.trainer.model_copy(update={"seed": seed})})
            prefix = "" if seed == config.trainer.seed else f"seeds/{seed}/"
            for key, series in labelled.items():
                folder = prefix + model_folder(key)
                detector = fit_file(series, key, params.train_rows, seeded, reader,
                                    checkpoint_dir=paths.checkpoint / folder,
                                    fingerprint={"file": key, "rows": params.train_rows, "data": _digest(series.values)})
                _keep_training_time(detector, paths.checkpoint / folder)
                detector.save(tmp / folder, data={"file": key, "rows": [0, params.train_rows]})
                if not prefix:
                    folders[key] = folder
                print(f"{folder}: {detector.info['epochs_run']} epochs, {detector.info['fit_seconds']:.1f} s, "
                      f"threshold {detector.threshold:.3f}", flush=True)
        global_folder = None
        if normal is not None:
            detector = fit_detector(normal.values, normal.sensors, config, reader=reader, step_s=normal.report.step_s,
                                    where=str(normal.path), checkpoint_dir=paths.checkpoint / "global",
                                    fingerprint={"file": str(normal.path), "data": _digest(normal.values)},
                                    live_dir=paths.training_log, epochs=params.global_epochs, quiet=False)
            global_folder = "global"
            detector.save(tmp / global_folder, data={"file": str(normal.path), "rows": [0, len(normal)]})
            print(f"global: {detector.info['epochs_run']} epochs on {len(normal)} rows, {detector.info['fit_seconds']:.1f} s")
        write_json(tmp / PROTOCOL, {
            "protocol": "SKAB per-file: fit on the first train_rows rows of each file, score the rest",
            "train_rows": params.train_rows, "detector": config.model_dump(mode="json"),
            "files": folders, "global": global_folder,
            "robustness_seeds": {str(s): {k: f"seeds/{s}/{v}" for k, v in folders.items()} for s in params.robustness_seeds},
            "seconds": time.perf_counter() - started,
        })
