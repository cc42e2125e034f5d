"""Feature extraction: the model's log-mel input and the MFCC baseline.

Log-mel dB values are taken relative to each clip's maximum and floored at -top_db, so
they do not depend on recording level; the floor also hides most of a weak noise floor.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torchaudio.transforms as T

from latente.domains.speech.audio import fix_duration
from latente.domains.speech.params import FeatureParams, MfccParams


class LogMel:
    """Waveforms at the feature rate → [B, 1, n_mels, frames] relative log-mel spectrograms."""

    def __init__(self, params: FeatureParams):
        self.params = params
        self.mel = T.MelSpectrogram(sample_rate=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length, n_mels=params.n_mels)
        self.to_db = T.AmplitudeToDB("power", top_db=params.top_db)

    def fixed(self, recordings: Sequence[torch.Tensor]) -> torch.Tensor:
        """[B, samples]: each recording padded with silence or cropped to the fixed duration."""
        return torch.stack([fix_duration(r, self.params.samples, self.params.align) for r in recordings])

    def __call__(self, recordings: Sequence[torch.Tensor]) -> torch.Tensor:
        power = self.mel(self.fixed(recordings)).unsqueeze(1)
        # A 4-D input makes AmplitudeToDB apply top_db per clip rather than per batch.
        db = self.to_db(power)
        return db - db.amax(dim=(1, 2, 3), keepdim=True)


class Normaliser:
    """Scalar standardisation with statistics from the training split only."""

    def __init__(self, mean: float, std: float):
        self.mean, self.std = float(mean), float(std)

    @classmethod
    def fit(cls, spectrograms: torch.Tensor) -> "Normaliser":
        return cls(spectrograms.mean().item(), spectrograms.std().item())

    def __call__(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return (spectrograms - self.mean) / self.std

    def inverse(self, normalised: torch.Tensor) -> torch.Tensor:
        return normalised * self.std + self.mean

    def to_json(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


class Mfcc:
    """The baseline: MFCCs with Δ and ΔΔ on the whole recording, mean- and std-pooled (6 × n_mfcc dims)."""

    def __init__(self, params: MfccParams, sample_rate: int):
        self.params = params
        self.transform = T.MFCC(
            sample_rate=sample_rate, n_mfcc=params.n_mfcc,
            melkwargs={"n_fft": params.n_fft, "hop_length": params.hop_length, "n_mels": params.n_mels},
        )
        self.delta = T.ComputeDeltas()

    def __call__(self, recordings: Sequence[torch.Tensor]) -> torch.Tensor:
        rows = []
        for samples in recordings:
            coeffs = self.transform(samples)
            d1 = self.delta(coeffs)
            frames = torch.cat([coeffs, d1, self.delta(d1)])
            rows.append(torch.cat([frames.mean(1), frames.std(1)]))
        return torch.stack(rows)


class GriffinLimInverter:
    """Relative log-mel dB → waveform (inverse mel filter bank, then Griffin-Lim phase; deterministic)."""

    def __init__(self, params: FeatureParams, n_iter: int = 64):
        self.inverse_mel = T.InverseMelScale(n_stft=params.n_fft // 2 + 1, n_mels=params.n_mels, sample_rate=params.sample_rate)
        self.griffin_lim = T.GriffinLim(n_fft=params.n_fft, hop_length=params.hop_length, power=2.0, n_iter=n_iter, rand_init=False)

    def __call__(self, db: torch.Tensor) -> torch.Tensor:
        power = torch.pow(10.0, db / 10.0)
        wave = self.griffin_lim(self.inverse_mel(power))
        return 0.9 * wave / wave.abs().max().clamp_min(1e-8)
