"""Train the ECG codec models (autoencoders with an entropy bottleneck)."""
from __future__ import annotations

import sys
from pathlib import Path

from latente.domains.ecg.data import WindowDataset, load_signals
from latente.shared.models import AutoencoderConfig, build_model, save_model
from latente.shared.trainer import FitResult, TrainerConfig, fit, seed_everything

DOMAIN = "ecg"


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
    """Fit one codec on the prepared windows and save it with its preprocessing."""
    if config.code_bits is None:
        raise ValueError("an ECG codec model needs code_bits")
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
        info={"best_val_loss": result.best_val_loss, "epochs_run": result.epochs_run, "train_seconds": result.seconds},
    )
    print(f"saved {model_dir} (best val loss {result.best_val_loss:.5g}, {result.seconds:.0f} s)", file=sys.stderr)
    return result
