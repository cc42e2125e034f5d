"""Fetching FSDD: from the pinned upstream release, an URL, a local folder or LATENTE_MIRROR.

Upstream publishes no checksums, so the whole download is checked against one manifest
digest (sha256 over the sorted `<sha256>  <path>` lines) measured on the reference copy.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from latente.domains.speech import DOMAIN
from latente.domains.speech.params import FetchParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, write_json
from latente.shared.params import PARAMS_FILE
from latente.shared.sources import download_file, fetch_files, file_sha256
from latente.shared.stage import DomainPaths

# Release tag v1.0.10; its recordings are identical to commit 26eb9aa (2024-05-02).
FSDD_BASE = "https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/v1.0.10"
SOURCE_NOTE = "SOURCE.json"


def fsdd_files(speakers: tuple[str, ...], takes: int) -> list[str]:
    return [f"recordings/{digit}_{speaker}_{take}.wav" for speaker in speakers for digit in range(10) for take in range(takes)]


def download_fsdd(files: list[str], dest: Path, base: str = FSDD_BASE) -> None:
    for rel in files:
        download_file(f"{base}/{rel}", dest / rel)


def manifest_sha256(folder: Path, files: list[str]) -> str:
    lines = "".join(f"{file_sha256(folder / rel)}  {rel}\n" for rel in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def fetch_fsdd(params: FetchParams, dest: Path, base: str = FSDD_BASE) -> str:
    """Bring the recordings into `dest`/recordings, verified, with a note of where they came from; all or nothing."""
    files = list(params.source.files) or fsdd_files(params.speakers, params.takes)
    source = params.source.model_copy(update={"files": tuple(files)})
    with atomic_dir(dest) as tmp:
        origin = fetch_files(DOMAIN, source, tmp, canonical=functools.partial(download_fsdd, base=base))
        digest = manifest_sha256(tmp, files)
        if params.manifest_sha256 and digest != params.manifest_sha256:
            raise UserError(
                f"{PARAMS_FILE}: {DOMAIN}.fetch.manifest_sha256", f"the fetched files do not match (their manifest is {digest})",
                "the source is not FSDD v1.0.10; set manifest_sha256: null to accept other data",
            )
        write_json(tmp / SOURCE_NOTE, {"origin": origin, "files": len(files), "manifest_sha256": digest})
    return origin


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    """The fetch stage: the recordings into the domain's raw folder."""
    fetch_fsdd(params, paths.raw)
