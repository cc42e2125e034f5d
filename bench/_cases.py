"""Each domain's training as its train stage sets it up: model, trainer settings and training set.

`real_case(domain, mirror)` runs the domain's own prepare stage on the staged raw data (in a
temporary folder, never data/) and builds the training set the way the domain's training.py
does, so the committed setting times exactly what `dvc repro train@<domain>` runs per step.
`synthetic_case(domain)` has the same model and trainer settings with random inputs of the same
shapes, for machines without the datasets (the GPU bench): FLOPs and speed do not depend on the values.

Not a benchmark itself: a helper the benches share, hence the leading underscore.
"""
from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from latente.shared.params import TrainerConfig, stage_params
from latente.shared.stage import DomainPaths

DOMAINS = ("ecg", "mri", "speech", "protein", "anomaly")
# shapes the data decides, for synthetic cases: the BLAT_ECOLX focus columns, SKAB's sensor count, the digits spoken
PROTEIN_COLUMNS = 253
SKAB_SENSORS = 8
SPOKEN_DIGITS = 10
SYNTHETIC_SAMPLES = 4096


@dataclass
class TrainingCase:
    """What one training step of a domain needs; `new_model` is called right after seeding, as the train stage builds it."""

    domain: str
    model: str  # in words, for the report
    new_model: Callable[[], nn.Module]
    trainer: TrainerConfig
    train_set: Dataset
    sample_weights: torch.Tensor | None = None


def _prepared(domain: str, mirror: Path, params, tmp: Path) -> DomainPaths:
    """The domain's prepare stage run on the mirror's raw files, writing under `tmp`."""
    from importlib import import_module

    paths = DomainPaths(domain, tmp)
    paths.raw.parent.mkdir(parents=True)
    paths.raw.symlink_to(Path(mirror).resolve() / domain)
    with contextlib.redirect_stdout(sys.stderr):  # its summary lines are not the bench's output
        import_module(f"latente.domains.{domain}.data").prepare(params, paths)
    return paths


def ecg_model(params) -> Callable[[], nn.Module]:
    """The first codec variant (operating point A), as the train stage builds it."""
    from latente.domains.ecg.model import EcgCodec, transform_config

    variant = next(iter(params.variants.values()))
    return lambda: EcgCodec(transform_config(params.model), params.hyperprior, variant.rate_weight)


def mri_model(params) -> Callable[[], nn.Module]:
    from latente.domains.mri.model import model_config
    from latente.domains.mri.training import start_as_identity
    from latente.shared.models import build_model

    return lambda: start_as_identity(build_model(model_config(params))).to(memory_format=torch.channels_last)


def speech_model(params, features, targets: torch.Tensor, digits: torch.Tensor, classes: int) -> Callable[[], nn.Module]:
    """The model the train stage trains: the autoencoder under its digit head (`SupervisedAutoencoder`), over
    banks of clean targets and digits that a batch's clip indices look up."""
    from latente.domains.speech.model import model_config
    from latente.domains.speech.training import SupervisedAutoencoder
    from latente.shared.models import build_model

    supervision = params.supervision
    return lambda: SupervisedAutoencoder(build_model(model_config(params.model, features)), targets, digits, classes,
                                         supervision.digit_weight, supervision.invariance_weight)


def protein_model(params, columns: int, neff: float) -> Callable[[], nn.Module]:
    from latente.domains.protein.model import FamilyVAE, model_config

    return lambda: FamilyVAE(model_config(params.model, columns), params.decoder, neff=neff)


def anomaly_model(params, sensors: int) -> Callable[[], nn.Module]:
    from latente.domains.anomaly.model import model_config
    from latente.shared.models import build_model

    detector = params.detector
    return lambda: build_model(model_config(detector.model, sensors, detector.window))


def train_params(domain: str):
    from importlib import import_module

    return stage_params(domain, "train", import_module(f"latente.domains.{domain}.params").TrainParams)


def anomaly_trainer(params) -> TrainerConfig:
    """The global detector's trainer (`fit_detector` with `global_epochs`); per-file detectors differ only in epochs."""
    return params.detector.with_trainer(epochs=params.global_epochs).trainer


def real_case(domain: str, mirror: Path) -> TrainingCase:
    """`domain`'s training on its real data (prepared now from `mirror`, the staged raw datasets)."""
    params = train_params(domain)
    with tempfile.TemporaryDirectory(prefix=f"latente-bench-{domain}-") as tmp:
        return REAL_BUILDERS[domain](params, mirror, Path(tmp))


def _ecg_real(params, mirror: Path, tmp: Path) -> TrainingCase:
    from latente.domains.ecg.data import WindowDataset, load_signals
    from latente.domains.ecg.params import PrepareParams

    paths = _prepared("ecg", mirror, stage_params("ecg", "prepare", PrepareParams), tmp)
    signals = load_signals(paths.prepared / "train.safetensors")
    return TrainingCase("ecg", f"{params.model.name} {list(params.model.channels)}, variant A", ecg_model(params),
                        params.trainer, WindowDataset(signals, params.window, params.hop))


def _mri_real(params, mirror: Path, tmp: Path) -> TrainingCase:
    from latente.domains.mri.data import PatchDataset, Prepared
    from latente.domains.mri.model import context_slices, model_config
    from latente.domains.mri.params import PrepareParams

    paths = _prepared("mri", mirror, stage_params("mri", "prepare", PrepareParams), tmp)
    train_set = PatchDataset(Prepared.load(paths.prepared), params.patches, context_slices(model_config(params)), params.trainer.seed)
    return TrainingCase("mri", f"{params.model.name} {list(params.model.channels)}, {params.patches.size}² patches",
                        mri_model(params), params.trainer, train_set)


def _speech_real(params, mirror: Path, tmp: Path) -> TrainingCase:
    """The main fold (held out: `test_speakers`), built as `training.train_fold` builds it."""
    from latente.domains.speech.data import Normaliser, held_out_mask, read_prepared, validation_split
    from latente.domains.speech.params import PrepareParams
    from latente.domains.speech.training import spectrograms

    prepare = stage_params("speech", "prepare", PrepareParams)
    dataset = prepare.dataset.model_copy(update={"root": str(tmp / "data" / "raw" / "speech" / "recordings")})
    paths = _prepared("speech", mirror, prepare.model_copy(update={"dataset": dataset}), tmp)
    prepared = read_prepared(paths.prepared)
    corpus, features = prepared.corpus, prepared.features
    specs = spectrograms(corpus.recordings, features, params.augment, params.trainer.seed)
    train_index = np.flatnonzero(~held_out_mask(corpus.speakers.tolist(), params.test_speakers))
    fit_index, _ = validation_split(train_index, params.validation_fraction, params.trainer.seed)
    normaliser = Normaliser.fit(specs.clean[fit_index])
    versions = [specs.clean, *specs.noisy]
    bank = {int(i): k for k, i in enumerate(train_index)}
    labels = corpus.labels[train_index]
    classes = sorted(set(labels.tolist()))
    digits = torch.tensor([classes.index(label) for label in labels])
    inputs = torch.cat([normaliser(v[fit_index]) for v in versions])
    clips = torch.tensor([bank[int(i)] for i in fit_index]).repeat(len(versions))
    model = speech_model(params, features, normaliser(specs.clean[train_index]), digits, len(classes))
    return TrainingCase("speech", f"{params.model.name} {list(params.model.channels)} under a digit head, {features.n_mels}×{features.frames} log-mel",
                        model, params.trainer, TensorDataset(inputs, clips))


def _protein_real(params, mirror: Path, tmp: Path) -> TrainingCase:
    from latente.domains.protein.data import load_prepared
    from latente.domains.protein.params import PrepareParams
    from latente.domains.protein.training import OneHotSequences, split

    paths = _prepared("protein", mirror, stage_params("protein", "prepare", PrepareParams), tmp)
    data = load_prepared(paths.prepared)
    codes = data.alignment.codes
    train_idx, _ = split(len(codes), params.val_fraction, params.trainer.seed)
    weights = data.weights[train_idx]
    return TrainingCase("protein", f"FamilyVAE {list(params.model.hidden)}-{params.model.latent_dim}-{list(params.model.decoder_hidden)}, "
                        f"{codes.shape[1]} columns", protein_model(params, codes.shape[1], float(weights.sum())), params.trainer,
                        OneHotSequences(codes[train_idx]), torch.as_tensor(weights))


def _anomaly_real(params, mirror: Path, tmp: Path) -> TrainingCase:
    """The global detector's windows (the anomaly-free run), standardised and split as `fit_detector` does."""
    from latente.domains.anomaly.data import load_prepared
    from latente.domains.anomaly.model import windows
    from latente.domains.anomaly.params import PrepareParams

    paths = _prepared("anomaly", mirror, stage_params("anomaly", "prepare", PrepareParams), tmp)
    _, _, normal = load_prepared(paths.prepared)
    detector = params.detector
    values = normal.values
    scale = np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)
    z = ((values - values.mean(axis=0)) / scale).astype(np.float32)
    train_windows = torch.from_numpy(np.ascontiguousarray(windows(z, detector.window)))
    n_val = max(1, int(len(train_windows) * detector.val_fraction)) if detector.val_fraction > 0 else 0
    return TrainingCase("anomaly", f"{detector.model.name} {list(detector.model.channels)}, {len(normal.sensors)} sensors × {detector.window} rows",
                        anomaly_model(params, len(normal.sensors)), anomaly_trainer(params), train_windows[: len(train_windows) - n_val])


REAL_BUILDERS = {"ecg": _ecg_real, "mri": _mri_real, "speech": _speech_real, "protein": _protein_real, "anomaly": _anomaly_real}


def synthetic_case(domain: str, samples: int = SYNTHETIC_SAMPLES) -> TrainingCase:
    """`domain`'s model and trainer settings with `samples` random inputs of the training shapes."""
    params = train_params(domain)
    g = torch.Generator().manual_seed(0)
    if domain == "ecg":
        return TrainingCase(domain, "ecg codec A", ecg_model(params), params.trainer, torch.randn(samples, 1, params.window, generator=g))
    if domain == "mri":
        model = params.model
        shape = (samples, model.in_channels, params.patches.size, params.patches.size)
        return TrainingCase(domain, "mri denoiser", mri_model(params), params.trainer, torch.rand(shape, generator=g))
    if domain == "speech":
        from latente.domains.speech.params import PrepareParams

        features = stage_params("speech", "prepare", PrepareParams).features
        x = torch.randn(samples, 1, features.n_mels, features.frames, generator=g)
        digits = torch.randint(0, SPOKEN_DIGITS, (samples,), generator=g)
        model = speech_model(params, features, x, digits, SPOKEN_DIGITS)
        return TrainingCase(domain, "speech autoencoder under a digit head", model, params.trainer, TensorDataset(x, torch.arange(samples)))
    if domain == "protein":
        codes = torch.randint(0, 21, (samples, PROTEIN_COLUMNS), generator=g)
        one_hot = torch.nn.functional.one_hot(codes, 21).transpose(1, 2).float()
        return TrainingCase(domain, "protein FamilyVAE", protein_model(params, PROTEIN_COLUMNS, float(samples)), params.trainer, one_hot)
    if domain == "anomaly":
        x = torch.randn(samples, SKAB_SENSORS, params.detector.window, generator=g)
        return TrainingCase(domain, "anomaly detector", anomaly_model(params, SKAB_SENSORS), anomaly_trainer(params), x)
    raise ValueError(f"unknown domain {domain!r}")
