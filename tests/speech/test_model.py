"""The stored classifier and the speech model folder: no pickle, exact round trips."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from latente.domains.speech.audio import load_audio
from latente.domains.speech.data import labelled_folder
from latente.domains.speech.features import Mfcc, Normaliser
from latente.domains.speech.model import LinearClassifier, SpeechModel
from latente.domains.speech.params import FSDD_PATTERN, ClassifierParams, FeatureParams, MfccParams, TrainParams
from latente.shared.errors import UserError
from latente.shared.models import build_model


@pytest.fixture(scope="module")
def mfcc_subset(mirror):
    items = [u for u in labelled_folder(mirror / "speech" / "recordings", FSDD_PATTERN) if int(u.path.stem.split("_")[2]) < 6]
    features = Mfcc(MfccParams(), 8000)([load_audio(u.path, 8000)[0] for u in items]).numpy()
    return features, np.array([u.label for u in items]), np.array([u.speaker for u in items])


def test_classifier_matches_sklearn(mfcc_subset):
    features, labels, speakers = mfcc_subset
    train, test = speakers != "nicolas", speakers == "nicolas"
    ours = LinearClassifier.fit(features[train], labels[train], ClassifierParams())
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(features[train], labels[train])
    assert (ours.predict(features[test]) == reference.predict(features[test])).all()
    np.testing.assert_allclose(ours.decision(features[test]), reference.decision_function(features[test]), rtol=0, atol=1e-5)  # sklearn works in float32 here


def test_classifier_with_two_classes(mfcc_subset):
    features, labels, _ = mfcc_subset
    pick = np.isin(labels, ["3", "8"])
    ours = LinearClassifier.fit(features[pick], labels[pick], ClassifierParams())
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(features[pick], labels[pick])
    assert (ours.predict(features) == reference.predict(features)).all()
    with pytest.raises(UserError, match="only one label"):
        LinearClassifier.fit(features[:3], ["3", "3", "3"], ClassifierParams())


def tiny_model(mfcc_subset) -> SpeechModel:
    features, labels, _ = mfcc_subset
    params = TrainParams(model={"name": "conv_ae", "spatial_dims": 2, "channels": [4, 8], "strides": [2, 2], "latent_dim": 6})
    torch.manual_seed(0)
    autoencoder = build_model(params.autoencoder_config(FeatureParams()))
    classifier = LinearClassifier.fit(features[:, :6], labels, ClassifierParams())
    return SpeechModel(autoencoder, FeatureParams(), Normaliser(-20.0, 9.0), classifier, FSDD_PATTERN, {"classifier": {"C": 1.0, "max_iter": 2000}})


def test_model_folder_round_trip(tmp_path, mfcc_subset, mirror):
    model = tiny_model(mfcc_subset)
    model.save(tmp_path / "m", data={"clips": 300})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "extras.safetensors", "model.safetensors"]
    loaded = SpeechModel.load(tmp_path / "m")
    clip = [load_audio(mirror / "speech" / "recordings" / "5_lucas_9.wav", 8000)[0]]
    assert torch.equal(loaded.encode(clip), model.encode(clip))
    codes = np.random.default_rng(0).normal(size=(20, 6))
    assert (loaded.classifier.predict(codes) == model.classifier.predict(codes)).all()
    assert loaded.features == FeatureParams() and loaded.label_pattern == FSDD_PATTERN
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["domain"] == "speech" and config["model"]["input_size"] == [40, 81]


def test_model_settings_are_checked():
    with pytest.raises(UserError, match="input_size"):
        TrainParams(model={"name": "conv_ae", "spatial_dims": 2, "latent_dim": 8, "input_size": [40, 81]}).autoencoder_config(FeatureParams())
    with pytest.raises(UserError, match="latent_dim"):
        TrainParams(model={"name": "conv_ae", "spatial_dims": 2, "latent_dim": 128}).autoencoder_config(FeatureParams())
    with pytest.raises(UserError, match="speech.train.model.nmae"):
        TrainParams(model={"nmae": "conv_ae", "name": "conv_ae"}).autoencoder_config(FeatureParams())
