"""Fold training: the held-out speaker is never touched, and a seed fixes the result."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tiny import SPEECH

from latente.domains.speech import DOMAIN
from latente.domains.speech.model import model_config
from latente.domains.speech.params import FSDD_PATTERN, SPEED_STEPS, AugmentParams, FeatureParams, SupervisionParams, TrainParams
from latente.domains.speech.training import (
    Spectrograms, SupervisedAutoencoder, masked, noisy_copies, play_at_speed, shifted, spectrograms, train_fold,
)
from latente.shared.models import build_model
from latente.shared.params import validate


@pytest.fixture(scope="module")
def small(three_speakers):
    return three_speakers.recordings, three_speakers.labels.tolist(), three_speakers.speakers.tolist()


PARAMS = validate(TrainParams, SPEECH["train"], f"{DOMAIN}.train")


def test_noisy_copies_are_seeded_and_at_the_drawn_snr(small):
    recordings = small[0][:5]
    first = noisy_copies(recordings, AugmentParams(copies=2, snr_db=(5.0, 15.0)), seed=1)
    again = noisy_copies(recordings, AugmentParams(copies=2, snr_db=(5.0, 15.0)), seed=1)
    assert all(torch.equal(a, b) for copy_a, copy_b in zip(first, again) for a, b in zip(copy_a, copy_b))
    for copy in first:
        for clean, noisy in zip(recordings, copy):
            snr = 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean()).item()
            assert 4.0 < snr < 16.0


def test_speed_steps_are_the_factors_inside_the_range():
    # 40/44 = 0.909 … 40/37 = 1.081 lie in [0.9, 1.1]; 40/45 = 0.889 and 40/36 = 1.111 do not.
    assert AugmentParams(speed=(0.9, 1.1)).speed_steps() == [37, 38, 39, 40, 41, 42, 43, 44]
    assert AugmentParams().speed_steps() == [SPEED_STEPS]
    with pytest.raises(ValueError, match="0.5 ≤ low ≤ high ≤ 2"):
        AugmentParams(speed=(1.2, 0.9))


def test_play_at_speed_moves_a_tone_by_the_factor():
    # A 500 Hz tone played 40/32 = 1.25 times as fast: 625 Hz, and 4/5 of the samples.
    t = torch.arange(8000) / 8000.0
    tone = torch.sin(2 * torch.pi * 500.0 * t)
    faster = play_at_speed(tone, 32)
    assert len(faster) == 6400
    spectrum = torch.fft.rfft(faster[800:-800] * torch.hann_window(4800))
    assert spectrum.abs().argmax().item() * 8000 / 4800 == pytest.approx(625.0, abs=2.0)
    assert play_at_speed(tone, SPEED_STEPS) is tone


def test_speed_changes_only_when_asked_and_keeps_the_noise_seeded(small):
    recordings = small[0][:4]
    plain = noisy_copies(recordings, AugmentParams(copies=1), seed=3)
    still = noisy_copies(recordings, AugmentParams(copies=1, speed=(1.0, 1.0)), seed=3)
    assert all(torch.equal(a, b) for a, b in zip(plain[0], still[0]))
    perturbed = noisy_copies(recordings, AugmentParams(copies=2, speed=(0.8, 1.25)), seed=3)
    again = noisy_copies(recordings, AugmentParams(copies=2, speed=(0.8, 1.25)), seed=3)
    assert all(torch.equal(a, b) for ca, cb in zip(perturbed, again) for a, b in zip(ca, cb))
    steps = AugmentParams(speed=(0.8, 1.25)).speed_steps()
    # each copy of a clip has the length of one allowed speed (resample rounds the length up)
    assert all(len(r) in {-(-len(clean) * n // SPEED_STEPS) for n in steps} for copy in perturbed for r, clean in zip(copy, recordings))
    assert any(len(r) != len(clean) for copy in perturbed for r, clean in zip(copy, recordings))


def test_masks_fill_one_band_and_one_span_with_the_clip_mean():
    specs = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 1, 5, 6)
    out = masked(specs, 2, 3, torch.Generator().manual_seed(0))
    for b in range(2):
        changed = out[b, 0] != specs[b, 0]
        assert torch.all(out[b, 0][changed] == specs[b].mean())
        rows = [m for m in range(5) if changed[m].all()]
        cols = [f for f in range(6) if changed[:, f].all()]
        assert len(rows) <= 2 and len(cols) <= 3
        # every changed cell lies in the masked band or the masked span
        assert all(m in rows or f in cols for m, f in changed.nonzero().tolist())
    assert torch.equal(masked(specs, 0, 0, torch.Generator().manual_seed(0)), specs)


def test_shift_moves_each_clip_by_whole_frames_and_fills_with_its_floor():
    # clip b holds rows [0..4] and [5..9] plus 10 b; its floor (minimum) is 10 b
    specs = torch.arange(10, dtype=torch.float32).reshape(1, 1, 2, 5) + 10 * torch.arange(40.0).reshape(40, 1, 1, 1)
    out = shifted(specs, 2, torch.Generator().manual_seed(0))
    # by hand: the first clip moved by each offset, uncovered frames at its floor (0)
    moved = {
        -2: [[2, 3, 4, 0, 0], [7, 8, 9, 0, 0]], -1: [[1, 2, 3, 4, 0], [6, 7, 8, 9, 0]], 0: [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]],
        1: [[0, 0, 1, 2, 3], [0, 5, 6, 7, 8]], 2: [[0, 0, 0, 1, 2], [0, 0, 5, 6, 7]],
    }
    offsets = []
    for b in range(40):
        found = [o for o, rows in moved.items() if torch.equal(out[b, 0], torch.tensor(rows, dtype=torch.float32) + 10 * b)]
        assert len(found) == 1, b
        offsets += found
    assert set(offsets) == {-2, -1, 0, 1, 2}  # every offset in the range is drawn, none outside it
    assert torch.equal(shifted(specs, 2, torch.Generator().manual_seed(0)), out)
    assert torch.equal(shifted(specs, 0, torch.Generator().manual_seed(0)), specs)


def train(specs, small, tmp_path, name):
    _, labels, speakers = small
    return train_fold(specs, labels, speakers, ("theo",), PARAMS, FeatureParams(), model_config(PARAMS.model, FeatureParams()),
                      FSDD_PATTERN, tmp_path / name, None, {"test": name})


def test_held_out_speaker_is_never_used_and_seed_fixes_weights(small, tmp_path):
    recordings, labels, speakers = small
    specs = spectrograms(recordings, FeatureParams(), PARAMS.augment, seed=0)
    theo = torch.tensor([s == "theo" for s in speakers])
    # Poison the held-out speaker: any use in normalisation, training or the classifier shows up as NaN.
    poisoned = Spectrograms(specs.clean.clone(), [n.clone() for n in specs.noisy])
    poisoned.clean[theo] = float("nan")
    for n in poisoned.noisy:
        n[theo] = float("nan")
    model, result = train(poisoned, small, tmp_path, "a")
    assert np.isfinite(result.best_val_loss) and np.isfinite(model.normaliser.mean)
    assert all(torch.isfinite(p).all() for p in model.autoencoder.state_dict().values())
    assert np.isfinite(model.classifier.coef).all() and model.info["held_out"] == ["theo"]
    # what the report and the ablations' design arm describe the model by: the training record and every training setting
    assert model.info["fit"] == result.to_json() and model.training == PARAMS
    assert model.info["train"]["supervision"] == {"digit_weight": 10.0, "invariance_weight": 1.0} and {"train/digit", "train/invariance"} <= set(result.history[-1])

    again, _ = train(poisoned, small, tmp_path, "b")
    for key, value in model.autoencoder.state_dict().items():
        assert torch.equal(value, again.autoencoder.state_dict()[key]), key
    np.testing.assert_array_equal(model.classifier.coef, again.classifier.coef)


def test_supervised_loss_is_the_autoencoder_loss_plus_weighted_digit_cross_entropy():
    config = model_config(PARAMS.model, FeatureParams())
    torch.manual_seed(0)
    autoencoder = build_model(config).eval()
    x = torch.randn(4, 1, *config.input_size)
    targets, digits = torch.randn(6, 1, *config.input_size), torch.tensor([0, 1, 2, 0, 1, 2])
    model = SupervisedAutoencoder(autoencoder, targets, digits, classes=3, digit_weight=2.5).eval()
    clip = torch.tensor([5, 0, 3, 3])
    out = model(x, clip)
    plain = autoencoder(x, targets[clip])
    logits = model.head(plain.z)
    by_hand = -torch.log_softmax(logits, dim=1)[torch.arange(4), digits[clip]]
    torch.testing.assert_close(out.terms["digit"], by_hand)
    torch.testing.assert_close(out.terms["recon"], plain.terms["recon"])
    torch.testing.assert_close(out.loss, plain.loss + 2.5 * by_hand.mean())
    # the banks are not weights: a checkpoint holds the autoencoder and the head only
    assert set(model.state_dict()) == {f"autoencoder.{k}" for k in autoencoder.state_dict()} | {"head.weight", "head.bias"}
    assert "invariance" not in out.terms


def test_invariance_term_is_the_code_distance_to_the_clean_clip_over_the_code_variance():
    config = model_config(PARAMS.model, FeatureParams())
    torch.manual_seed(0)
    autoencoder = build_model(config).eval()
    targets, digits = torch.randn(6, 1, *config.input_size), torch.tensor([0, 1, 2, 0, 1, 2])
    clip = torch.tensor([5, 0, 3, 3])
    x = targets[clip] + 0.5 * torch.randn(4, 1, *config.input_size)
    model = SupervisedAutoencoder(autoencoder, targets, digits, classes=3, digit_weight=2.5, invariance_weight=4.0).eval()
    out = model(x, clip)
    z, anchor = autoencoder.encode(x).detach(), autoencoder.encode(targets[clip]).detach()
    spread = sum(float(anchor[:, d].var()) for d in range(anchor.shape[1]))  # unbiased variance per dimension, summed
    by_hand = torch.stack([((z[i] - anchor[i]) ** 2).sum() / spread for i in range(4)])
    torch.testing.assert_close(out.terms["invariance"].detach(), by_hand)
    plain = SupervisedAutoencoder(autoencoder, targets, digits, classes=3, digit_weight=2.5).eval()
    plain.head.load_state_dict(model.head.state_dict())
    torch.testing.assert_close(out.loss.detach(), plain(x, clip).loss.detach() + 4.0 * by_hand.mean())
    # the clean clips themselves sit on their anchors
    torch.testing.assert_close(model(targets[clip], clip).terms["invariance"], torch.zeros(4))


def test_digit_head_pulls_codes_of_a_digit_together(small, tmp_path):
    """The supervised code separates digits better than the plain one, on the training speakers' own clips."""
    recordings, labels, speakers = small
    specs = spectrograms(recordings, FeatureParams(), PARAMS.augment, seed=0)
    train_mask = np.array([s != "theo" for s in speakers])

    def separation(weight, name):
        params = PARAMS.model_copy(update={"supervision": SupervisionParams(digit_weight=weight),
                                           "trainer": PARAMS.trainer.model_copy(update={"epochs": 8})})
        model, _ = train_fold(specs, labels, speakers, ("theo",), params, FeatureParams(), model_config(params.model, FeatureParams()),
                              FSDD_PATTERN, tmp_path / name, None, {"test": name})
        codes = model.encode([r for r, keep in zip(recordings, train_mask) if keep]).numpy()
        digits = np.asarray(labels)[train_mask]
        centroids = np.stack([codes[digits == d].mean(0) for d in sorted(set(digits))])
        within = np.mean([np.linalg.norm(codes[digits == d] - centroids[k], axis=1).mean() for k, d in enumerate(sorted(set(digits)))])
        between = np.linalg.norm(centroids[:, None] - centroids[None], axis=2).sum() / (len(centroids) * (len(centroids) - 1))
        return between / within

    supervised, plain = separation(1000.0, "supervised"), separation(0.0, "plain")
    assert supervised > 1.3 * plain  # measured 2.70 against 1.73
