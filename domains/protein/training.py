"""Training the family VAE with the shared trainer, sampling sequences by their weights."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from latente.domains.protein import DOMAIN
from latente.domains.protein.data import ALPHABET, WeightedAlignment, load_prepared
from latente.domains.protein.model import FamilyVAE, model_config
from latente.domains.protein.params import TrainParams
from latente.shared.errors import UserError
from latente.shared.models import save_model
from latente.shared.stage import DomainPaths
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
    model = FamilyVAE(model_config(params.model, codes.shape[1]), params.decoder, neff=float(weights[train_idx].sum()))
    result = fit(
        model, OneHotSequences(codes[train_idx]), OneHotSequences(codes[val_idx]), params.trainer, checkpoint_dir,
        fingerprint=fingerprint, live_dir=live_dir, sample_weights=torch.as_tensor(weights[train_idx]),
    )
    return Trained(model, result)


def save_family_vae(trained: Trained, data: WeightedAlignment, folder: str | Path, force: bool = True) -> None:
    """Save the folded dense_vae with what scoring and sampling need (alphabet, focus numbering).

    `info` holds the decoder options the weights were trained with (the report describes them),
    the thread count and the training record.
    """
    a = data.alignment
    save_model(
        trained.model.plain(), folder, domain=DOMAIN, force=force,
        preprocessing={"alphabet": ALPHABET, "focus": a.focus.to_dict()},
        data={"alignment": a.source, "sequences": a.shape[0], "columns": a.shape[1], "removed": a.n_removed,
              "theta": data.theta, "neff": data.neff},
        info={"decoder": trained.model.params.model_dump(mode="json"), "threads": torch.get_num_threads(),
              "fit": trained.fit.to_json()},
    )


def train(params: TrainParams, paths: DomainPaths) -> None:
    """The train stage: the prepared alignment → the saved family VAE (resuming from its checkpoint)."""
    data = load_prepared(paths.prepared)
    fingerprint = {"params": params.model_dump(mode="json"), "data": {"source": data.alignment.source, "neff": data.neff,
                                                                      "shape": list(data.alignment.shape)}}
    trained = train_family_vae(data.alignment.codes, data.weights, params, paths.checkpoint,
                               fingerprint=fingerprint, live_dir=paths.training_log)
    save_family_vae(trained, data, paths.model)
    fit_result = trained.fit
    print(f"trained {fit_result.epochs_run} epochs in {fit_result.seconds:.0f} s wall, {fit_result.cpu_seconds:.0f} s CPU "
          f"(best epoch {fit_result.best_epoch})")
