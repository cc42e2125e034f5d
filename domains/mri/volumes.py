"""Reading, checking, reorienting and writing NIfTI volumes.

Data is read with MONAI's `LoadImage` (nibabel reader). Writing goes through nibabel with the
input's own header: the voxel values are converted back to the input's on-disk dtype and
scaling (scl_slope / scl_inter), so the written header is byte-identical to the input's.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.openers import ImageOpener
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform

from latente.shared.errors import UserError
from latente.shared.io import write_bytes

NIFTI_SUFFIXES = (".nii", ".nii.gz")
TRAINING_ORIENTATION = ("R", "A", "S")


@dataclass
class Volume:
    """A checked NIfTI volume: float32 voxels in the file's units, and the nibabel image."""

    path: Path
    data: np.ndarray
    image: nib.Nifti1Image
    disk_header: nib.Nifti1Header  # as stored, scl_slope/scl_inter included (nibabel clears them on load)

    @property
    def axcodes(self) -> tuple[str, ...]:
        return tuple(nib.aff2axcodes(self.image.affine))


def is_nifti_name(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def read_volume(path: str | Path, allow_4d: bool = False) -> Volume:
    """Load and check a 3-D (or, when allowed, 4-D) NIfTI volume; every problem is a UserError."""
    from monai.transforms import LoadImage

    path = Path(path)
    if not path.is_file():
        raise UserError(path, "file not found")
    try:
        image = nib.load(path)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError) as err:
        raise UserError(path, f"not a readable NIfTI file ({str(err).splitlines()[0]})", "give a .nii or .nii.gz volume") from None
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise UserError(path, f"is a {type(image).__name__}, not a NIfTI file", "convert it to .nii or .nii.gz")
    dims = len(image.shape)
    if dims == 4 and image.shape[3] == 1:
        dims = 3
    if dims not in ((3, 4) if allow_4d else (3,)):
        wanted = "a 3-D or 4-D volume" if allow_4d else "a 3-D volume"
        raise UserError(path, f"has {len(image.shape)} dimensions {tuple(image.shape)}; {wanted} is needed")
    try:
        data = np.asarray(LoadImage(reader="NibabelReader", image_only=True, dtype=np.float32)(str(path)))
    except Exception as err:  # nibabel raises many kinds of errors on truncated or corrupt files
        raise UserError(path, f"voxel data could not be read ({str(err).splitlines()[0]})") from None
    data = data.reshape(image.shape[:3] + ((image.shape[3],) if dims == 4 else ()))
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise UserError(path, f"{bad} voxels are NaN or Inf", "fix or mask them before denoising")
    if not np.any(data):
        raise UserError(path, "every voxel is zero; there is nothing to denoise")
    if float(data.min()) == float(data.max()):
        raise UserError(path, f"every voxel has the same value ({float(data.min()):g}); there is nothing to denoise")
    with ImageOpener(path) as fh:
        disk_header = type(image.header).from_fileobj(fh)
    return Volume(path, data, image, disk_header)


def unit_scale(data: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Min–max rescaling to [0, 1] (how clean volumes are scaled for training); returns (scaled, lo, hi)."""
    lo, hi = float(data.min()), float(data.max())
    return ((data - lo) / (hi - lo)).astype(np.float32), lo, hi


def to_orientation(data: np.ndarray, affine: np.ndarray, codes: tuple[str, ...]) -> np.ndarray:
    """The first three axes of `data` permuted/flipped so that they run along `codes`."""
    transform = ornt_transform(io_orientation(affine), axcodes2ornt(codes))
    return np.ascontiguousarray(apply_orientation(data, transform))


def from_orientation(data: np.ndarray, affine: np.ndarray, codes: tuple[str, ...]) -> np.ndarray:
    """Inverse of `to_orientation`: back to the voxel layout that `affine` describes."""
    transform = ornt_transform(axcodes2ornt(codes), io_orientation(affine))
    return np.ascontiguousarray(apply_orientation(data, transform))


def on_disk_values(volume: Volume, data: np.ndarray) -> np.ndarray:
    """`data` (file units) as the raw values the input stores: its dtype, scaling and value range."""
    proxy = volume.image.dataobj
    slope = float(getattr(proxy, "slope", 1.0))
    inter = float(getattr(proxy, "inter", 0.0))
    dtype = volume.image.get_data_dtype()
    raw_in = np.asanyarray(proxy.get_unscaled()) if hasattr(proxy, "get_unscaled") else np.asanyarray(proxy)
    raw = (np.clip(data, volume.data.min(), volume.data.max()) - inter) / slope
    if np.issubdtype(dtype, np.integer):
        raw = np.rint(raw)
    raw = np.clip(raw, raw_in.min(), raw_in.max())
    return raw.reshape(raw_in.shape).astype(dtype)


def write_like(volume: Volume, data: np.ndarray, out: str | Path, force: bool = False) -> Path:
    """Write `data` (file units, same shape) with the input's header, affine, dtype and scaling."""
    out = Path(out)
    if not is_nifti_name(out):
        raise UserError(out, "output must end in .nii or .nii.gz")
    image = type(volume.image)(on_disk_values(volume, data), volume.image.affine, volume.image.header)
    for field in ("scl_slope", "scl_inter"):
        image.header[field] = volume.disk_header[field]
    payload = image.to_bytes()
    if out.name.endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    write_bytes(out, payload, force=force)
    return out
