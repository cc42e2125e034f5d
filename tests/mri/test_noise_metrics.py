"""Noise statistics against theory; PSNR/SSIM against hand-computed values and skimage."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from skimage.metrics import structural_similarity

from latente.domains.mri.data import intrinsic_noise
from latente.domains.mri.metrics import psnr, ssim
from latente.shared.noise import corrupt


@pytest.mark.parametrize("signal", [0.0, 0.02, 0.3])
def test_rician_noise_mean_and_variance_match_theory(signal):
    sigma, n = 0.05, 400_000
    background = torch.full((n,), signal, dtype=torch.float64)
    noisy = corrupt(background, "rician", sigma, torch.Generator().manual_seed(1)).numpy()
    theory = stats.rice(b=signal / sigma, scale=sigma)
    # standard errors of the sample mean and variance
    assert abs(noisy.mean() - theory.mean()) < 5 * theory.std() / math.sqrt(n)
    var_se = theory.var() * math.sqrt(2 / n) * 2  # generous: the Rice distribution is not normal
    assert abs(noisy.var() - theory.var()) < 5 * var_se
    if signal == 0.0:  # Rayleigh: mean σ√(π/2), variance (2 − π/2)σ²
        assert noisy.mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=5e-3)
        assert noisy.var() == pytest.approx((2 - math.pi / 2) * sigma**2, rel=1e-2)


def test_rician_noise_is_distributed_as_monais_transform():
    """Our seeded torch noise (per-sample σ, any device) draws from the same law as MONAI's RicianNoise."""
    from monai.transforms import RandRicianNoise

    sigma, n = 0.07, 200_000
    image = np.linspace(0.0, 0.6, n, dtype=np.float32)  # many intensities, dark background included
    ours = corrupt(torch.from_numpy(image), "rician", sigma, torch.Generator().manual_seed(4)).numpy()
    monai = RandRicianNoise(prob=1.0, std=sigma, relative=False, sample_std=False)
    monai.set_random_state(5)
    theirs = np.asarray(monai(image[None]))[0]
    assert stats.ks_2samp(ours - image, theirs - image).pvalue > 1e-3
    assert (ours - image).mean() == pytest.approx((theirs - image).mean(), abs=1e-3)


def test_rician_noise_is_seeded_and_gaussian_is_unbiased():
    x = torch.full((100_000,), 0.4)
    a = corrupt(x, "rician", 0.05, torch.Generator().manual_seed(3))
    b = corrupt(x, "rician", 0.05, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    g = corrupt(x, "gaussian", 0.05, torch.Generator().manual_seed(3)).numpy()
    assert abs(g.mean() - 0.4) < 5 * 0.05 / math.sqrt(1e5)
    assert g.std() == pytest.approx(0.05, rel=0.01)


def test_psnr_matches_hand_computed_values():
    ref = np.zeros((6, 5, 4), dtype=np.float32)
    mask = np.zeros(ref.shape, dtype=bool)
    mask[1:4, 1:4, :] = True
    pred = np.where(mask, 0.1, 0.5).astype(np.float32)
    assert psnr(pred, ref, mask) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    frac = mask.mean()
    mse = frac * 0.01 + (1 - frac) * 0.25
    assert psnr(pred, ref) == pytest.approx(-10 * math.log10(mse), abs=1e-4)


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = 0.6, 0.4
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # contrast/structure term is c2/c2 = 1
    x = np.full((20, 24, 3), a, dtype=np.float32)
    y = np.full((20, 24, 3), b, dtype=np.float32)
    assert ssim(x, y) == pytest.approx(expected, abs=2e-4)  # MONAI computes SSIM in float32
    mask = np.zeros(x.shape, dtype=bool)
    mask[8:12, 8:14] = True
    assert ssim(x, y, mask) == pytest.approx(expected, abs=2e-4)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-9)


def test_ssim_equals_skimage_gaussian_ssim_per_slice():
    rng = np.random.default_rng(0)
    ref = rng.random((32, 30, 2))
    pred = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0, 1)
    expected = np.mean([
        structural_similarity(pred[..., k], ref[..., k], data_range=1.0, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for k in range(2)
    ])
    assert ssim(pred, ref) == pytest.approx(expected, abs=1e-6)


def _smooth_volume(shape=(64, 64, 40)) -> np.ndarray:
    """Smooth anatomy-like intensities in [0.2, 0.8]: slow sinusoids, no noise."""
    x, y, z = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    return 0.5 + 0.2 * np.sin(x / 7) * np.cos(y / 9) + 0.1 * np.cos(z / 5)


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.05])
def test_intrinsic_noise_recovers_known_sigma_on_a_smooth_volume(sigma):
    clean = _smooth_volume()
    mask = np.ones(clean.shape, dtype=bool)
    noisy = clean + np.random.default_rng(3).normal(0.0, sigma, clean.shape)
    assert intrinsic_noise(noisy, mask) == pytest.approx(sigma, rel=0.04)
    assert intrinsic_noise(clean, mask) < 0.02 * sigma  # the smooth anatomy itself reads as (almost) no noise


def test_intrinsic_noise_reads_only_inside_the_mask():
    """Noise outside the mask (e.g. a background that a skull-stripped scan zeroes) does not count."""
    clean = _smooth_volume()
    rng = np.random.default_rng(4)
    mask = np.zeros(clean.shape, dtype=bool)
    mask[8:40, 8:40, 4:30] = True
    noisy = clean + np.where(mask, rng.normal(0.0, 0.01, clean.shape), rng.normal(0.0, 0.2, clean.shape))
    assert intrinsic_noise(noisy, mask) == pytest.approx(0.01, rel=0.06)
    with pytest.raises(ValueError, match="wholly inside the mask"):
        intrinsic_noise(noisy, np.pad(np.ones((1, 1, 1), dtype=bool), ((5, 58), (5, 58), (5, 34))))
