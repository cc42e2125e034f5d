"""Reading, labelling and preprocessing the recordings, and the prepared folder.

Recordings: any WAV soundfile reads, mixed to mono and resampled to one rate. Every problem
with a file becomes a UserError naming it; clipping is only a warning, because clipped speech
is still speech. Labels come from a file-name pattern with the named groups `label` and
`speaker`, from a CSV (file,label,speaker), or from the Speech Commands folder layout; splits
are always by speaker. The model's input is a log-mel spectrogram whose dB values are taken
relative to each clip's maximum and floored at -top_db, so they do not depend on recording
level; the floor also hides most of a weak noise floor.

The prepared folder keeps every recording at its own length (padding or cropping happens in
feature extraction), so that noise can be added to the recording itself, as a microphone would.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T
from safetensors.torch import load_file

from latente.domains.speech import DOMAIN
from latente.domains.speech.params import DatasetParams, FeatureParams, PrepareParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json, write_text
from latente.shared.models.store import save_tensors
from latente.shared.params import PARAMS_FILE
from latente.shared.stage import DomainPaths

MIN_SAMPLE_RATE = 1000
# Windowed-sinc resampling builds a (new/g) × (orig/g) kernel, g = gcd of the two rates:
# rates that share almost no factor would need gigabytes, so they are refused.
MAX_RESAMPLE_KERNEL = 20_000_000
FULL_SCALE = 0.999
CLIP_RUN = 3
AUDIO_SUFFIX = ".wav"
CSV_COLUMNS = ("file", "label", "speaker")
ITEMS = "items.csv"
AUDIO = "audio.safetensors"
SETTINGS = "features.json"


# --- reading recordings ------------------------------------------------------------------------
def warn(where: str | Path, problem: str) -> None:
    """A warning in the error-line format; processing continues."""
    print(f"warning: {where}: {problem}", file=sys.stderr)


def check_resampling(path: str | Path, source_rate: int, target_rate: int) -> None:
    if source_rate < MIN_SAMPLE_RATE:
        raise UserError(path, f"sample rate {source_rate} Hz is too low to hold speech", f"use recordings at ≥ {MIN_SAMPLE_RATE} Hz")
    g = math.gcd(source_rate, target_rate)
    if (source_rate // g) * (target_rate // g) > MAX_RESAMPLE_KERNEL:
        raise UserError(
            path, f"cannot resample {source_rate} Hz to {target_rate} Hz (the rates share too small a factor)",
            "convert it to a standard rate such as 8000, 16000 or 44100 Hz first",
        )


def clip_run_length(samples: torch.Tensor) -> int:
    """Length of the longest run of consecutive samples at full scale."""
    at_full = (samples.abs() >= FULL_SCALE).to(torch.int8).numpy()
    if not at_full.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], at_full, [0]))))
    return int((edges[1::2] - edges[::2]).max())


def is_clipped(samples: torch.Tensor) -> bool:
    return clip_run_length(samples) >= CLIP_RUN


def load_audio(path: str | Path, sample_rate: int) -> tuple[torch.Tensor, bool]:
    """Mono float32 samples at `sample_rate`, and whether the recording is clipped."""
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "file not found")
    if path.stat().st_size == 0:
        raise UserError(path, "empty file (0 bytes)", "re-export the recording")
    try:
        data, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise UserError(path, f"not a readable audio file ({err})", "give a WAV file") from None
    if data.shape[0] == 0:
        raise UserError(path, "contains no audio samples (zero length)")
    if not np.isfinite(data).all():
        raise UserError(path, "contains NaN or infinite samples")
    clipped = any(is_clipped(torch.from_numpy(data[:, c])) for c in range(data.shape[1]))
    samples = torch.from_numpy(data.mean(axis=1) if data.shape[1] > 1 else data[:, 0])
    if source_rate != sample_rate:
        check_resampling(path, source_rate, sample_rate)
        samples = AF.resample(samples, source_rate, sample_rate)
    return samples.contiguous(), clipped


VOICE_DB = 30.0  # a block belongs to the voice when its energy is within this many dB of the loudest block
FLOOR_QUANTILE = 0.2  # ... and a margin above the recording's noise floor, the energy of its quietest fifth of blocks


def voiced_span(samples: torch.Tensor, block: int, smoothing: int, margin_db: float) -> tuple[int, int]:
    """[first, last) samples of the voice: from the first to the last whole block of `block`
    samples whose mean energy, averaged over the `smoothing` blocks centred on it, lies within
    VOICE_DB of the loudest such average and `margin_db` above the noise floor, the FLOOR_QUANTILE
    quantile of the averages (in noise the first rule alone would take every block for voice).
    The average is what lets the margin be small: in white noise one block's energy fluctuates by
    sqrt(2 / block) of its mean (16 % for 80 samples), an average of 11 blocks by under 5 %, so a
    margin of 1 dB (26 %) is still five standard deviations above the noise, while the quieter half
    of a word in 0 dB noise, a few dB above it, still counts as voice. The whole recording when
    it is shorter than a block or silent."""
    blocks = samples.shape[-1] // block
    if blocks == 0:
        return 0, samples.shape[-1]
    energy = samples[: blocks * block].reshape(blocks, block).double().pow(2).mean(dim=1)
    energy = torch.nn.functional.avg_pool1d(energy[None, None], smoothing, 1, smoothing // 2, count_include_pad=False)[0, 0]
    if float(energy.max()) == 0.0:
        return 0, samples.shape[-1]
    floor = torch.quantile(energy, FLOOR_QUANTILE)
    threshold = torch.maximum(energy.max() * 10 ** (-VOICE_DB / 10), floor * 10 ** (margin_db / 10))
    loud = torch.nonzero(energy >= threshold.clamp_max(energy.max())).flatten()
    return int(loud[0]) * block, (int(loud[-1]) + 1) * block


def fix_duration(samples: torch.Tensor, length: int, align: str, block: int, smoothing: int, margin_db: float) -> torch.Tensor:
    """Pad with silence or crop to `length` samples, keeping the start, the centre, or the centre
    of the voiced span (`voiced_span` with the last three arguments: silence a speaker leaves
    before or after the word does not move the word in the window)."""
    if align == "voice":
        first, last = voiced_span(samples, block, smoothing, margin_db)
        start = (first + last) // 2 - length // 2  # the window [start, start + length) may overhang either end
        window = samples[..., max(start, 0) : start + length]
        return torch.nn.functional.pad(window, (max(-start, 0), length - window.shape[-1] - max(-start, 0)))
    excess = samples.shape[-1] - length
    if excess >= 0:
        start = excess // 2 if align == "center" else 0
        return samples[..., start : start + length]
    before = -excess // 2 if align == "center" else 0
    return torch.nn.functional.pad(samples, (before, -excess - before))


# --- labelled recordings -----------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    path: Path
    label: str
    speaker: str


def parse_name(path: Path, pattern: str) -> tuple[str, str]:
    """(label, speaker) from a file name, or a UserError naming the file and the pattern."""
    match = re.fullmatch(pattern, path.name)
    if match is None:
        raise UserError(path, f"file name does not match the label pattern '{pattern}'", "rename the file, pass another --pattern, or give a labels CSV")
    return match.group("label"), match.group("speaker")


def audio_files(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, and the *.wav files inside given folders (recursively, sorted)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() == AUDIO_SUFFIX)
            if not found:
                raise UserError(item, "folder holds no .wav files")
            files += found
        elif item.exists():
            files.append(item)
        else:
            raise UserError(item, "file not found")
    if not files:
        raise UserError("inputs", "no audio files given")
    return files


def labelled_folder(root: str | Path, pattern: str, labels_csv: str | Path | None = None) -> list[Utterance]:
    """Every WAV under `root`, labelled by file name, or the rows of `labels_csv` (paths relative to root)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(root, "data folder not found")
    if labels_csv is not None:
        return _from_csv(root, Path(labels_csv))
    return [Utterance(path, *parse_name(path, pattern)) for path in audio_files([root])]


def _from_csv(root: Path, table: Path) -> list[Utterance]:
    try:
        with table.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except FileNotFoundError:
        raise UserError(table, "labels CSV not found") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(table, f"not a readable CSV ({err})") from None
    missing = [c for c in CSV_COLUMNS if c not in header]
    if not rows or missing:
        raise UserError(table, f"needs a header with the columns {', '.join(CSV_COLUMNS)}" + (f" (missing {', '.join(missing)})" if rows else " and at least one row"))
    items = []
    for line, row in enumerate(rows, start=2):
        if not all((row.get(c) or "").strip() for c in CSV_COLUMNS):
            raise UserError(f"{table}: line {line}", "empty file, label or speaker")
        path = root / row["file"].strip()
        if not path.is_file():
            raise UserError(f"{table}: line {line}", f"{path} not found")
        items.append(Utterance(path, row["label"].strip(), row["speaker"].strip()))
    return items


def speech_commands(root: str | Path, subset: str | None, labels: Sequence[str]) -> list[Utterance]:
    """Speech Commands v0.02 as torchaudio lays it out under `root` (never downloaded here)."""
    from torchaudio.datasets import SPEECHCOMMANDS

    try:
        dataset = SPEECHCOMMANDS(str(root), download=False, subset=subset)
    except (RuntimeError, FileNotFoundError) as err:
        raise UserError(root, f"no Speech Commands data here ({err})", "download it once with torchaudio.datasets.SPEECHCOMMANDS(root, download=True)") from None
    items = []
    for n in range(len(dataset)):
        relpath, _, label, speaker, _ = dataset.get_metadata(n)
        if not labels or label in labels:
            items.append(Utterance(Path(dataset._archive) / relpath, label, speaker))
    if not items:
        raise UserError(root, f"no Speech Commands recordings with the labels {list(labels)}")
    return items


def load_dataset(params: DatasetParams, where: str = f"{PARAMS_FILE}: {DOMAIN}.prepare.dataset") -> list[Utterance]:
    if params.kind == "speechcommands":
        return speech_commands(params.root, params.subset, params.labels)
    if params.subset is not None or params.labels:
        raise UserError(where, "subset and labels apply to Speech Commands only")
    return labelled_folder(params.root, params.pattern, params.labels_csv)


# --- the corpus and its noisy versions ---------------------------------------------------------
@dataclass
class Corpus:
    """Recordings at the feature rate with their labels and speakers."""

    names: list[str]
    recordings: list[torch.Tensor]
    labels: np.ndarray
    speakers: np.ndarray

    @classmethod
    def read(cls, utterances: Sequence[Utterance], sample_rate: int, root: Path | None = None) -> "Corpus":
        recordings, clipped = [], []
        for u in utterances:
            samples, was_clipped = load_audio(u.path, sample_rate)
            recordings.append(samples)
            if was_clipped:
                clipped.append(u.path)
        if clipped:
            warn(clipped[0], f"audio is clipped (runs of full-scale samples){f'; so are {len(clipped) - 1} more files' if len(clipped) > 1 else ''}")
        names = [str(u.path.relative_to(root)) if root else str(u.path) for u in utterances]
        return cls(names, recordings, np.array([u.label for u in utterances]), np.array([u.speaker for u in utterances]))

    def __len__(self) -> int:
        return len(self.recordings)


def add_white_noise(samples: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    """Add white Gaussian noise at `snr_db` relative to the recording's own mean power."""
    power = samples.double().pow(2).mean()
    scale = torch.sqrt(power / 10.0 ** (snr_db / 10.0)).float()
    return samples + scale * torch.randn(samples.shape, generator=generator)


def noisy(recordings: Sequence[torch.Tensor], snr_db: float, seed: int) -> list[torch.Tensor]:
    """White noise at `snr_db` on every recording (the evaluation's noisy conditions); a function of
    the seed, the SNR and the recordings only, so both methods and the report see the same waveforms."""
    generator = torch.Generator().manual_seed(seed * 100_003 + int(round((snr_db + 1000.0) * 10)))
    return [add_white_noise(r, snr_db, generator) for r in recordings]


# --- speaker-disjoint splits -------------------------------------------------------------------
def speaker_folds(speakers: Sequence[str], test_speakers: Sequence[str], loso: bool) -> list[tuple[str, ...]]:
    """Held-out speakers of each model: `test_speakers` first (the main model), then one per remaining speaker."""
    known = sorted(set(speakers))
    unknown = [s for s in test_speakers if s not in known]
    if unknown:
        raise UserError(f"{PARAMS_FILE}: {DOMAIN}.train.test_speakers", f"no recordings of {', '.join(unknown)}", f"the data has {', '.join(known)}")
    if len(set(test_speakers)) >= len(known):
        raise UserError(f"{PARAMS_FILE}: {DOMAIN}.train.test_speakers", "holds out every speaker; nothing is left to train on")
    folds = [tuple(test_speakers)]
    if loso:
        folds += [(s,) for s in known if (s,) != folds[0]]
    return folds


def fold_name(held_out: Sequence[str]) -> str:
    """A fold's name (and its model's folder under folds/): its held-out speakers joined by '+'."""
    return "+".join(held_out)


def held_out_mask(speakers: Sequence[str], held_out: Iterable[str]) -> np.ndarray:
    held = set(held_out)
    return np.array([s in held for s in speakers], dtype=bool)


def validation_split(train_index: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random `fraction` of the training speakers' clips for early stopping (never a test speaker)."""
    order = np.random.default_rng(seed).permutation(train_index)
    n_val = max(1, round(fraction * len(order)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# --- the model's input: relative log-mel spectrograms ------------------------------------------
def noise_floor(power: torch.Tensor) -> torch.Tensor:
    """[B, M, 1]: per clip and mel band, the FLOOR_QUANTILE quantile of the power over the frames
    that hold recording (padding frames are exactly 0 and are left out); 0 for a silent clip."""
    recorded = power.sum(dim=1, keepdim=True) > 0
    floor = torch.nanquantile(power.masked_fill(~recorded, float("nan")), FLOOR_QUANTILE, dim=2, keepdim=True)
    return floor.nan_to_num(0.0)


class LogMel:
    """Waveforms at the feature rate → [B, 1, n_mels, frames] relative log-mel spectrograms
    (each band less its `noise_floor` first, when `subtract_floor` is set)."""

    def __init__(self, params: FeatureParams):
        self.params = params
        self.mel = T.MelSpectrogram(sample_rate=params.sample_rate, n_fft=params.n_fft, hop_length=params.hop_length, n_mels=params.n_mels)
        self.to_db = T.AmplitudeToDB("power", top_db=params.top_db)

    def fixed(self, recordings: Sequence[torch.Tensor]) -> torch.Tensor:
        """[B, samples]: each recording padded with silence or cropped to the fixed duration."""
        p = self.params
        return torch.stack([fix_duration(r, p.samples, p.align, p.hop_length, p.voice_smoothing, p.voice_margin_db) for r in recordings])

    def __call__(self, recordings: Sequence[torch.Tensor]) -> torch.Tensor:
        power = self.mel(self.fixed(recordings))
        if self.params.subtract_floor:
            power = (power - noise_floor(power)).clamp_min(0.0)
        power = power.unsqueeze(1)
        # A 4-D input makes AmplitudeToDB apply top_db per clip rather than per batch.
        db = self.to_db(power)
        return db - db.amax(dim=(1, 2, 3), keepdim=True)


class Normaliser:
    """Scalar standardisation with statistics from the training split only."""

    def __init__(self, mean: float, std: float):
        self.mean, self.std = float(mean), float(std)

    @classmethod
    def fit(cls, spectrograms: torch.Tensor) -> "Normaliser":
        return cls(spectrograms.mean().item(), spectrograms.std().item())

    def __call__(self, spectrograms: torch.Tensor) -> torch.Tensor:
        return (spectrograms - self.mean) / self.std

    def inverse(self, normalised: torch.Tensor) -> torch.Tensor:
        return normalised * self.std + self.mean

    def to_json(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}


class GriffinLimInverter:
    """Relative log-mel dB → waveform (inverse mel filter bank, then Griffin-Lim phase; deterministic)."""

    def __init__(self, params: FeatureParams, n_iter: int = 64):
        self.inverse_mel = T.InverseMelScale(n_stft=params.n_fft // 2 + 1, n_mels=params.n_mels, sample_rate=params.sample_rate)
        self.griffin_lim = T.GriffinLim(n_fft=params.n_fft, hop_length=params.hop_length, power=2.0, n_iter=n_iter, rand_init=False)

    def __call__(self, db: torch.Tensor) -> torch.Tensor:
        power = torch.pow(10.0, db / 10.0)
        wave = self.griffin_lim(self.inverse_mel(power))
        return 0.9 * wave / wave.abs().max().clamp_min(1e-8)


# --- the prepared folder -----------------------------------------------------------------------
@dataclass
class Prepared:
    corpus: Corpus
    features: FeatureParams
    dataset: dict[str, Any]

    @property
    def label_pattern(self) -> str:
        return self.dataset["pattern"]

    def digest(self) -> str:
        """Identity of the prepared data, for checkpoint fingerprints."""
        h = hashlib.sha256()
        for name, samples in zip(self.corpus.names, self.corpus.recordings):
            h.update(name.encode())
            h.update(samples.numpy().tobytes())
        h.update(self.features.model_dump_json().encode())
        return h.hexdigest()


def write_prepared(folder: Path, corpus: Corpus, features: FeatureParams, dataset: DatasetParams) -> None:
    lengths = torch.tensor([len(r) for r in corpus.recordings], dtype=torch.int64)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)])
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["file", "label", "speaker", "samples"])
    writer.writerows(zip(corpus.names, corpus.labels, corpus.speakers, lengths.tolist()))
    with atomic_dir(folder) as tmp:
        save_tensors({"samples": torch.cat(corpus.recordings), "offsets": offsets}, tmp / AUDIO)
        write_text(tmp / ITEMS, table.getvalue())
        write_json(tmp / SETTINGS, {"features": features.model_dump(mode="json"), "dataset": dataset.model_dump(mode="json")})


def read_prepared(folder: Path) -> Prepared:
    if not (folder / AUDIO).is_file():
        raise UserError(folder, "prepared data not found", f"run `dvc repro prepare@{DOMAIN}` first")
    settings = read_json(folder / SETTINGS)
    tensors = load_file(str(folder / AUDIO))
    with (folder / ITEMS).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    samples, offsets = tensors["samples"], tensors["offsets"].tolist()
    recordings = [samples[a:b].clone() for a, b in zip(offsets[:-1], offsets[1:])]
    corpus = Corpus(
        [r["file"] for r in rows], recordings,
        np.array([r["label"] for r in rows]), np.array([r["speaker"] for r in rows]),
    )
    return Prepared(corpus, FeatureParams.model_validate(settings["features"]), settings["dataset"])


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    """The prepare stage: read and label the dataset, resample it, and write the prepared folder."""
    utterances = load_dataset(params.dataset)
    corpus = Corpus.read(utterances, params.features.sample_rate, root=Path(params.dataset.root))
    write_prepared(paths.prepared, corpus, params.features, params.dataset)
