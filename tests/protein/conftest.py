"""Protein fixtures: real BLAT_ECOLX files, a cropped copy of the alignment, a tiny trained model."""
from __future__ import annotations

from pathlib import Path

import pytest

from latente.domains.protein.data import weigh
from latente.domains.protein.params import TrainParams
from latente.domains.protein.sources import ALIGNMENT, DMS
from latente.domains.protein.training import save_family_vae, train_family_vae
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
    """A tiny family VAE trained on the cropped real alignment, saved as a model folder."""
    data = weigh(cropped_alignment, None, 0.2)
    root = tmp_path_factory.mktemp("tiny_model")
    trained = train_family_vae(data.alignment.codes, data.weights, tiny_params, root / "checkpoint",
                               fingerprint={"test": "tiny"})
    save_family_vae(trained, data, root / "model")
    return root / "model"
