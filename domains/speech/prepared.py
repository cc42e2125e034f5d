"""The prepared folder: every recording at the feature rate, its label and speaker, the feature settings.

Recordings keep their own length (padding or cropping happens in feature extraction), so
that noise can be added to the recording itself, as a microphone would add it.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from latente.domains.speech.evaluation import Corpus
from latente.domains.speech.params import DatasetParams, FeatureParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json, write_text
from latente.shared.models.store import save_tensors

ITEMS = "items.csv"
AUDIO = "audio.safetensors"
SETTINGS = "features.json"


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
        raise UserError(folder, "prepared data not found", "run `dvc repro prepare@speech` first")
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
