"""The canonical upstream of the default data: GitHub raw files pinned to a commit."""
from __future__ import annotations

from pathlib import Path

from latente.shared.errors import UserError
from latente.shared.sources import download_file

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
            raise UserError(f"params.yaml: protein.fetch.source.files: {name}", "has no canonical upstream",
                            f"canonical files are {', '.join(CANONICAL_URLS)}; use kind 'url' or 'local' for others")
        download_file(CANONICAL_URLS[name], dest / name)
