"""Training the family VAE ensemble with the shared trainer, sampling sequences by their weights."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from latente.domains.protein import DOMAIN
from latente.domains.protein.data import ALPHABET, WeightedAlignment, load_prepared
from latente.domains.protein.model import ENSEMBLE, FamilyVAE, model_config
from latente.domains.protein.params import TrainParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, write_json
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


MEMBER_SEED_STRIDE = 1000  # member k of the procedure with seed s trains with seed s + 1000 k
MEMBERS = "members"
SEEDS = "seeds"


def member_seed(seed: int, member: int) -> int:
    return seed + MEMBER_SEED_STRIDE * member


def with_seed(params: TrainParams, seed: int) -> TrainParams:
    return params.model_copy(update={"trainer": params.trainer.model_copy(update={"seed": seed})})


@dataclass
class Trained:
    model: FamilyVAE
    fit: FitResult
    seed: int


def train_family_vae(
    codes: np.ndarray,
    weights: np.ndarray,
    params: TrainParams,
    checkpoint_dir: str | Path,
    *,
    fingerprint: dict[str, Any],
    live_dir: str | Path | None = None,
    member: int = 0,
    repeat: int = 1,
) -> Trained:
    """Fit member `member` of the procedure (the weights of its best validation epoch).

    The validation split is drawn with the procedure's seed, so every member holds out the same
    sequences; the model's initialisation and sample order use the member's seed. `repeat` > 1
    makes an epoch draw `repeat` times as many samples (`steps_matched`).
    """
    if len(codes) < MIN_SEQUENCES:
        raise UserError("alignment", f"only {len(codes)} sequences after filtering", f"a family VAE needs at least {MIN_SEQUENCES}")
    train_idx, val_idx = split(len(codes), params.val_fraction, params.trainer.seed)
    seed = member_seed(params.trainer.seed, member)
    trainer = params.trainer.model_copy(update={"seed": seed})
    seed_everything(seed)
    model = FamilyVAE(model_config(params.model, codes.shape[1]), params.decoder, neff=float(weights[train_idx].sum()))
    drawn = np.tile(train_idx, repeat)
    result = fit(
        model, OneHotSequences(codes[drawn]), OneHotSequences(codes[val_idx]), trainer, checkpoint_dir,
        fingerprint={**fingerprint, "member": member, "repeat": repeat}, live_dir=live_dir,
        sample_weights=torch.as_tensor(weights[drawn]),
    )
    return Trained(model, result, seed)


def steps_matched(n_sequences: int, reference_sequences: int, val_fraction: float) -> int:
    """How many times an epoch on `n_sequences` must repeat its training set to take as many optimiser
    steps as an epoch on `reference_sequences`: a shallow alignment then trains as long as the deep one
    instead of for a handful of steps (its best validation epoch still guards against overfitting)."""
    def train_size(n: int) -> int:
        return n - int(round(n * val_fraction)) if int(round(n * val_fraction)) else n

    return max(1, round(train_size(reference_sequences) / train_size(n_sequences)))


def train_ensemble(
    codes: np.ndarray,
    weights: np.ndarray,
    params: TrainParams,
    checkpoint_dir: str | Path,
    *,
    fingerprint: dict[str, Any],
    live_dir: str | Path | None = None,
    repeat: int = 1,
) -> list[Trained]:
    """The procedure: `params.members` family VAEs (member 0 logs to `live_dir`), each resuming from its own checkpoint."""
    return [train_family_vae(codes, weights, params, Path(checkpoint_dir) / f"member_{k}", fingerprint=fingerprint,
                             live_dir=live_dir if k == 0 else None, member=k, repeat=repeat)
            for k in range(params.members)]


def save_family_vae(trained: Trained, data: WeightedAlignment, folder: str | Path, force: bool = True) -> None:
    """Save the folded dense_vae with what scoring and sampling need (alphabet, focus numbering).

    `info` holds the decoder options the weights were trained with (the report describes them),
    the member's seed, the thread count and the training record.
    """
    a = data.alignment
    save_model(
        trained.model.plain(), folder, domain=DOMAIN, force=force,
        preprocessing={"alphabet": ALPHABET, "focus": a.focus.to_dict()},
        data={"alignment": a.source, "sequences": a.shape[0], "columns": a.shape[1], "removed": a.n_removed,
              "theta": data.theta, "neff": data.neff},
        info={"decoder": trained.model.params.model_dump(mode="json"), "seed": trained.seed,
              "threads": torch.get_num_threads(), "fit": trained.fit.to_json()},
    )


def write_ensemble(members: list[Trained], data: WeightedAlignment, seed: int, folder: Path,
                   replicates: dict[int, str] | None = None) -> None:
    """The ensemble folder (`model.load_family`) inside `folder`, which the caller writes atomically."""
    for k, trained in enumerate(members):
        save_family_vae(trained, data, folder / MEMBERS / str(k))
    write_json(folder / ENSEMBLE, {
        "seed": seed, "members": [f"{MEMBERS}/{k}" for k in range(len(members))],
        "member_seeds": [trained.seed for trained in members],
        "replicates": {str(s): rel for s, rel in (replicates or {}).items()},
    })


def train(params: TrainParams, paths: DomainPaths) -> None:
    """The train stage: the procedure's ensemble, then its replicates with the next seeds (each member resumes
    from its checkpoint) → models/protein (seed `trainer.seed`) and models/protein/seeds/<seed>/."""
    data = load_prepared(paths.prepared)
    fingerprint = {"params": params.model_dump(mode="json"), "data": {"source": data.alignment.source, "neff": data.neff,
                                                                      "shape": list(data.alignment.shape)}}
    first = params.trainer.seed
    seeds = [first + r for r in range(params.replicates)]
    with atomic_dir(paths.model) as tmp:
        for seed in seeds:
            members = train_ensemble(data.alignment.codes, data.weights, with_seed(params, seed), paths.checkpoint / f"seed_{seed}",
                                     fingerprint={**fingerprint, "seed": seed}, live_dir=paths.training_log if seed == first else None)
            folder = tmp if seed == first else tmp / SEEDS / str(seed)
            write_ensemble(members, data, seed, folder, {s: f"{SEEDS}/{s}" for s in seeds[1:]} if seed == first else None)
            for trained in members:
                record = trained.fit
                print(f"seed {seed}, member seed {trained.seed}: {record.epochs_run} epochs in {record.seconds:.0f} s wall, "
                      f"{record.cpu_seconds:.0f} s CPU (best epoch {record.best_epoch})", flush=True)
