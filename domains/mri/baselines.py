"""Classical denoisers the model is measured against, all given the true noise σ.

- `gaussian`: a 3-D Gaussian filter whose width is picked per volume and noise level from
  `GAUSSIAN_WIDTHS` by the best in-mask PSNR against the clean volume (an oracle choice,
  which flatters this baseline);
- `nlm`: skimage's non-local means per axial slice, in fast mode with the true σ, h = 0.8σ,
  5 × 5 patches searched within a distance of 6 (`NLM_SETTINGS`);
- `bm3d`: the `bm3d` package per axial slice with the true σ (both stages).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

from latente.domains.mri.metrics import psnr

GAUSSIAN_WIDTHS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4)
NLM_SETTINGS = {"patch_size": 5, "patch_distance": 6, "h_per_sigma": 0.8}


def best_gaussian(noisy: np.ndarray, clean: np.ndarray, mask: np.ndarray, zs: slice) -> tuple[np.ndarray, float]:
    """3-D Gaussian filter of the whole volume, cropped to `zs`, at the oracle-best width (voxels)."""
    best: tuple[float, np.ndarray, float] | None = None
    for width in GAUSSIAN_WIDTHS:
        smooth = gaussian_filter(noisy, width, mode="nearest")[..., zs]
        score = psnr(smooth, clean[..., zs], mask[..., zs])
        if best is None or score > best[0]:
            best = (score, smooth, width)
    assert best is not None
    return best[1], best[2]


def nlm_slice(image: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(image, patch_size=NLM_SETTINGS["patch_size"], patch_distance=NLM_SETTINGS["patch_distance"],
                            h=NLM_SETTINGS["h_per_sigma"] * sigma, sigma=sigma, fast_mode=True)


def bm3d_slice(image: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return np.asarray(bm3d.bm3d(image, sigma_psd=sigma), dtype=np.float32)


SLICE_DENOISERS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {"nlm": nlm_slice, "bm3d": bm3d_slice}


def denoise_slices(method: str, noisy: np.ndarray, sigma: float, zs: slice) -> np.ndarray:
    """Apply a 2-D denoiser to each axial slice `noisy[..., z]` for z in `zs`."""
    func = SLICE_DENOISERS[method]
    slab = noisy[..., zs]
    out = np.empty_like(slab, dtype=np.float32)
    for k in range(slab.shape[-1]):
        out[..., k] = func(np.ascontiguousarray(slab[..., k], dtype=np.float64), sigma)
    return out
