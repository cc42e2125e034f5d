"""The saved speech model: spectrogram autoencoder + feature settings + normalisation + digit classifier.

Everything lives in one shared model folder (config.json, model.safetensors, extras.safetensors):
the classifier's scaler and logistic-regression weights are tensors, its classes JSON.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pydantic
import torch

from latente.domains.speech import DOMAIN
from latente.domains.speech.data import LogMel, Normaliser
from latente.domains.speech.params import ClassifierParams, FeatureParams, TrainParams
from latente.shared.errors import UserError
from latente.shared.models import AutoencoderConfig, load_model, save_model
from latente.shared.params import first_problem
from latente.shared.models.autoencoders import Autoencoder

ENCODE_BATCH = 256


def model_config(model: AutoencoderConfig, features: FeatureParams) -> AutoencoderConfig:
    """The autoencoder of `speech.train.model` for these features: its input is one n_mels × frames spectrogram."""
    return AutoencoderConfig.model_validate({**model.model_dump(), "input_size": (features.n_mels, features.frames)})


def speaker_splits(speakers: np.ndarray) -> list[np.ndarray]:
    """Validation masks of the classifier search: one per training speaker (leave-one-speaker-out),
    or five interleaved folds of the clips when a single speaker is all there is."""
    known = sorted(set(speakers.tolist()))
    if len(known) > 1:
        return [speakers == s for s in known]
    return [np.arange(len(speakers)) % 5 == k for k in range(min(5, len(speakers)))]


def fit_scaled_regression(features: np.ndarray, labels: np.ndarray, C: float, max_iter: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(features)
    return scaler, LogisticRegression(C=C, max_iter=max_iter).fit(scaler.transform(features), labels)


def search_accuracy(features: np.ndarray, labels: np.ndarray, speakers: np.ndarray, C: float, max_iter: int) -> float:
    """Mean validation accuracy of one C over `speaker_splits`, every split weighing the same."""
    scores = []
    for held in speaker_splits(speakers):
        if len(set(labels[~held].tolist())) < 2:
            continue
        scaler, regression = fit_scaled_regression(features[~held], labels[~held], C, max_iter)
        scores.append(float((regression.predict(scaler.transform(features[held])) == labels[held]).mean()))
    return float(np.mean(scores)) if scores else float("nan")


class LinearClassifier:
    """StandardScaler + multinomial LogisticRegression, stored as plain tensors; `C` and `search`
    record which regularisation the training speakers chose and what each candidate scored."""

    def __init__(self, classes: Sequence[str], mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
                 C: float | None = None, search: dict[str, float] | None = None):
        self.classes = list(classes)
        self.mean, self.scale = np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        self.coef, self.intercept = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
        self.C, self.search = C, search or {}

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[str], speakers: Sequence[str], params: ClassifierParams) -> "LinearClassifier":
        """Choose C on the training speakers (`ClassifierParams`), then refit on all of them."""
        labels, speakers = np.asarray(labels), np.asarray(speakers)
        if len(set(labels.tolist())) < 2:
            raise UserError("labels", "the training speakers cover only one label; a classifier needs at least two")
        search = {f"{C:g}": search_accuracy(features, labels, speakers, C, params.max_iter) for C in params.C} if len(params.C) > 1 else {}
        finite = {k: v for k, v in search.items() if np.isfinite(v)}
        C = float(max(finite, key=finite.get)) if finite else params.C[0]  # ties go to the first listed
        scaler, regression = fit_scaled_regression(features, labels, C, params.max_iter)
        return cls([str(c) for c in regression.classes_], scaler.mean_, scaler.scale_, regression.coef_, regression.intercept_, C, search)

    def decision(self, features: np.ndarray) -> np.ndarray:
        scores = ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.coef.T + self.intercept
        return np.concatenate([np.zeros_like(scores), scores], axis=1) if self.coef.shape[0] == 1 else scores

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[self.decision(features).argmax(axis=1)]

    def to_extras(self) -> dict[str, torch.Tensor]:
        names = {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}
        return {f"classifier.{k}": torch.from_numpy(np.ascontiguousarray(v)) for k, v in names.items()}

    @classmethod
    def from_extras(cls, extras: dict[str, torch.Tensor], classes: Sequence[str], where: Path) -> "LinearClassifier":
        try:
            parts = {k: extras[f"classifier.{k}"].double().numpy() for k in ("mean", "scale", "coef", "intercept")}
        except KeyError as err:
            raise UserError(where, f"classifier tensor {err} is missing from the model folder") from None
        return cls(classes, **parts)


@torch.no_grad()
def encode_batches(autoencoder: Autoencoder, spectrograms: torch.Tensor) -> torch.Tensor:
    """Codes of normalised spectrograms [B, 1, M, F] → [B, latent_dim], in batches."""
    autoencoder.eval()
    if not len(spectrograms):
        return torch.zeros(0, autoencoder.config.latent_dim)
    return torch.cat([autoencoder.encode(b) for b in spectrograms.split(ENCODE_BATCH)])


class SpeechModel:
    """What `embed` and `evaluate` need: audio → normalised spectrogram → code → digit."""

    def __init__(self, autoencoder: Autoencoder, features: FeatureParams, normaliser: Normaliser,
                 classifier: LinearClassifier, label_pattern: str, info: dict[str, Any] | None = None):
        self.autoencoder = autoencoder.eval()
        self.features = features
        self.logmel = LogMel(features)
        self.normaliser = normaliser
        self.classifier = classifier
        self.label_pattern = label_pattern
        self.info = info or {}

    @property
    def training(self) -> TrainParams:
        """`speech.train` as it was when this model was trained."""
        return TrainParams.model_validate(self.info["train"])

    @property
    def code_dims(self) -> int:
        return self.autoencoder.config.latent_dim

    def spectrograms(self, recordings: Sequence[torch.Tensor]) -> torch.Tensor:
        """[B, 1, n_mels, frames], normalised with the training statistics."""
        return self.normaliser(self.logmel(recordings))

    def encode(self, recordings: Sequence[torch.Tensor]) -> torch.Tensor:
        """[B, code_dims] codes of recordings at the feature sample rate."""
        codes = [encode_batches(self.autoencoder, self.spectrograms(recordings[i : i + ENCODE_BATCH])) for i in range(0, len(recordings), ENCODE_BATCH)]
        return torch.cat(codes) if codes else torch.zeros(0, self.code_dims)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
        """[B, code_dims] codes → normalised spectrograms [B, 1, *size]."""
        return self.autoencoder.to_data(self.autoencoder.decode(codes, size))

    def reconstruct(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """Normalised spectrograms → their reconstructions (normalised)."""
        return self.decode(encode_batches(self.autoencoder, spectrograms), tuple(spectrograms.shape[2:]))

    def save(self, folder: str | Path, data: dict[str, Any], force: bool = True) -> Path:
        return save_model(
            self.autoencoder, folder, domain=DOMAIN,
            preprocessing={"features": self.features.model_dump(mode="json"), "normalisation": self.normaliser.to_json(), "label_pattern": self.label_pattern},
            data=data, extras=self.classifier.to_extras(),
            info={**self.info, "classes": self.classifier.classes},
            force=force,
        )

    @classmethod
    def load(cls, folder: str | Path) -> "SpeechModel":
        loaded = load_model(folder, domain=DOMAIN)
        config = Path(folder) / "config.json"
        try:
            prep = loaded.preprocessing
            features = FeatureParams.model_validate(prep["features"])
            normaliser = Normaliser(**prep["normalisation"])
            pattern = prep["label_pattern"]
            classes = loaded.info["classes"]
            training = loaded.info["train"]
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(config, f"not a {DOMAIN} model config (bad or missing {err})") from None
        try:
            TrainParams.model_validate(training)
        except pydantic.ValidationError as err:
            loc, problem = first_problem(err)
            raise UserError(config, f"info.train.{'.'.join(map(str, loc))}: {problem}", f"retrain it: `dvc repro train@{DOMAIN}`") from None
        classifier = LinearClassifier.from_extras(loaded.extras, classes, Path(folder))
        return cls(loaded.model, features, normaliser, classifier, pattern, loaded.info)
