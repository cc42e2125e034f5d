"""Labelled recordings and speaker-disjoint splits.

A dataset is a list of utterances (file, label, speaker). Labels come from a file-name
pattern with the named groups `label` and `speaker`, from a CSV (file,label,speaker), or
from the Speech Commands folder layout. Splits are always by speaker.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from latente.domains.speech.params import DatasetParams
from latente.shared.errors import UserError

AUDIO_SUFFIX = ".wav"
CSV_COLUMNS = ("file", "label", "speaker")


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


def load_dataset(params: DatasetParams, where: str = "params.yaml: speech.prepare.dataset") -> list[Utterance]:
    if params.kind == "speechcommands":
        return speech_commands(params.root, params.subset, params.labels)
    if params.subset is not None or params.labels:
        raise UserError(where, "subset and labels apply to Speech Commands only")
    return labelled_folder(params.root, params.pattern, params.labels_csv)


def speaker_folds(speakers: Sequence[str], test_speakers: Sequence[str], loso: bool) -> list[tuple[str, ...]]:
    """Held-out speakers of each model: `test_speakers` first (the main model), then one per remaining speaker."""
    known = sorted(set(speakers))
    unknown = [s for s in test_speakers if s not in known]
    if unknown:
        raise UserError("params.yaml: speech.train.test_speakers", f"no recordings of {', '.join(unknown)}", f"the data has {', '.join(known)}")
    if len(set(test_speakers)) >= len(known):
        raise UserError("params.yaml: speech.train.test_speakers", "holds out every speaker; nothing is left to train on")
    folds = [tuple(test_speakers)]
    if loso:
        folds += [(s,) for s in known if (s,) != folds[0]]
    return folds


def held_out_mask(speakers: Sequence[str], held_out: Iterable[str]) -> np.ndarray:
    held = set(held_out)
    return np.array([s in held for s in speakers], dtype=bool)


def validation_split(train_index: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random `fraction` of the training speakers' clips for early stopping (never a test speaker)."""
    order = np.random.default_rng(seed).permutation(train_index)
    n_val = max(1, round(fraction * len(order)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
