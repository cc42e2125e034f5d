"""The model settings, the stored classifier and the speech model folder: no pickle, exact round trips."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tiny import SPEECH

from latente.domains.speech import DOMAIN
from latente.domains.speech.baselines import Mfcc
from latente.domains.speech.data import Normaliser, labelled_folder, load_audio
from latente.domains.speech.model import LinearClassifier, SpeechModel, model_config
from latente.domains.speech.params import FSDD_PATTERN, ClassifierParams, FeatureParams, MfccParams, TrainParams
from latente.shared.errors import UserError
from latente.shared.models import build_model
from latente.shared.params import validate

TINY = validate(TrainParams, SPEECH["train"], f"{DOMAIN}.train")


@pytest.fixture(scope="module")
def mfcc_subset(mirror):
    items = [u for u in labelled_folder(mirror / DOMAIN / "recordings", FSDD_PATTERN) if int(u.path.stem.split("_")[2]) < 6]
    features = Mfcc(MfccParams(), 8000)([load_audio(u.path, 8000)[0] for u in items]).numpy()
    return features, np.array([u.label for u in items]), np.array([u.speaker for u in items])


def test_classifier_matches_sklearn(mfcc_subset):
    features, labels, speakers = mfcc_subset
    train, test = speakers != "nicolas", speakers == "nicolas"
    ours = LinearClassifier.fit(features[train], labels[train], speakers[train], ClassifierParams(C=1.0))
    assert ours.C == 1.0 and ours.search == {}  # one value: no search
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(features[train], labels[train])
    assert (ours.predict(features[test]) == reference.predict(features[test])).all()
    np.testing.assert_allclose(ours.decision(features[test]), reference.decision_function(features[test]), rtol=0, atol=1e-5)  # sklearn works in float32 here


def test_classifier_with_two_classes(mfcc_subset):
    features, labels, speakers = mfcc_subset
    pick = np.isin(labels, ["3", "8"])
    ours = LinearClassifier.fit(features[pick], labels[pick], speakers[pick], ClassifierParams(C=1.0))
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(features[pick], labels[pick])
    assert (ours.predict(features) == reference.predict(features)).all()
    with pytest.raises(UserError, match="only one label"):
        LinearClassifier.fit(features[:3], ["3", "3", "3"], ["a", "b", "c"], ClassifierParams())


def test_classifier_search_picks_the_best_leave_one_speaker_out_c(mfcc_subset):
    """The search's scores are sklearn's own, speaker by speaker, and the refit uses the winner."""
    features, labels, speakers = mfcc_subset
    train = speakers != "nicolas"
    grid = (0.001, 0.1, 10.0)
    ours = LinearClassifier.fit(features[train], labels[train], speakers[train], ClassifierParams(C=grid))
    X, y, s = features[train], labels[train], speakers[train]
    expected = {}
    for C in grid:
        accuracy = []
        for held in sorted(set(s)):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(X[s != held], y[s != held])
            accuracy.append((model.predict(X[s == held]) == y[s == held]).mean())
        expected[f"{C:g}"] = np.mean(accuracy)
    assert ours.search.keys() == expected.keys()
    np.testing.assert_allclose(list(ours.search.values()), list(expected.values()), atol=1e-9)
    best = max(expected, key=expected.get)
    assert ours.C == float(best) and expected["0.001"] != expected["10"]  # the grid's candidates do differ here
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=float(best), max_iter=2000)).fit(X, y)
    assert (ours.predict(features[~train]) == reference.predict(features[~train])).all()


def test_classifier_params_take_one_value_or_a_grid():
    assert ClassifierParams(C=0.5).C == (0.5,) and ClassifierParams(C=[1, 2]).C == (1.0, 2.0)
    for bad in ([], [1.0, 0.0], -1.0):
        with pytest.raises(ValueError, match="each > 0"):
            ClassifierParams(C=bad)


def tiny_model(mfcc_subset) -> SpeechModel:
    features, labels, speakers = mfcc_subset
    torch.manual_seed(0)
    autoencoder = build_model(model_config(TINY.model, FeatureParams()))
    dims = autoencoder.config.latent_dim
    classifier = LinearClassifier.fit(features[:, :dims], labels, speakers, ClassifierParams(C=1.0))
    return SpeechModel(autoencoder, FeatureParams(), Normaliser(-20.0, 9.0), classifier, FSDD_PATTERN, {"train": TINY.model_dump(mode="json")})


def test_model_folder_round_trip(tmp_path, mfcc_subset, mirror):
    model = tiny_model(mfcc_subset)
    model.save(tmp_path / "m", data={"clips": 300})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "extras.safetensors", "model.safetensors"]
    loaded = SpeechModel.load(tmp_path / "m")
    clip = [load_audio(mirror / DOMAIN / "recordings" / "5_lucas_9.wav", 8000)[0]]
    assert torch.equal(loaded.encode(clip), model.encode(clip))
    codes = np.random.default_rng(0).normal(size=(20, model.code_dims))
    assert (loaded.classifier.predict(codes) == model.classifier.predict(codes)).all()
    assert loaded.features == FeatureParams() and loaded.label_pattern == FSDD_PATTERN
    assert loaded.autoencoder.config == model.autoencoder.config and loaded.training == TINY
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["domain"] == DOMAIN and config["model"]["input_size"] == [40, 81]  # n_mels × frames (test_features)


def test_a_model_without_its_training_settings_is_refused_by_key(tmp_path, mfcc_subset):
    """The report and the ablations' design arm read how the model was trained; a folder saved without it says which key."""
    for name, edit, problem in (("gone", lambda info: info.pop("train"), "bad or missing 'train'"),
                                ("bad", lambda info: info["train"]["trainer"].update(epochs="many"), "info.train.trainer.epochs: Input should be a valid integer")):
        model = tiny_model(mfcc_subset)
        edit(model.info)
        model.save(tmp_path / name, data={"clips": 300})
        with pytest.raises(UserError, match=problem):
            SpeechModel.load(tmp_path / name)


def test_model_config_takes_its_input_size_from_the_features():
    features = FeatureParams(n_mels=32, duration=0.5, hop_length=100)
    config = model_config(TINY.model, features)
    assert config.input_size == (32, 41)  # 0.5 s × 8000 Hz = 4000 samples, 4000 // 100 + 1 frames
    assert config.model_dump(exclude={"input_size"}) == TINY.model.model_dump(exclude={"input_size"})
    spectrograms = torch.zeros(2, 1, *config.input_size)
    assert build_model(config).encode(spectrograms).shape == (2, TINY.model.latent_dim)


def train_params(**model) -> TrainParams:
    return validate(TrainParams, {"model": model}, f"{DOMAIN}.train")


def test_model_settings_are_checked():
    with pytest.raises(UserError, match="input_size is set by the features") as err:
        train_params(name="conv_ae", spatial_dims=2, latent_dim=8, input_size=[40, 81])
    assert f"{DOMAIN}.train.model" in err.value.line()
    with pytest.raises(UserError, match="latent_dim"):
        train_params(name="conv_ae", spatial_dims=2, latent_dim=128)
    with pytest.raises(UserError, match="latent_dim"):
        train_params(name="conv_ae", spatial_dims=2)
    with pytest.raises(UserError, match="one-channel spectrograms"):
        train_params(name="conv_ae", spatial_dims=2, in_channels=3, latent_dim=8)
    with pytest.raises(UserError, match=f"{DOMAIN}.train.model.nmae"):
        train_params(nmae="conv_ae", name="conv_ae")
