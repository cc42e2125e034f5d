"""The detector: a 1-D conv autoencoder over sensor windows, its standardisation and its threshold.

Window residual (SKAB): r_j = Σ_s w_s · mean_t |x̂ − x| over the window starting at row j.
SKAB uses w_s = 1. Our default weights each sensor by the short-term share of its training
variance, w_s = min(1, σ(Δx_s) / (√2 σ(x_s))): about 1 for a noisy sensor, near 0 for a slow
one such as a temperature, whose 400 training rows sample too little of its drift for a
z-score to mean much. The weights come from the training rows alone.
"""
from __future__ import annotations

import contextlib
import io
import math
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import torch

from latente.domains.anomaly.params import DetectorConfig, ReaderConfig
from latente.shared.errors import UserError
from latente.shared.models import Autoencoder, AutoencoderConfig, build_model, load_model, save_model
from latente.shared.trainer import TrainerConfig, fit, seed_everything

DOMAIN = "anomaly"
SCORE_BATCH = 2048  # windows per forward pass, aligned to the window index so chunking never changes a result


def windows(z: np.ndarray, window: int) -> np.ndarray:
    """[n, sensors] → [n − window + 1, sensors, window], one window per start row."""
    return np.lib.stride_tricks.sliding_window_view(z, window, axis=0)


def short_term_weights(values: np.ndarray) -> np.ndarray:
    """min(1, σ(Δx) / (√2 σ(x))) per sensor; 1 for a constant sensor."""
    level = values.std(axis=0)
    step = np.diff(values, axis=0).std(axis=0) if len(values) > 1 else np.zeros_like(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = step / (math.sqrt(2.0) * level)
    return np.where(level > 0, np.minimum(1.0, ratio), 1.0)


@dataclass
class Detector:
    """A fitted detector; everything needed to score new rows of the same sensors."""

    model: Autoencoder
    sensors: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    window: int
    threshold: float
    reader: ReaderConfig
    step_s: float | None
    info: dict[str, Any]

    def standardize(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.scale).astype(np.float32)

    @torch.no_grad()
    def window_errors(self, z: np.ndarray, first_window: int = 0) -> np.ndarray:
        """Per-sensor mean |x̂ − x| of every window of standardised rows `z` → [windows, sensors].

        `first_window` is the global index of the first window, so that forward passes cover
        the same windows however the rows arrive.
        """
        wins = windows(z, self.window)
        out = np.empty((len(wins), len(self.sensors)), dtype=np.float32)
        start = 0
        while start < len(wins):
            stop = min(len(wins), start + SCORE_BATCH - (first_window + start) % SCORE_BATCH)
            x = torch.from_numpy(np.ascontiguousarray(wins[start:stop]))
            out[start:stop] = (self.model(x).recon - x).abs().mean(dim=2).numpy()
            start = stop
        return out

    def residuals(self, errors: np.ndarray) -> np.ndarray:
        return errors.astype(np.float64) @ self.weights

    def recalibrated(self, train_values: np.ndarray, weights: np.ndarray, config: DetectorConfig) -> "Detector":
        """The same network with other sensor weights and the threshold recomputed for them."""
        other = replace(self, weights=weights)
        return replace(other, threshold=threshold(other.residuals(other.window_errors(other.standardize(train_values))), config))

    def save(self, folder: str | Path, data: dict[str, Any], force: bool = True) -> Path:
        preprocessing = {
            "sensors": self.sensors, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "weights": self.weights.tolist(), "window": self.window, "threshold": self.threshold,
            "reader": self.reader.model_dump(mode="json"), "step_s": self.step_s,
        }
        return save_model(self.model, folder, domain=DOMAIN, preprocessing=preprocessing, data=data, info=self.info, force=force)


def load_detector(folder: str | Path) -> Detector:
    loaded = load_model(folder, domain=DOMAIN)
    p = loaded.preprocessing
    try:
        return Detector(
            model=loaded.model, sensors=list(p["sensors"]), mean=np.asarray(p["mean"], dtype=np.float64),
            scale=np.asarray(p["scale"], dtype=np.float64), weights=np.asarray(p["weights"], dtype=np.float64),
            window=int(p["window"]), threshold=float(p["threshold"]), reader=ReaderConfig.model_validate(p["reader"]),
            step_s=p["step_s"], info=loaded.info,
        )
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        raise UserError(Path(folder) / "config.json", f"invalid reader settings ({'.'.join(map(str, first['loc']))}: "
                                                      f"{first['msg']})") from None
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(Path(folder) / "config.json", f"not an anomaly detector (missing or bad {err})") from None


def threshold(train_residuals: np.ndarray, config: DetectorConfig) -> float:
    """SKAB's upper control limit: a quantile of the training residuals times a factor."""
    return float(np.quantile(train_residuals, config.threshold_quantile) * config.threshold_factor)


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
    epochs: int | None = None,
    quiet: bool = True,
) -> Detector:
    """Standardise on `values` (normal operation), train the autoencoder, set the threshold.

    The last `val_fraction` of the windows validate (early stopping), as Keras's
    validation_split does in SKAB's Conv-AE; the threshold uses every training window.
    """
    window = config.window
    n_windows = len(values) - window + 1
    fraction = config.trainer.val_fraction
    n_val = max(1, int(n_windows * fraction)) if fraction > 0 else 0
    if n_windows - n_val < 1:
        raise UserError(where, f"{len(values)} training rows are fewer than one window of {window} (plus validation)",
                        "train on more rows or use a shorter window")
    mean = values.mean(axis=0)
    level = values.std(axis=0)
    constant = [s for s, sd in zip(sensors, level) if sd == 0]
    scale = np.where(level > 0, level, 1.0)
    weights = short_term_weights(values) if config.sensor_weights == "short_term" else np.ones(len(sensors))
    z = ((values - mean) / scale).astype(np.float32)
    train_windows = torch.from_numpy(np.ascontiguousarray(windows(z, window)))
    fit_set, val_set = (train_windows[: n_windows - n_val], train_windows[n_windows - n_val:]) if n_val else (train_windows, train_windows)

    t = config.trainer
    trainer = TrainerConfig(epochs=epochs or t.epochs, batch_size=t.batch_size, lr=t.lr, patience=t.patience,
                            scheduler="constant", grad_clip=None, seed=t.seed, device=t.device, bf16=False)
    seed_everything(t.seed)
    model = build_model(AutoencoderConfig.model_validate({**config.model, "spatial_dims": 1, "in_channels": len(sensors)}))
    with contextlib.ExitStack() as stack:
        if checkpoint_dir is None:
            checkpoint_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="latente-anomaly-"))
        if quiet:
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        result = fit(model, fit_set, val_set, trainer, checkpoint_dir,
                     fingerprint={"detector": config.model_dump(mode="json"), **(fingerprint or {})}, live_dir=live_dir)
    detector = Detector(model=model, sensors=list(sensors), mean=mean, scale=scale, weights=weights, window=window,
                        threshold=math.nan, reader=reader, step_s=step_s, info={})
    detector.threshold = threshold(detector.residuals(detector.window_errors(z)), config)
    detector.info = {
        "train_rows": len(values), "train_windows": n_windows - n_val, "val_windows": n_val,
        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
        "fit_seconds": result.seconds, "resumed_from_epoch": result.resumed_from_epoch, "constant_sensors": constant, "sensor_weights": config.sensor_weights,
        "threshold_rule": f"quantile {config.threshold_quantile} of training residuals × {config.threshold_factor:.6g}",
    }
    return detector
