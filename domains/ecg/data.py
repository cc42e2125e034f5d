"""Training windows cut from prepared ECG leads, on a fixed grid so an epoch is deterministic."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from latente.shared.errors import UserError


def save_signals(signals: dict[str, np.ndarray], path: Path) -> None:
    """Leads in model units (mV / scale), one float32 tensor per record."""
    save_file({name: torch.from_numpy(s.astype(np.float32)) for name, s in signals.items()}, str(path))


def load_signals(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(path, "prepared signals not found", "run `dvc repro prepare@ecg` first")
    return load_file(str(path))


class WindowDataset(Dataset):
    """All windows of `length` samples, `hop` apart, over every signal, as [1, length]."""

    def __init__(self, signals: dict[str, torch.Tensor], length: int, hop: int | None = None):
        self.signals = [signals[k] for k in sorted(signals)]
        self.length = length
        hop = hop or length
        self.index = [
            (i, start)
            for i, s in enumerate(self.signals)
            for start in range(0, len(s) - length + 1, hop)
        ]
        if not self.index:
            raise UserError("ecg.train.window", f"no signal is as long as one window ({length} samples)")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> torch.Tensor:
        i, start = self.index[item]
        return self.signals[i][start : start + self.length].unsqueeze(0)
