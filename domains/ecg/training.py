"""Train the ECG codecs (autoencoder + scale hyperprior), one per named rate weight."""
from __future__ import annotations

import sys
from pathlib import Path

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.data import WindowDataset, load_signals
from latente.domains.ecg.model import EcgCodec, save_codec, transform_config
from latente.domains.ecg.params import TrainParams
from latente.shared.io import atomic_dir, read_json
from latente.shared.stage import DomainPaths
from latente.shared.trainer import FitResult, fit, seed_everything


def train_codec(params: TrainParams, rate_weight: float, prepared: Path, model_dir: Path, checkpoint_dir: Path,
                live_dir: Path | None, preprocessing: dict) -> FitResult:
    """Fit one codec on the prepared windows and save it with its preprocessing and training record."""
    train_signals = load_signals(prepared / "train.safetensors")
    val_signals = load_signals(prepared / "validation.safetensors")
    seed_everything(params.trainer.seed)
    transform = transform_config(params.model)
    codec = EcgCodec(transform, params.hyperprior, rate_weight)
    result = fit(
        codec, WindowDataset(train_signals, params.window, params.hop), WindowDataset(val_signals, params.window),
        params.trainer, checkpoint_dir,
        fingerprint={"model": transform.model_dump(mode="json"), "hyperprior": params.hyperprior.model_dump(mode="json"),
                     "rate_weight": rate_weight, "window": params.window, "hop": params.hop, "data": preprocessing},
        live_dir=live_dir,
    )
    save_codec(codec, model_dir, preprocessing=preprocessing,
               data={"train_records": sorted(train_signals), "window": params.window}, info=result.to_json())
    print(f"saved {model_dir} (best val loss {result.best_val_loss:.5g}, {result.seconds:.0f} s)", file=sys.stderr)
    return result


def train(params: TrainParams, paths: DomainPaths) -> None:
    prepared = read_json(paths.prepared / "prepared.json")
    preprocessing = {"fs": prepared["fs"], "reference_sd_mv": prepared["reference_sd_mv"], "window": params.window,
                     "input": "lead in mV scaled to reference_sd_mv standard deviation (the factor goes in the file's header), "
                              "whole record at once (fully convolutional)"}
    with atomic_dir(paths.model) as tmp:
        for name, variant in params.variants.items():
            train_codec(params, variant.rate_weight, paths.prepared, tmp / name, paths.checkpoint / name,
                        paths.training_log / name, preprocessing)
