"""Blind-spot masking and the fine-tune on a volume itself (`latente mri denoise --adapt`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import MRI

from latente.domains.mri.data import head_mask
from latente.domains.mri.metrics import psnr
from latente.domains.mri.model import denoise_unit, model_config, prepare_for_inference
from latente.domains.mri.params import AdaptParams, TrainParams
from latente.domains.mri.training import adapt, blind_spot, start_as_identity
from latente.shared.models import build_model


def random_model():
    """The tiny MRI model with random weights (no identity start): every output voxel sees its input neighbourhood."""
    torch.manual_seed(0)
    return build_model(model_config(TrainParams.model_validate(MRI["train"]))).eval()


def test_blind_spot_hides_voxels_behind_visible_neighbours_of_the_same_slice():
    stacks = torch.rand(4, 3, 40, 36, generator=torch.Generator().manual_seed(1))
    masked, hidden = blind_spot(stacks, 0.05, 2, torch.Generator().manual_seed(2))
    assert 0.03 < hidden.float().mean() < 0.06
    assert torch.equal(masked[:, [0, 2]], stacks[:, [0, 2]])  # the neighbouring slices are untouched
    assert torch.equal(masked[:, 1][~hidden], stacks[:, 1][~hidden])
    for b, x, y in hidden.nonzero()[:200].tolist():
        window = stacks[b, 1, max(x - 2, 0) : x + 3, max(y - 2, 0) : y + 3]
        visible = ~hidden[b, max(x - 2, 0) : x + 3, max(y - 2, 0) : y + 3]
        # the hidden voxel now holds the value of a visible voxel within reach, not its own
        assert bool(((window == masked[b, 1, x, y]) & visible).any())
        assert masked[b, 1, x, y] != stacks[b, 1, x, y]


def test_a_hidden_voxels_prediction_does_not_depend_on_its_own_noisy_value():
    model = random_model()
    stacks = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    masked, hidden = blind_spot(stacks, 0.03, 2, torch.Generator().manual_seed(4))
    changed = stacks.clone()
    changed[:, 1][hidden] += 5.0  # every hidden voxel's own value, far out of range
    masked_changed, hidden_changed = blind_spot(changed, 0.03, 2, torch.Generator().manual_seed(4))
    assert torch.equal(hidden, hidden_changed)
    with torch.no_grad():
        out, out_changed = model(masked).recon[:, 0], model(masked_changed).recon[:, 0]
        unmasked, unmasked_changed = model(stacks).recon[:, 0], model(changed).recon[:, 0]
    assert torch.equal(out[hidden], out_changed[hidden])
    # without the blind spot the same change moves those predictions: the check above can fail
    assert (unmasked[hidden] - unmasked_changed[hidden]).abs().min() > 0.1


def _smooth_noisy_volume(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    x, y, z = np.mgrid[0:48, 0:48, 0:12].astype(np.float32)
    clean = 0.5 + 0.3 * np.sin(x / 5) * np.cos(y / 7) + 0.1 * np.cos(z / 3)
    return clean, (clean + np.random.default_rng(0).normal(0.0, sigma, clean.shape)).astype(np.float32)


def test_recorrupted_fine_tune_improves_a_poor_model_on_the_noisy_volume_alone():
    """The tiny model with random weights makes a noisy volume worse; fine-tuned on that volume alone
    (no clean reference) it ends better than the noisy input itself; the model it started from is
    untouched; the step kept is the last checked one that helped; runs repeat exactly."""
    model = prepare_for_inference(random_model())
    clean, noisy = _smooth_noisy_volume(0.08)
    settings = AdaptParams(method="recorrupted", steps=150, lr=1e-3, patch_size=32, batch_size=8, check_every=30)
    before = psnr(denoise_unit(model, noisy), clean)
    assert before < psnr(noisy, clean) - 1.0
    tuned, record = adapt(model, noisy, settings)
    assert record["sigma"] == pytest.approx(0.08, rel=0.1)  # the noise σ it recorrupts with, estimated from the volume
    assert record["kept_step"] > 0 and record["error_kept"] < record["error_start"]
    after = psnr(denoise_unit(tuned, noisy), clean)
    assert after > psnr(noisy, clean) + 0.2 and after > before + 1.0
    assert psnr(denoise_unit(model, noisy), clean) == before
    again, _ = adapt(model, noisy, settings)
    assert all(torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), again.state_dict().values()))


def test_head_mask_separates_a_bright_head_from_a_noisy_background():
    volume = np.zeros((40, 40, 10), dtype=np.float32)
    volume[10:30, 10:30] = 0.4
    noisy = np.abs(volume + np.random.default_rng(1).normal(0.0, 0.08, volume.shape)).astype(np.float32)
    mask = head_mask(noisy)
    assert mask[12:28, 12:28].all() and not mask[:7].any() and not mask[33:].any()


def test_a_fine_tune_that_only_hurts_keeps_the_trained_model():
    """A learning rate that wrecks the weights raises the error estimated on the fixed batch at every
    check, so the weights kept are the trained model's own, bit for bit."""
    torch.manual_seed(0)
    model = prepare_for_inference(start_as_identity(build_model(model_config(TrainParams.model_validate(MRI["train"])))))
    clean, noisy = _smooth_noisy_volume(0.05)
    tuned, record = adapt(model, noisy, AdaptParams(method="recorrupted", steps=20, lr=1.0, patch_size=32, batch_size=4, check_every=5))
    assert record["kept_step"] == 0 and record["error_kept"] == record["error_start"]
    assert np.array_equal(denoise_unit(tuned, noisy), denoise_unit(model, noisy))
