"""Training one speaker-disjoint fold: a denoising spectrogram autoencoder, then its classifier.

Noise robustness is learnt, not engineered: besides each clean training clip, the encoder
sees `copies` versions with white noise added to the recording (SNR drawn per copy) and
must reconstruct the clean spectrogram. Those copies are also played faster or slower
(`augment.speed`), so a voice pitched or paced unlike the training voices maps onto theirs, and
moved by a few frames (`augment.shift`), so a speaker who leaves uneven silence around the word
is read the same. With `supervision.digit_weight` > 0 a linear digit
head on the code is trained with it (a supervised autoencoder), which pulls the code towards
what the digits share across speakers rather than what each voice keeps. Only the training
speakers' audio and labels are ever used.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn
from torch.utils.data import TensorDataset

from latente.domains.speech.data import LogMel, Normaliser, add_white_noise, fold_name, held_out_mask, read_prepared, speaker_folds, validation_split
from latente.domains.speech.model import LinearClassifier, SpeechModel, encode_batches, model_config
from latente.domains.speech.params import SPEED_STEPS, AugmentParams, FeatureParams, TrainParams
from latente.shared.io import atomic_dir
from latente.shared.models import AutoencoderConfig, build_model
from latente.shared.models.autoencoders import AEOutput, Autoencoder
from latente.shared.stage import DomainPaths
from latente.shared.trainer import FitResult, fit, seed_everything


@dataclass
class Spectrograms:
    """Relative log-mel spectrograms of every clip: clean, and the noisy training copies."""

    clean: torch.Tensor  # [N, 1, M, F]
    noisy: list[torch.Tensor]  # `copies` tensors like `clean`


def play_at_speed(recording: torch.Tensor, n: int) -> torch.Tensor:
    """The recording played SPEED_STEPS / n times as fast: resampled to n / SPEED_STEPS of its length."""
    return recording if n == SPEED_STEPS else AF.resample(recording, orig_freq=SPEED_STEPS, new_freq=n)


def noisy_copies(recordings: Sequence[torch.Tensor], augment: AugmentParams, seed: int) -> list[list[torch.Tensor]]:
    """`copies` corrupted versions of every recording: each played at a speed drawn from `speed`
    (when that range holds more than 1), then white noise at an SNR drawn per clip; a function of
    the seed and the recordings only."""
    low, high = augment.snr_db
    steps = torch.tensor(augment.speed_steps())
    out = []
    for copy in range(augment.copies):
        generator = torch.Generator().manual_seed(seed * 7919 + copy + 1)
        snrs = low + (high - low) * torch.rand(len(recordings), generator=generator, dtype=torch.float64)
        if len(steps) > 1:
            drawn = steps[torch.randint(len(steps), (len(recordings),), generator=generator)]
            recordings_at_speed = [play_at_speed(r, int(n)) for r, n in zip(recordings, drawn)]
        else:
            recordings_at_speed = list(recordings)
        out.append([add_white_noise(r, float(s), generator) for r, s in zip(recordings_at_speed, snrs)])
    return out


def masked(spectrograms: torch.Tensor, freq_mask: int, time_mask: int, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment on [B, 1, M, F]: per clip, one band of 0..`freq_mask` mel bins and one span of
    0..`time_mask` frames, at uniform positions, set to the clip's mean."""
    out = spectrograms.clone()
    mels, frames = out.shape[-2:]
    means = out.mean(dim=(1, 2, 3))
    for b in range(len(out)):
        for axis, (widest, size) in enumerate(((freq_mask, mels), (time_mask, frames))):
            width = int(torch.randint(min(widest, size) + 1, (1,), generator=generator))
            start = int(torch.randint(size - width + 1, (1,), generator=generator))
            band = out[b, 0, start : start + width] if axis == 0 else out[b, 0, :, start : start + width]
            band.fill_(means[b])
    return out


def shifted(spectrograms: torch.Tensor, widest: int, generator: torch.Generator) -> torch.Tensor:
    """[B, 1, M, F] with each clip moved by a whole number of frames drawn from -widest..widest;
    uncovered frames take the clip's minimum (the log-mel floor, silence)."""
    frames = spectrograms.shape[-1]
    offsets = torch.randint(-widest, widest + 1, (len(spectrograms),), generator=generator).clamp(-frames, frames)
    out = spectrograms.amin(dim=(1, 2, 3), keepdim=True).expand_as(spectrograms).clone()
    for b, offset in enumerate(offsets.tolist()):
        if offset >= 0:
            out[b, ..., offset:] = spectrograms[b, ..., : frames - offset]
        else:
            out[b, ..., :offset] = spectrograms[b, ..., -offset:]
    return out


def spectrograms(recordings: Sequence[torch.Tensor], features: FeatureParams, augment: AugmentParams, seed: int) -> Spectrograms:
    logmel = LogMel(features)
    noisy = [logmel(copy) for copy in noisy_copies(recordings, augment, seed)]
    if augment.freq_mask or augment.time_mask:
        generator = torch.Generator().manual_seed(seed * 7919 + 104_729)
        noisy = [masked(copy, augment.freq_mask, augment.time_mask, generator) for copy in noisy]
    if augment.shift:
        generator = torch.Generator().manual_seed(seed * 7919 + 130_363)
        noisy = [shifted(copy, augment.shift, generator) for copy in noisy]
    return Spectrograms(logmel(recordings), noisy)


class SupervisedAutoencoder(nn.Module):
    """The training-time model: the autoencoder's denoising loss plus `digit_weight` × the
    cross-entropy of a linear digit head on its code (term `digit`), plus, when
    `invariance_weight` is set, that weight × `code_distance` between the input's code and its
    clean clip's (term `invariance`).

    A batch is (input spectrogram, clip index): the index looks up the clip's clean target and
    digit in banks held as non-persistent buffers, so checkpoints hold only the weights and
    each clean target is stored once however many noisy versions point at it.
    """

    def __init__(self, autoencoder: Autoencoder, targets: torch.Tensor, digits: torch.Tensor, classes: int,
                 digit_weight: float, invariance_weight: float = 0.0):
        super().__init__()
        self.autoencoder = autoencoder
        self.head = nn.Linear(autoencoder.config.latent_dim, classes)
        self.register_buffer("targets", targets, persistent=False)
        self.register_buffer("digits", digits, persistent=False)
        self.digit_weight = digit_weight
        self.invariance_weight = invariance_weight

    def forward(self, x: torch.Tensor, clip: torch.Tensor) -> AEOutput:
        clean = self.targets[clip]
        out = self.autoencoder(x, clean)
        digit = F.cross_entropy(self.head(out.z), self.digits[clip], reduction="none")
        loss, terms = out.loss + self.digit_weight * digit.mean(), {**out.terms, "digit": digit}
        if self.invariance_weight:
            terms["invariance"] = code_distance(out.z, self.autoencoder.encode(clean))
            loss = loss + self.invariance_weight * terms["invariance"].mean()
        return AEOutput(out.recon, out.z, loss, terms)


def code_distance(z: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """Per clip, ‖z − anchor‖² over the summed variance of the anchors' codes in the batch: 0 when
    the corruption leaves the code where the clean clip's is, about 2 for unrelated codes."""
    return ((z - anchor) ** 2).sum(dim=1) / anchor.detach().var(dim=0).sum().clamp_min(1e-8)


def train_fold(
    specs: Spectrograms,
    labels: Sequence[str],
    speakers: Sequence[str],
    held_out: Sequence[str],
    params: TrainParams,
    features: FeatureParams,
    config: AutoencoderConfig,
    label_pattern: str,
    checkpoint_dir: Path,
    live_dir: Path | None,
    fingerprint: dict[str, Any],
) -> tuple[SpeechModel, FitResult]:
    """Train on every speaker except `held_out`; the classifier is fitted on the training speakers' clean codes."""
    train_index = np.flatnonzero(~held_out_mask(speakers, held_out))
    fit_index, val_index = validation_split(train_index, params.validation_fraction, params.trainer.seed)
    normaliser = Normaliser.fit(specs.clean[fit_index])
    versions = [specs.clean, *specs.noisy]
    # Banks over the training speakers' clips only; batches name a clip by its place in them.
    bank = {int(i): k for k, i in enumerate(train_index)}
    classes = sorted(set(np.asarray(labels)[train_index].tolist()))
    digits = torch.tensor([classes.index(labels[i]) for i in train_index])

    def dataset(index: np.ndarray) -> TensorDataset:
        """Clean and noisy inputs of these clips, each with its clip's place in the banks."""
        clips = torch.tensor([bank[int(i)] for i in index])
        return TensorDataset(torch.cat([normaliser(v[index]) for v in versions]), clips.repeat(len(versions)))

    print(f"fold without {', '.join(held_out)}: {len(fit_index)} clips × {len(versions)} versions", file=sys.stderr)
    seed_everything(params.trainer.seed)
    autoencoder = build_model(config)
    model = SupervisedAutoencoder(autoencoder, normaliser(specs.clean[train_index]), digits, len(classes),
                                  params.supervision.digit_weight, params.supervision.invariance_weight)
    # Validation mirrors training: clean and noisy inputs of held-back training-speaker clips.
    result = fit(
        model, dataset(fit_index), dataset(val_index), params.trainer,
        checkpoint_dir, fingerprint={**fingerprint, "held_out": list(held_out)}, live_dir=live_dir,
    )
    codes = encode_batches(autoencoder, normaliser(specs.clean[train_index])).numpy()
    classifier = LinearClassifier.fit(codes, np.asarray(labels)[train_index], np.asarray(speakers)[train_index], params.classifier)
    info = {
        "held_out": list(held_out),
        "trained_speakers": sorted(set(np.asarray(speakers)[train_index].tolist())),
        "train": params.model_dump(mode="json"),  # how it was trained: the report's method, the ablations' design arm
        "classifier_choice": {"C": classifier.C, "search": classifier.search},
        "fit": result.to_json(),
    }
    return SpeechModel(autoencoder, features, normaliser, classifier, label_pattern, info), result


def train_models(
    corpus_labels: Sequence[str],
    corpus_speakers: Sequence[str],
    recordings: Sequence[torch.Tensor],
    folds: Sequence[tuple[str, ...]],
    params: TrainParams,
    features: FeatureParams,
    label_pattern: str,
    model_dir: Path,
    checkpoint_dir: Path,
    live_dir: Path | None,
    data: dict[str, Any],
) -> list[FitResult]:
    """One model per fold: the first (held-out `test_speakers`) is the main model at `model_dir`,
    the others go to `model_dir/folds/<speaker>`; written all at once, only when every fold is done."""
    config = model_config(params.model, features)
    specs = spectrograms(recordings, features, params.augment, params.trainer.seed)
    layout = [{"held_out": list(fold), "folder": "." if k == 0 else f"folds/{fold_name(fold)}"} for k, fold in enumerate(folds)]
    fingerprint = {"train": params.model_dump(mode="json"), "features": features.model_dump(mode="json"), "data": data}
    trained, results = [], []
    for k, fold in enumerate(folds):
        log = None if live_dir is None else (live_dir if k == 0 else live_dir / "folds" / fold_name(fold))
        model, result = train_fold(
            specs, corpus_labels, corpus_speakers, fold, params, features, config, label_pattern,
            checkpoint_dir / fold_name(fold), log, fingerprint,
        )
        trained.append(model)
        results.append(result)
    trained[0].info.update({"folds": layout, "loso": params.loso})
    with atomic_dir(model_dir) as tmp:
        for model, entry in zip(trained, layout):
            model.save(tmp / entry["folder"], data=data)
    return results


def train(params: TrainParams, paths: DomainPaths) -> None:
    """The train stage: one model per speaker-disjoint fold, from the prepared recordings."""
    prepared = read_prepared(paths.prepared)
    corpus = prepared.corpus
    folds = speaker_folds(corpus.speakers.tolist(), params.test_speakers, params.loso)
    data = {"source": prepared.dataset["root"], "clips": len(corpus), "speakers": sorted(set(corpus.speakers.tolist())), "sha256": prepared.digest()}
    train_models(
        corpus.labels.tolist(), corpus.speakers.tolist(), corpus.recordings, folds, params, prepared.features,
        prepared.label_pattern, paths.model, paths.checkpoint, paths.training_log, data,
    )
