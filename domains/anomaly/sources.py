"""The canonical upstream of SKAB: GitHub raw files of waico/SKAB pinned to commit b2c0d46.

Files are named as in the mirror (`skab/valve1/0.csv`); upstream keeps them under `data/`.
"""
from __future__ import annotations

from pathlib import Path

from latente.shared.errors import UserError
from latente.shared.sources import download_file

SKAB_RAW = "https://raw.githubusercontent.com/waico/SKAB/b2c0d46/data"
PREFIX = "skab/"


def upstream_url(name: str, base: str = SKAB_RAW) -> str:
    if not name.startswith(PREFIX):
        raise UserError(f"params.yaml: anomaly.fetch.source.files: {name}", "has no canonical upstream",
                        f"canonical files start with '{PREFIX}'; use kind 'url' or 'local' for others")
    return f"{base.rstrip('/')}/{name[len(PREFIX):]}"


def canonical_downloader(base: str = SKAB_RAW):
    """A `fetch_files` canonical callable downloading from `base` (SKAB's GitHub by default)."""

    def download(files: list[str], dest: Path) -> None:
        for name in files:
            download_file(upstream_url(name, base), dest / name)

    return download
