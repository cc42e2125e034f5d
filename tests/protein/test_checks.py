"""In-process checks of the bad-input cases that the CLI tests cover once end to end."""
from __future__ import annotations

import pytest
import yaml

from latente.domains.protein.data import read_alignment
from latente.domains.protein.evaluation import check_same_focus
from latente.domains.protein.model import load_family
from latente.domains.protein.params import TrainParams
from latente.shared.errors import UserError
from latente.shared.models import load_model
from latente.shared.params import stage_params
from tests.tiny import PROTEIN


def test_unknown_params_key_is_named(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"protein": {"train": {**PROTEIN["train"], "epochz": 3}}}))
    with pytest.raises(UserError, match=r"protein\.train\.epochz: unknown key"):
        stage_params("protein", "train", TrainParams, path)


def test_alignment_of_another_protein_is_refused(tiny_model, tmp_path):
    path = tmp_path / "other.a2m"
    path.write_text(">OTHER/1-5\nKLVAG\n>s1\nKLVAG\n")
    with pytest.raises(UserError, match="differs from the one the model was trained on"):
        check_same_focus(load_family(tiny_model), read_alignment(path).focus, str(path))


def test_wrong_model_folders(tmp_path):
    with pytest.raises(UserError, match="model folder not found"):
        load_model(tmp_path / "nope", domain="protein")
