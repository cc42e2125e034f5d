"""Apply a trained 2.5-D residual denoiser to a volume, slice stack by slice stack."""
from __future__ import annotations

import sys

import numpy as np
import torch
from tqdm import tqdm

from latente.shared.models import Autoencoder

from latente.domains.mri.volumes import unit_scale


def context_of(model: Autoencoder) -> int:
    """Adjacent slices on each side of the one being denoised."""
    return (model.config.in_channels - 1) // 2


def prepare_for_inference(model: Autoencoder) -> Autoencoder:
    """Eval mode and channels-last weights (2–3× faster CPU convolutions, same numbers)."""
    return model.eval().to(memory_format=torch.channels_last)


@torch.inference_mode()
def denoise_unit(
    model: Autoencoder,
    volume: np.ndarray,
    zs: slice | None = None,
    batch: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """Denoise the axial slices `zs` (all by default) of an [X, Y, Z] volume on a [0, 1] scale.

    Each slice is the centre of a stack of `2·context + 1` neighbours (edges repeated);
    returns [X, Y, len(zs)].
    """
    context = context_of(model)
    axial = torch.from_numpy(np.ascontiguousarray(np.moveaxis(volume, -1, 0), dtype=np.float32))  # [Z, X, Y]
    depth = axial.shape[0]
    centres = list(range(depth))[zs or slice(None)]
    offsets = torch.arange(-context, context + 1)
    out = np.empty((len(centres), *axial.shape[1:]), dtype=np.float32)
    bar = tqdm(total=len(centres), desc="denoising slices", unit="slice", file=sys.stderr, disable=not progress)
    for start in range(0, len(centres), batch):
        chunk = torch.tensor(centres[start : start + batch])
        index = (chunk[:, None] + offsets).clamp(0, depth - 1)
        stacks = axial[index].contiguous(memory_format=torch.channels_last)  # [B, 2c+1, X, Y]
        recon = model(stacks).recon[:, 0]
        out[start : start + len(chunk)] = recon.float().numpy()
        bar.update(len(chunk))
    bar.close()
    return np.moveaxis(out, 0, -1)


def denoise_values(model: Autoencoder, data: np.ndarray, zs: slice | None = None, progress: bool = False) -> np.ndarray:
    """Denoise an [X, Y, Z] RAS volume in any units: min–max scaled to [0, 1] like the training
    volumes, denoised, scaled back and clipped to the input's own intensity range."""
    scaled, lo, hi = unit_scale(data)
    return np.clip(denoise_unit(model, scaled, zs, progress=progress) * (hi - lo) + lo, lo, hi)
