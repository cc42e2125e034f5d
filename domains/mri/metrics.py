"""PSNR and SSIM (MONAI metrics) over a whole slab of axial slices and inside a foreground mask.

SSIM is 2-D per axial slice with MONAI's Gaussian window (11 × 11, σ = 1.5), which equals
skimage's `structural_similarity(gaussian_weights=True, use_sample_covariance=False)`.
The in-mask SSIM averages the SSIM map over the mask voxels that the valid-convolution map
covers (a 5-voxel border of each slice has no SSIM value, as in skimage).
"""
from __future__ import annotations

import numpy as np
import torch
from monai.metrics import PSNRMetric
from monai.metrics.regression import compute_ssim_and_cs

DATA_RANGE = 1.0
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64)


def psnr(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB for data on a [0, 1] scale; over `mask` voxels only when given."""
    if mask is not None:
        pred, ref = pred[mask], ref[mask]
    metric = PSNRMetric(max_val=DATA_RANGE)
    return float(metric(_tensor(pred).reshape(1, 1, -1), _tensor(ref).reshape(1, 1, -1)).item())


def ssim_map(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """SSIM map of each axial slice of [X, Y, Z] volumes: shape [Z, X - 10, Y - 10]."""
    to_slices = lambda a: _tensor(np.moveaxis(a, -1, 0))[:, None]  # noqa: E731  [Z, 1, X, Y]
    value, _ = compute_ssim_and_cs(
        to_slices(pred), to_slices(ref), spatial_dims=2, kernel_size=[SSIM_WINDOW] * 2,
        kernel_sigma=[SSIM_SIGMA] * 2, data_range=DATA_RANGE,
    )
    return value[:, 0].numpy()


def ssim(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean 2-D SSIM over the axial slices of [X, Y, Z] volumes; over `mask` voxels when given."""
    values = ssim_map(pred, ref)
    if mask is None:
        return float(values.mean())
    border = SSIM_WINDOW // 2
    inner = np.moveaxis(mask, -1, 0)[:, border:-border, border:-border]
    return float(values[inner].mean())


def all_metrics(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The four MRI figures: whole slab and in-mask (the headline) PSNR and SSIM."""
    return {
        "psnr": psnr(pred, ref),
        "ssim": ssim(pred, ref),
        "psnr_mask": psnr(pred, ref, mask),
        "ssim_mask": ssim(pred, ref, mask),
    }
