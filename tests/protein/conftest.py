"""Protein fixtures: real BLAT_ECOLX files, a cropped copy of the alignment, a tiny trained model."""
from __future__ import annotations

from pathlib import Path

import pytest

from latente.domains.protein.data import weigh
from latente.domains.protein.params import TrainParams
from latente.domains.protein.sources import ALIGNMENT, DMS
from latente.domains.protein.training import train_ensemble, write_ensemble
from latente.shared.io import atomic_dir
from tests.tiny import PROTEIN

CROPPED_RECORDS = 1200  # the focus and the next 1199 sequences: enough for a tiny model to learn the family


@pytest.fixture(scope="session")
def blat_alignment(mirror) -> Path:
    return mirror / "protein" / ALIGNMENT


@pytest.fixture(scope="session")
def blat_dms(mirror) -> Path:
    return mirror / "protein" / DMS


@pytest.fixture(scope="session")
def cropped_alignment(blat_alignment, tmp_path_factory) -> Path:
    """The first records of the real alignment (focus first), unchanged otherwise, named as the tiny params name it."""
    records = blat_alignment.read_text().split(">")[1 : CROPPED_RECORDS + 1]
    path = tmp_path_factory.mktemp("protein") / PROTEIN["prepare"]["alignment"]
    path.write_text("".join(">" + r for r in records))
    return path


@pytest.fixture(scope="session")
def tiny_params() -> TrainParams:
    return TrainParams.model_validate(PROTEIN["train"])


@pytest.fixture(scope="session")
def tiny_model(cropped_alignment, tiny_params, tmp_path_factory) -> Path:
    """The tiny procedure (an ensemble of `members` family VAEs) trained on the cropped real alignment, saved
    as an ensemble folder."""
    data = weigh(cropped_alignment, None, 0.2)
    root = tmp_path_factory.mktemp("tiny_model")
    members = train_ensemble(data.alignment.codes, data.weights, tiny_params, root / "checkpoint", fingerprint={"test": "tiny"})
    with atomic_dir(root / "model") as tmp:
        write_ensemble(members, data, tiny_params.trainer.seed, tmp)
    return root / "model"
