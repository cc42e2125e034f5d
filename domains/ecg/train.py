"""Train the ECG codec models and learn their latent symbol tables."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from domains.ecg.codec import symbol_table
from domains.ecg.data import WindowDataset, load_signals
from shared.models import AutoencoderConfig, build_model, save_model
from shared.models.autoencoders import quantize
from shared.trainer import FitResult, TrainerConfig, fit, seed_everything

DOMAIN = "ecg"


@torch.no_grad()
def latent_symbols(model, signals: dict[str, torch.Tensor], bits: int) -> np.ndarray:
    """Quantised codes of whole training signals, concatenated along time: [C, L]."""
    return np.concatenate([quantize(model.encode(s.view(1, 1, -1)), bits)[0].numpy() for s in signals.values()], axis=1)


def train_codec(
    config: AutoencoderConfig,
    trainer: TrainerConfig,
    window: int,
    table_bits: tuple[int, ...],
    prepared: Path,
    model_dir: Path,
    checkpoint_dir: Path,
    live_dir: Path | None,
    preprocessing: dict,
) -> FitResult:
    """Fit one codec on the prepared windows; save it with symbol tables for each bit depth."""
    if config.code_bits is None:
        raise ValueError("an ECG codec model needs code_bits")
    train_signals = load_signals(prepared / "train.safetensors")
    val_signals = load_signals(prepared / "validation.safetensors")
    seed_everything(trainer.seed)
    model = build_model(config)
    result = fit(
        model, WindowDataset(train_signals, window), WindowDataset(val_signals, window), trainer, checkpoint_dir,
        fingerprint={"model": config.model_dump(mode="json"), "window": window, "data": preprocessing},
        live_dir=live_dir,
    )
    extras = {}
    for bits in table_bits:
        extras[f"symbol_table_{bits}bit"] = torch.from_numpy(symbol_table(latent_symbols(model, train_signals, bits), bits))
    save_model(
        model, model_dir, domain=DOMAIN, preprocessing=preprocessing, extras=extras,
        data={"train_records": sorted(train_signals), "window": window},
        info={"best_val_loss": result.best_val_loss, "epochs_run": result.epochs_run, "train_seconds": result.seconds},
    )
    print(f"saved {model_dir} (best val loss {result.best_val_loss:.5g}, {result.seconds:.0f} s)", file=sys.stderr)
    return result
