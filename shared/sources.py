"""Materialise raw data from a mirror, a local folder, an https URL or a canonical source.

`LATENTE_MIRROR` names a local folder laid out as `<domain>/...` (like ../shared/datasets);
when set, it takes precedence over the source named in params.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Literal

from latente.shared.errors import UserError
from latente.shared.io import atomic_path
from latente.shared.params import StrictParams

MIRROR_ENV = "LATENTE_MIRROR"
MIRROR_HINT = f"set {MIRROR_ENV} to a folder laid out as <domain>/... (e.g. ../shared/datasets)"


class SourceParams(StrictParams):
    """Where the raw files come from; `files` are paths relative to the domain's folder."""

    kind: Literal["canonical", "url", "local"] = "canonical"
    location: str | None = None
    files: tuple[str, ...] = ()
    sha256: dict[str, str] = {}


def mirror_folder(domain: str) -> Path | None:
    root = os.environ.get(MIRROR_ENV)
    if not root:
        return None
    folder = Path(root).expanduser() / domain
    if not folder.is_dir():
        raise UserError(folder, f"{MIRROR_ENV} has no '{domain}' folder", MIRROR_HINT)
    return folder


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected_sha256: str | None = None) -> None:
    """At least size and presence; the checksum too where the source publishes one."""
    if not path.is_file() or path.stat().st_size == 0:
        raise UserError(path, "missing or empty after fetch")
    if expected_sha256 and file_sha256(path) != expected_sha256.lower():
        raise UserError(path, "sha256 does not match the published checksum")


def copy_file(src: Path, dest: Path) -> None:
    if not src.is_file():
        raise UserError(src, "not found in the data source", MIRROR_HINT)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def download_file(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Stream one https/http URL to `dest` atomically."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            with tmp.open("wb") as fh:
                shutil.copyfileobj(response, fh, 1 << 20)
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(url, f"download failed ({reason})", MIRROR_HINT) from None


def fetch_files(
    domain: str,
    source: SourceParams,
    dest: Path,
    canonical: Callable[[list[str], Path], None] | None = None,
) -> str:
    """Bring `source.files` into `dest`, verified; return a description of where they came from."""
    files = list(source.files)
    if not files:
        raise UserError(f"params.yaml: {domain}.fetch.source.files", "no files listed")
    mirror = mirror_folder(domain)
    if mirror is not None:
        origin = f"mirror {mirror}"
        for rel in files:
            copy_file(mirror / rel, dest / rel)
    elif source.kind == "local":
        folder = Path(source.location or "")
        if not source.location or not folder.is_dir():
            raise UserError(folder, "local source folder not found", MIRROR_HINT)
        origin = f"folder {folder}"
        for rel in files:
            copy_file(folder / rel, dest / rel)
    elif source.kind == "url":
        if not source.location:
            raise UserError(f"params.yaml: {domain}.fetch.source.location", "a url source needs a location")
        base = source.location.rstrip("/")
        origin = base
        for rel in files:
            download_file(f"{base}/{rel}", dest / rel)
    else:
        if canonical is None:
            raise UserError(f"params.yaml: {domain}.fetch.source.kind", "this domain has no canonical source", MIRROR_HINT)
        origin = "canonical"
        canonical(files, dest)
    for rel in files:
        verify_file(dest / rel, source.sha256.get(rel))
    return origin
