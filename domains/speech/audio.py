"""Reading recordings: any WAV soundfile reads, mixed to mono and resampled to one rate.

Every problem with a file becomes a UserError naming it; clipping is only a warning,
because clipped speech is still speech.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from latente.shared.errors import UserError

MIN_SAMPLE_RATE = 1000
# Windowed-sinc resampling builds a (new/g) × (orig/g) kernel, g = gcd of the two rates:
# rates that share almost no factor would need gigabytes, so they are refused.
MAX_RESAMPLE_KERNEL = 20_000_000
FULL_SCALE = 0.999
CLIP_RUN = 3


def warn(where: str | Path, problem: str) -> None:
    """A warning in the error-line format; processing continues."""
    print(f"warning: {where}: {problem}", file=sys.stderr)


def check_resampling(path: str | Path, source_rate: int, target_rate: int) -> None:
    if source_rate < MIN_SAMPLE_RATE:
        raise UserError(path, f"sample rate {source_rate} Hz is too low to hold speech", f"use recordings at ≥ {MIN_SAMPLE_RATE} Hz")
    g = math.gcd(source_rate, target_rate)
    if (source_rate // g) * (target_rate // g) > MAX_RESAMPLE_KERNEL:
        raise UserError(
            path, f"cannot resample {source_rate} Hz to {target_rate} Hz (the rates share too small a factor)",
            "convert it to a standard rate such as 8000, 16000 or 44100 Hz first",
        )


def clip_run_length(samples: torch.Tensor) -> int:
    """Length of the longest run of consecutive samples at full scale."""
    at_full = (samples.abs() >= FULL_SCALE).to(torch.int8).numpy()
    if not at_full.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], at_full, [0]))))
    return int((edges[1::2] - edges[::2]).max())


def is_clipped(samples: torch.Tensor) -> bool:
    return clip_run_length(samples) >= CLIP_RUN


def load_audio(path: str | Path, sample_rate: int) -> tuple[torch.Tensor, bool]:
    """Mono float32 samples at `sample_rate`, and whether the recording is clipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "file not found")
    if path.stat().st_size == 0:
        raise UserError(path, "empty file (0 bytes)", "re-export the recording")
    try:
        data, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise UserError(path, f"not a readable audio file ({err})", "give a WAV file") from None
    if data.shape[0] == 0:
        raise UserError(path, "contains no audio samples (zero length)")
    if not np.isfinite(data).all():
        raise UserError(path, "contains NaN or infinite samples")
    clipped = any(is_clipped(torch.from_numpy(data[:, c])) for c in range(data.shape[1]))
    samples = torch.from_numpy(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0])
    if source_rate != sample_rate:
        check_resampling(path, source_rate, sample_rate)
        samples = AF.resample(samples, source_rate, sample_rate)
    return samples.contiguous(), clipped


def fix_duration(samples: torch.Tensor, length: int, align: str) -> torch.Tensor:
    """Pad with silence or crop to `length` samples, keeping the start or the centre."""
    excess = samples.shape[-1] - length
    if excess >= 0:
        start = excess // 2 if align == "center" else 0
        return samples[..., start : start + length]
    before = -excess // 2 if align == "center" else 0
    return torch.nn.functional.pad(samples, (before, -excess - before))


def add_white_noise(samples: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """Add white Gaussian noise at `snr_db` relative to the recording's own mean power."""
    power = samples.double().pow(2).mean()
    scale = torch.sqrt(power / 10.0 ** (snr_db / 10.0)).float()
    return samples + scale * torch.randn(samples.shape, generator=generator)
