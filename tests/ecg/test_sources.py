"""The canonical PhysioNet path (wfdb's downloader + published SHA256SUMS), against a local server."""
import hashlib
import shutil

import pytest

from latente.domains.ecg.sources import download_physionet
from latente.shared.errors import UserError


@pytest.fixture
def physionet(tmp_path, records, serve_folder):
    """A folder laid out like physionet.org/files/mitdb/1.0.0, served on 127.0.0.1."""
    db = tmp_path / "site" / "mitdb" / "1.0.0"
    db.mkdir(parents=True)
    lines = []
    for name in ("100.hea", "100.dat", "100.atr"):
        shutil.copy(records / name, db / name)
        lines.append(f"{hashlib.sha256((db / name).read_bytes()).hexdigest()} {name}")
    (db / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    return db, f"{serve_folder(tmp_path / 'site')}/mitdb/1.0.0"


def test_downloads_and_verifies_against_published_checksums(physionet, records, tmp_path):
    _, url = physionet
    files = ["records/100.hea", "records/100.dat", "records/100.atr"]
    download_physionet(files, tmp_path / "raw", url)
    for rel in files:
        assert (tmp_path / "raw" / rel).read_bytes() == (records / rel.split("/")[1]).read_bytes()


def test_checksum_mismatch_is_refused_and_leaves_nothing(physionet, tmp_path):
    db, url = physionet
    data = bytearray((db / "100.dat").read_bytes())
    data[1000] ^= 0xFF
    (db / "100.dat").write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256 does not match the published SHA256SUMS.txt"):
        download_physionet(["records/100.dat"], tmp_path / "raw", url)
    assert not (tmp_path / "raw" / "records" / "100.dat").exists()


def test_unreachable_source_names_the_url_and_the_mirror(tmp_path):
    with pytest.raises(UserError) as err:
        download_physionet(["records/100.hea"], tmp_path / "raw", "http://127.0.0.1:9/mitdb/1.0.0")
    assert "SHA256SUMS.txt" in err.value.where and "LATENTE_MIRROR" in err.value.line()
