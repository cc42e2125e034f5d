"""Fold training: the held-out speaker is never touched, and a seed fixes the result."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tiny import SPEECH

from latente.domains.speech import DOMAIN
from latente.domains.speech.data import labelled_folder, load_audio
from latente.domains.speech.model import model_config
from latente.domains.speech.params import FSDD_PATTERN, AugmentParams, FeatureParams, TrainParams
from latente.domains.speech.training import Spectrograms, noisy_copies, spectrograms, train_fold
from latente.shared.params import validate


@pytest.fixture(scope="module")
def small(mirror):
    items = [u for u in labelled_folder(mirror / DOMAIN / "recordings", FSDD_PATTERN)
             if u.speaker in ("lucas", "theo", "yweweler") and int(u.path.stem.split("_")[2]) < 3]
    recordings = [load_audio(u.path, 8000)[0] for u in items]
    return recordings, [u.label for u in items], [u.speaker for u in items]


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
    # what the report describes the model by: the training record and the denoising settings
    assert model.info["fit"] == result.to_json() and model.info["augment"] == PARAMS.augment.model_dump(mode="json")

    again, _ = train(poisoned, small, tmp_path, "b")
    for key, value in model.autoencoder.state_dict().items():
        assert torch.equal(value, again.autoencoder.state_dict()[key]), key
    np.testing.assert_array_equal(model.classifier.coef, again.classifier.coef)
