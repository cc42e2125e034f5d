"""Training the family VAE with the shared trainer, sampling sequences by their weights."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from latente.domains.protein.alignment import ALPHABET
from latente.domains.protein.model import FamilyVAE
from latente.domains.protein.params import TrainParams
from latente.domains.protein.prepared import WeightedAlignment
from latente.shared.errors import UserError
from latente.shared.models import AutoencoderConfig, save_model
from latente.shared.trainer import FitResult, fit, seed_everything

MIN_SEQUENCES = 10


class OneHotSequences(Dataset):
    """Integer-coded sequences served as [21, L] one-hot tensors (built per item, not stored)."""

    def __init__(self, codes: np.ndarray):
        self.codes = torch.as_tensor(codes, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.codes[i], len(ALPHABET)).T.float()


def model_config(params: TrainParams, length: int) -> AutoencoderConfig:
    m = params.model
    return AutoencoderConfig(
        name="dense_vae", spatial_dims=1, in_channels=len(ALPHABET), input_size=(length,),
        hidden=m.hidden, latent_dim=m.latent_dim, decoder_hidden=m.decoder_hidden, act=m.act,
        recon_loss="categorical", beta=m.beta,
    )


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices; with no validation fraction, all sequences do both."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction))
    if n_val == 0:
        return np.arange(n), np.arange(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@dataclass
class Trained:
    model: FamilyVAE
    fit: FitResult
    cpu_seconds: float  # process CPU time of the fit: with one thread, its wall time on an idle core


def train_family_vae(
    codes: np.ndarray,
    weights: np.ndarray,
    params: TrainParams,
    checkpoint_dir: str | Path,
    *,
    fingerprint: dict[str, Any],
    live_dir: str | Path | None = None,
) -> Trained:
    """Fit a FamilyVAE on the alignment (the weights of the best validation epoch)."""
    if len(codes) < MIN_SEQUENCES:
        raise UserError("alignment", f"only {len(codes)} sequences after filtering", f"a family VAE needs at least {MIN_SEQUENCES}")
    train_idx, val_idx = split(len(codes), params.val_fraction, params.trainer.seed)
    seed_everything(params.trainer.seed)
    model = FamilyVAE(model_config(params, codes.shape[1]), params.decoder, neff=float(weights[train_idx].sum()))
    started = time.process_time()
    result = fit(
        model, OneHotSequences(codes[train_idx]), OneHotSequences(codes[val_idx]), params.trainer, checkpoint_dir,
        fingerprint=fingerprint, live_dir=live_dir, sample_weights=torch.as_tensor(weights[train_idx]),
    )
    return Trained(model, result, time.process_time() - started)


def save_family_vae(trained: Trained, data: WeightedAlignment, folder: str | Path, force: bool = True) -> None:
    """Save the folded dense_vae with what scoring and sampling need (alphabet, focus numbering)."""
    a, model, result = data.alignment, trained.model, trained.fit
    save_model(
        model.plain(), folder, domain="protein", force=force,
        preprocessing={"alphabet": ALPHABET, "focus": a.focus.to_dict()},
        data={"alignment": a.source, "sequences": a.shape[0], "columns": a.shape[1], "removed": a.n_removed,
              "theta": data.theta, "neff": data.neff},
        info={"decoder": model.params.model_dump(mode="json"), "seconds": result.seconds,
              "cpu_seconds": trained.cpu_seconds, "threads": torch.get_num_threads(), "epochs_run": result.epochs_run,
              "best_epoch": result.best_epoch, "resumed_from": result.resumed_from_epoch, "history": result.history},
    )
