"""The prepared alignment: codes and weights (safetensors) plus ids and focus (JSON)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from latente.domains.protein.alignment import Alignment, Focus, read_alignment
from latente.domains.protein.weights import sequence_weights
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json

TENSORS = "alignment.safetensors"
META = "alignment.json"


@dataclass(frozen=True)
class WeightedAlignment:
    alignment: Alignment
    weights: np.ndarray
    theta: float
    weight_seconds: float

    @property
    def neff(self) -> float:
        return float(self.weights.sum())


def weigh(path: str | Path, focus: str | None, theta: float) -> WeightedAlignment:
    """Parse an alignment and compute its sequence weights."""
    alignment = read_alignment(path, focus)
    started = time.perf_counter()
    weights = sequence_weights(alignment.codes, theta)
    return WeightedAlignment(alignment, weights, theta, time.perf_counter() - started)


def save_prepared(data: WeightedAlignment, folder: Path) -> None:
    a = data.alignment
    with atomic_dir(folder) as tmp:
        save_file({"codes": torch.from_numpy(a.codes), "weights": torch.from_numpy(data.weights)}, str(tmp / TENSORS))
        write_json(tmp / META, {
            "source": a.source, "ids": a.ids, "focus": a.focus.to_dict(), "n_removed": a.n_removed,
            "theta": data.theta, "neff": data.neff, "weight_seconds": data.weight_seconds,
        })


def load_prepared(folder: Path) -> WeightedAlignment:
    if not (folder / TENSORS).is_file():
        raise UserError(folder, "no prepared alignment", "run `dvc repro prepare@protein` first")
    tensors = load_file(str(folder / TENSORS))
    meta = read_json(folder / META)
    alignment = Alignment(ids=meta["ids"], codes=tensors["codes"].numpy(), focus=Focus.from_dict(meta["focus"]),
                          n_removed=meta["n_removed"], source=meta["source"])
    return WeightedAlignment(alignment, tensors["weights"].numpy(), meta["theta"], meta["weight_seconds"])
