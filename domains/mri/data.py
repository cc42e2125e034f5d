"""Training data: axial slices of the training volumes, split by slice blocks into train/val.

Volumes are stored axial-first ([Z, X, Y], RAS) on a [0, 1] scale. A model input is a stack
of `2·context + 1` adjacent axial slices (2.5-D); the model denoises every slice of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from safetensors.torch import load_file
from torch.utils.data import Dataset

from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.models.store import save_tensors
from latente.shared.noise import corrupt

from latente.domains.mri.params import PatchParams, PrepareParams
from latente.domains.mri.volumes import TRAINING_ORIENTATION, read_volume, to_orientation, unit_scale

SPLIT_FILE = "split.json"
TENSOR_FILE = "train.safetensors"
VAL_BLOCK = 10
FOREGROUND = 0.05  # clean intensity above which a voxel is head, as in the evaluation mask  # slices per validation block: neighbouring slices are near copies of each other


def axial_first(volume: np.ndarray) -> np.ndarray:
    """[X, Y, Z] → [Z, X, Y] (contiguous)."""
    return np.ascontiguousarray(np.moveaxis(volume, -1, 0))


def split_slices(brain: np.ndarray, min_fraction: float, val_fraction: float) -> tuple[list[int], list[int]]:
    """Axial slices holding at least `min_fraction` brain, split into train and val blocks of slices."""
    fraction = brain.reshape(brain.shape[0], -1).mean(1)
    keep = [int(z) for z in np.flatnonzero(fraction >= min_fraction)]
    period = max(2, round(1 / val_fraction))
    val = [z for i, z in enumerate(keep) if (i // VAL_BLOCK) % period == period // 2]
    return [z for z in keep if z not in set(val)], val


def prepare(params: PrepareParams, raw: Path, out: Path) -> dict:
    """Rescale each training volume to [0, 1], keep its brain mask, pick and split its slices."""
    tensors: dict[str, torch.Tensor] = {}
    split = {"volumes": list(params.train_volumes), "test_volumes": list(params.test_volumes), "train": [], "val": [], "brain_scale": []}
    for name in params.test_volumes:
        read_volume(raw / name)  # checked now, so a bad test file fails before training
    for i, (name, mask_name) in enumerate(zip(params.train_volumes, params.train_masks)):
        volume, mask = read_volume(raw / name), read_volume(raw / mask_name)
        if mask.data.shape != volume.data.shape:
            raise UserError(raw / mask_name, f"mask shape {mask.data.shape} differs from {name} {volume.data.shape}")
        scaled, _, _ = unit_scale(volume.data)
        scaled = axial_first(to_orientation(scaled, volume.image.affine, TRAINING_ORIENTATION))
        brain = axial_first(to_orientation(mask.data > 0, mask.image.affine, TRAINING_ORIENTATION))
        train, val = split_slices(brain, params.min_brain_fraction, params.val_fraction)
        if not train or not val:
            raise UserError(raw / mask_name, "too few axial slices hold brain to train and validate", "lower prepare.min_brain_fraction")
        tensors[f"volume.{i}"] = torch.from_numpy(scaled)
        tensors[f"brain.{i}"] = torch.from_numpy(brain.astype(np.uint8))
        split["train"] += [[i, z] for z in train]
        split["val"] += [[i, z] for z in val]
        split["brain_scale"].append(float(np.percentile(scaled[brain], 99.9)))
    with atomic_dir(out) as tmp:
        save_tensors(tensors, tmp / TENSOR_FILE)
        write_json(tmp / SPLIT_FILE, split)
    return split


@dataclass
class Prepared:
    volumes: list[np.ndarray]
    brains: list[np.ndarray]
    split: dict

    @classmethod
    def load(cls, folder: Path) -> "Prepared":
        split = read_json(folder / SPLIT_FILE)
        tensors = load_file(str(folder / TENSOR_FILE))
        n = len(split["volumes"])
        return cls([tensors[f"volume.{i}"].numpy() for i in range(n)], [tensors[f"brain.{i}"].numpy().astype(bool) for i in range(n)], split)

    def stack(self, index: int, z: int, context: int, brain_only: bool) -> np.ndarray:
        """Slices z-context … z+context (edges repeated); brain-only stacks are rescaled to a brain max of ≈ 1."""
        volume = self.volumes[index]
        zs = np.clip(np.arange(z - context, z + context + 1), 0, volume.shape[0] - 1)
        stack = volume[zs]
        if brain_only:
            stack = stack * self.brains[index][zs] / self.split["brain_scale"][index]
        return stack


class PatchDataset(Dataset):
    """Random clean 2.5-D patches; item i is a fixed function of (seed, i). Noise is added by the model."""

    def __init__(self, prepared: Prepared, params: PatchParams, context: int, seed: int):
        self.prepared, self.params, self.context, self.seed = prepared, params, context, seed
        self.slices = prepared.split["train"]

    def __len__(self) -> int:
        return self.params.per_epoch

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, i])
        index, z = self.slices[rng.integers(len(self.slices))]
        stack = self.prepared.stack(index, z, self.context, brain_only=bool(rng.random() < self.params.brain_only))
        if rng.random() < self.params.blur_share:
            width = rng.uniform(*self.params.blur)
            stack = gaussian_filter(stack, (0.0, width, width), mode="nearest")
        size = self.params.size
        centred = rng.random() < self.params.foreground
        for _ in range(20):  # rejection sampling of a patch centred on the head
            x0 = rng.integers(stack.shape[1] - size + 1)
            y0 = rng.integers(stack.shape[2] - size + 1)
            if not centred or stack[self.context, x0 + size // 2, y0 + size // 2] > FOREGROUND:
                break
        patch = stack[:, x0 : x0 + size, y0 : y0 + size]
        patch = np.rot90(patch, k=int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = patch * rng.uniform(*self.params.gain)
        return torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32))


class ValidationDataset(Dataset):
    """Whole validation slices, head and brain-only, with fixed seeded noise: (noisy, clean) pairs."""

    def __init__(self, prepared: Prepared, params: PatchParams, context: int, kind: str, seed: int):
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        generator = torch.Generator().manual_seed(seed)
        n = 0
        for index, z in prepared.split["val"]:
            for brain_only in (False, True):
                clean = torch.from_numpy(np.ascontiguousarray(prepared.stack(index, z, context, brain_only), dtype=np.float32))
                level = params.val_levels[n % len(params.val_levels)]
                self.pairs.append((corrupt(clean, kind, level, generator), clean[context : context + 1]))
                n += 1

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs[i]
