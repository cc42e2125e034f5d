"""Train the ECG codec models (autoencoders with an entropy bottleneck): one per operating point."""
from __future__ import annotations

import sys
from pathlib import Path

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.data import WindowDataset, load_signals
from latente.domains.ecg.model import model_config
from latente.domains.ecg.params import TrainParams
from latente.shared.io import atomic_dir, read_json
from latente.shared.models import AutoencoderConfig, build_model, save_model
from latente.shared.stage import DomainPaths
from latente.shared.params import TrainerConfig
from latente.shared.trainer import FitResult, fit, seed_everything


def train_codec(
    config: AutoencoderConfig,
    trainer: TrainerConfig,
    window: int,
    hop: int | None,
    prepared: Path,
    model_dir: Path,
    checkpoint_dir: Path,
    live_dir: Path | None,
    preprocessing: dict,
) -> FitResult:
    """Fit one codec on the prepared windows and save it with its preprocessing and training record."""
    train_signals = load_signals(prepared / "train.safetensors")
    val_signals = load_signals(prepared / "validation.safetensors")
    seed_everything(trainer.seed)
    model = build_model(config)
    result = fit(
        model, WindowDataset(train_signals, window, hop), WindowDataset(val_signals, window), trainer, checkpoint_dir,
        fingerprint={"model": config.model_dump(mode="json"), "window": window, "hop": hop, "data": preprocessing},
        live_dir=live_dir,
    )
    save_model(
        model, model_dir, domain=DOMAIN, preprocessing=preprocessing,
        data={"train_records": sorted(train_signals), "window": window},
        info=result.to_json(),
    )
    print(f"saved {model_dir} (best val loss {result.best_val_loss:.5g}, {result.seconds:.0f} s)", file=sys.stderr)
    return result


def codec_configs(params: TrainParams) -> dict[str, AutoencoderConfig]:
    """One model per named variant, or just `model` as "default" when there are none."""
    if not params.variants:
        return {"default": model_config(params.model)}
    return {name: model_config(params.model, variant) for name, variant in params.variants.items()}


def train(params: TrainParams, paths: DomainPaths) -> None:
    prepared = read_json(paths.prepared / "prepared.json")
    preprocessing = {"fs": prepared["fs"], "scale_mv": prepared["scale_mv"], "window": params.window,
                     "input": "lead in mV divided by scale_mv, whole record at once (fully convolutional)"}
    with atomic_dir(paths.model) as tmp:
        for name, config in codec_configs(params).items():
            train_codec(config, params.trainer, params.window, params.hop, paths.prepared, tmp / name,
                        paths.checkpoint / name, paths.training_log / name, preprocessing)
