"""Fetching FSDD: the real download code against a local server, verified all or nothing."""
from __future__ import annotations

import pytest

from latente.domains.speech.params import FetchParams
from latente.domains.speech.sources import fetch_fsdd, fsdd_files
from latente.shared.errors import UserError


def test_fsdd_file_names():
    assert fsdd_files(("lucas",), 2)[:3] == ["recordings/0_lucas_0.wav", "recordings/0_lucas_1.wav", "recordings/1_lucas_0.wav"]
    assert len(fsdd_files(("jackson", "theo"), 50)) == 2 * 10 * 50  # speakers × digits × takes


def test_canonical_download_path_against_a_local_server(http_mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    params = FetchParams(speakers=("lucas",), takes=2)
    fetch_fsdd(params, tmp_path / "raw", base=f"{http_mirror}/speech")
    assert sorted(p.name for p in (tmp_path / "raw" / "recordings").iterdir())[:2] == ["0_lucas_0.wav", "0_lucas_1.wav"]
    wrong = params.model_copy(update={"manifest_sha256": "0" * 64})
    with pytest.raises(UserError, match="manifest_sha256"):
        fetch_fsdd(wrong, tmp_path / "raw2", base=f"{http_mirror}/speech")
    assert not (tmp_path / "raw2").exists()  # all or nothing
