"""Protein fixtures: real BLAT_ECOLX files, a cropped copy of the alignment, a tiny trained model."""
from __future__ import annotations

from pathlib import Path

import pytest

from latente.domains.protein.params import TrainParams
from latente.domains.protein.prepared import weigh
from latente.domains.protein.sources import ALIGNMENT, DMS
from latente.domains.protein.training import save_family_vae, train_family_vae

TINY = {
    "model": {"hidden": [96], "latent_dim": 6, "decoder_hidden": [32, 64]},
    "decoder": {"sparse": True, "patterns": 4, "dictionary": 8},
    "trainer": {"epochs": 3, "batch_size": 64, "lr": 0.003, "scheduler": "constant", "patience": None,
                "device": "cpu", "threads": 1, "seed": 0},
    "val_fraction": 0.1,
}


@pytest.fixture(scope="session")
def blat_alignment(mirror) -> Path:
    return mirror / "protein" / ALIGNMENT


@pytest.fixture(scope="session")
def blat_dms(mirror) -> Path:
    return mirror / "protein" / DMS


@pytest.fixture(scope="session")
def cropped_alignment(blat_alignment, tmp_path_factory) -> Path:
    """The first 1200 records of the real alignment (focus first), unchanged otherwise."""
    text = blat_alignment.read_text()
    records = text.split(">")[1:1201]
    path = tmp_path_factory.mktemp("protein") / "blat_cropped.a2m"
    path.write_text("".join(">" + r for r in records))
    return path


@pytest.fixture(scope="session")
def tiny_params() -> TrainParams:
    return TrainParams.model_validate(TINY)


@pytest.fixture(scope="session")
def tiny_model(cropped_alignment, tiny_params, tmp_path_factory) -> Path:
    """A tiny family VAE trained for 3 epochs on the cropped real alignment, saved as a model folder."""
    data = weigh(cropped_alignment, None, 0.2)
    root = tmp_path_factory.mktemp("tiny_model")
    trained = train_family_vae(data.alignment.codes, data.weights, tiny_params, root / "checkpoint",
                               fingerprint={"test": "tiny"})
    save_family_vae(trained, data, root / "model")
    return root / "model"

