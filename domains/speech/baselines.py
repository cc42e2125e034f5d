"""The classical baseline: MFCCs (Davis & Mermelstein, 1980), the standard features for spoken words.

The codes are judged against them under the same classifier, folds and noise (`evaluation.compare`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torchaudio.transforms as T

from latente.domains.speech.params import MfccParams


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
