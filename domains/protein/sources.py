"""Where the protein data comes from: by default GitHub raw files pinned to a commit; the fetch stage."""
from __future__ import annotations

from pathlib import Path

from latente.domains.protein import DOMAIN
from latente.domains.protein.params import FetchParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir
from latente.shared.sources import download_file, fetch_files
from latente.shared.stage import DomainPaths

ALIGNMENT = "BLAT_ECOLX_hmmerbit_plmc_n5_m30_f50_t0.2_r24-286_id100_b105.a2m"
DMS = "BLAT_ECOLX_Ranganathan2015.csv"

# DeepSequence's alignment as re-published (MIT) by charlesxu90/DeepSequence-torch, and the
# Stiffler 2015 DMS from debbiemarkslab/DeepSequence (MIT); see datasets/protein/SOURCE.md.
CANONICAL_URLS = {
    ALIGNMENT: "https://raw.githubusercontent.com/charlesxu90/DeepSequence-torch/"
               f"640db39769a93ef3d5bc11d6ad05aa7f5d761972/datasets/{ALIGNMENT}",
    DMS: "https://raw.githubusercontent.com/debbiemarkslab/DeepSequence/"
         f"fd5c272b273385c0b87fce9dec410a9d74463393/examples/mutations/{DMS}",
}


def download_canonical(files: list[str], dest: Path) -> None:
    for name in files:
        if name not in CANONICAL_URLS:
            raise UserError(f"params.yaml: {DOMAIN}.fetch.source.files: {name}", "has no canonical upstream",
                            f"canonical files are {', '.join(CANONICAL_URLS)}; use kind 'url' or 'local' for others")
        download_file(CANONICAL_URLS[name], dest / name)


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    """The fetch stage: the alignment and the DMS into data/raw/protein, verified, all or nothing."""
    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=download_canonical)
    print(f"fetched {len(params.source.files)} files from {origin}")
