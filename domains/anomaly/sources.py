"""Where SKAB comes from: GitHub raw files of waico/SKAB pinned to one commit; the fetch stage.

Files are named as in the mirror (`skab/valve1/0.csv`); upstream keeps them under `data/`.
"""
from __future__ import annotations

from pathlib import Path

from latente.domains.anomaly import DOMAIN
from latente.domains.anomaly.params import FetchParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir
from latente.shared.sources import download_file, fetch_files
from latente.shared.stage import DomainPaths

SKAB_COMMIT = "b2c0d46"  # SKAB v0.9
SKAB_RELEASE = f"SKAB v0.9 (waico/SKAB@{SKAB_COMMIT})"
SKAB_RAW = f"https://raw.githubusercontent.com/waico/SKAB/{SKAB_COMMIT}/data"
PREFIX = "skab/"


def upstream_url(name: str, base: str = SKAB_RAW) -> str:
    if not name.startswith(PREFIX):
        raise UserError(f"params.yaml: {DOMAIN}.fetch.source.files: {name}", "has no canonical upstream",
                        f"canonical files start with '{PREFIX}'; use kind 'url' or 'local' for others")
    return f"{base.rstrip('/')}/{name[len(PREFIX):]}"


def canonical_downloader(base: str = SKAB_RAW):
    """A `fetch_files` canonical callable downloading from `base` (SKAB's GitHub by default)."""

    def download(files: list[str], dest: Path) -> None:
        for name in files:
            download_file(upstream_url(name, base), dest / name)

    return download


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    """The fetch stage: the listed SKAB files into data/raw/anomaly, checked against their sha256."""
    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=canonical_downloader())
    print(f"fetched {len(params.source.files)} files from {origin}")
