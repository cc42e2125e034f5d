"""The canonical ECG source: PhysioNet's MIT-BIH database, fetched with wfdb's downloader.

PhysioNet publishes SHA256SUMS.txt beside every database version; each file is checked
against it. Mirror paths (`records/100.hea`) map to PhysioNet's flat layout (`100.hea`).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from wfdb.io import _url
from wfdb.io.download import dl_full_file

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.params import FetchParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, atomic_path, write_json
from latente.shared.sources import MIRROR_HINT, fetch_files, file_sha256
from latente.shared.stage import DomainPaths

PHYSIONET_MITDB = "https://physionet.org/files/mitdb/1.0.0"


def published_checksums(base_url: str) -> dict[str, str]:
    """{file name: sha256} from the database's SHA256SUMS.txt."""
    try:
        with _url.openurl(f"{base_url}/SHA256SUMS.txt", "rb") as fh:
            text = fh.read().decode("utf-8")
    except Exception as err:
        raise UserError(f"{base_url}/SHA256SUMS.txt", f"cannot be read ({err})", MIRROR_HINT) from None
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0]
    return sums


def download_physionet(files: list[str], dest: Path, base_url: str = PHYSIONET_MITDB) -> None:
    """Download each file with wfdb, atomically, and verify it against the published sha256."""
    base_url = base_url.rstrip("/")
    sums = published_checksums(base_url)
    for rel in files:
        name = Path(rel).name
        url = f"{base_url}/{name}"
        with atomic_path(dest / rel) as tmp:
            try:
                dl_full_file(url, str(tmp))
            except Exception as err:
                raise UserError(url, f"download failed ({err})", MIRROR_HINT) from None
            if name not in sums:
                raise UserError(url, "not listed in the database's SHA256SUMS.txt")
            if file_sha256(tmp) != sums[name]:
                raise UserError(url, "sha256 does not match the published SHA256SUMS.txt")


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    """The source's files into data/raw/ecg, with SOURCE.json saying where they came from."""
    canonical = partial(download_physionet, base_url=params.source.location) if params.source.location else download_physionet
    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=canonical if params.source.kind == "canonical" else None)
        write_json(tmp / "SOURCE.json", {"origin": origin, "files": list(params.source.files)})
