"""The MRI data: NIfTI volumes (reading, checking, reorienting, writing, their own noise level) and
the training slices.

Volumes are read with MONAI's `LoadImage` (nibabel reader). Writing goes through nibabel with the
input's own header: the voxel values are converted back to the input's on-disk dtype and
scaling (scl_slope / scl_inter), so the written header is byte-identical to the input's.

The prepared training data holds the training volumes axial-first ([Z, X, Y], RAS) on a [0, 1]
scale, with their brain masks, and the axial slices split by blocks into train and val. A model
input is a stack of `2·context + 1` adjacent axial slices (2.5-D); the model denoises its centre.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from nibabel.openers import ImageOpener
from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
from safetensors.torch import load_file
from scipy.ndimage import gaussian_filter
from torch.utils.data import Dataset

from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_bytes, write_json
from latente.shared.models.store import save_tensors
from latente.shared.noise import corrupt
from latente.shared.stage import DomainPaths

from latente.domains.mri.params import PatchParams, PrepareParams

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


MAD_TO_SIGMA = 0.6745  # median |n| of n ~ N(0, σ²) is 0.6745 σ


def intrinsic_noise(volume: np.ndarray, mask: np.ndarray) -> float:
    """The σ of a volume's own white noise: the median absolute finest 3-D Haar detail inside the mask, / 0.6745.

    Donoho & Johnstone's robust wavelet estimator (what skimage's `estimate_sigma` does in 2-D),
    made 3-D and kept inside the mask: a real scan's "clean" reference still holds the scanner's
    noise, and on a skull-stripped scan the zero background says nothing about it. The
    orthonormal Haar detail ±x over each 2×2×2 block is N(0, σ²) for white noise and nearly zero
    on smooth anatomy; the median ignores the edges. Only blocks wholly inside the mask count.
    """
    x, y, z = (n // 2 * 2 for n in volume.shape)
    corners = [(i, j, k) for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    block = lambda a, i, j, k: a[i:x:2, j:y:2, k:z:2]  # noqa: E731
    detail = sum((-1) ** (i + j + k) * block(volume, i, j, k).astype(np.float64) for i, j, k in corners) / np.sqrt(8)
    inside = np.logical_and.reduce([block(mask, i, j, k) for i, j, k in corners])
    if not inside.any():
        raise ValueError("no 2×2×2 block lies wholly inside the mask")
    return float(np.median(np.abs(detail[inside])) / MAD_TO_SIGMA)


def head_mask(volume: np.ndarray) -> np.ndarray:
    """The voxels of a noisy volume that hold the head: Otsu's threshold on the volume smoothed
    by 1.5 voxels (the smoothing keeps a noisy background below it). No reference is needed, so
    it serves a user's own scan; the evaluation masks the reference instead."""
    from skimage.filters import threshold_otsu

    smooth = gaussian_filter(volume.astype(np.float32), 1.5)
    return smooth > threshold_otsu(smooth.ravel())


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


SPLIT_FILE = "split.json"
TENSOR_FILE = "train.safetensors"
VAL_BLOCK = 10  # slices per validation block: neighbouring slices are near copies of each other
FOREGROUND = 0.05  # clean intensity above which a voxel is head, as in the evaluation mask


def axial_first(volume: np.ndarray) -> np.ndarray:
    """[X, Y, Z] → [Z, X, Y] (contiguous)."""
    return np.ascontiguousarray(np.moveaxis(volume, -1, 0))


def split_slices(brain: np.ndarray, min_fraction: float, val_fraction: float) -> tuple[list[int], list[int]]:
    """Axial slices holding at least `min_fraction` brain, split into train and val blocks of slices."""
    fraction = brain.reshape(brain.shape[0], -1).mean(1)
    keep = [int(z) for z in np.flatnonzero(fraction >= min_fraction)]
    period = max(2, round(1 / val_fraction))
    val = [z for i, z in enumerate(keep) if (i // VAL_BLOCK) % period == period // 2]
    return [z for z in keep if z not in set(val)], val


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    """Rescale each training volume to [0, 1], keep its brain mask, pick and split its slices."""
    raw = paths.raw
    tensors: dict[str, torch.Tensor] = {}
    split = {"volumes": list(params.train_volumes), "test_volumes": list(params.test_volumes), "train": [], "val": [], "brain_scale": []}
    for name in params.test_volumes:
        read_volume(raw / name)  # checked now, so a bad test file fails before training
    for i, (name, mask_name) in enumerate(zip(params.train_volumes, params.train_masks)):
        volume, mask = read_volume(raw / name), read_volume(raw / mask_name)
        if mask.data.shape != volume.data.shape:
            raise UserError(raw / mask_name, f"mask shape {mask.data.shape} differs from {name} {volume.data.shape}")
        scaled, _, _ = unit_scale(volume.data)
        scaled = axial_first(to_orientation(scaled, volume.image.affine, TRAINING_ORIENTATION))
        brain = axial_first(to_orientation(mask.data > 0, mask.image.affine, TRAINING_ORIENTATION))
        train, val = split_slices(brain, params.min_brain_fraction, params.val_fraction)
        if not train or not val:
            raise UserError(raw / mask_name, "too few axial slices hold brain to train and validate", "lower prepare.min_brain_fraction")
        tensors[f"volume.{i}"] = torch.from_numpy(scaled)
        tensors[f"brain.{i}"] = torch.from_numpy(brain.astype(np.uint8))
        split["train"] += [[i, z] for z in train]
        split["val"] += [[i, z] for z in val]
        split["brain_scale"].append(float(np.percentile(scaled[brain], 99.9)))
    with atomic_dir(paths.prepared) as tmp:
        save_tensors(tensors, tmp / TENSOR_FILE)
        write_json(tmp / SPLIT_FILE, split)


@dataclass
class Prepared:
    volumes: list[np.ndarray]
    brains: list[np.ndarray]
    split: dict

    @classmethod
    def load(cls, folder: Path) -> "Prepared":
        split = read_json(folder / SPLIT_FILE)
        tensors = load_file(str(folder / TENSOR_FILE))
        n = len(split["volumes"])
        return cls([tensors[f"volume.{i}"].numpy() for i in range(n)], [tensors[f"brain.{i}"].numpy().astype(bool) for i in range(n)], split)

    def stack(self, index: int, z: int, context: int, brain_only: bool) -> np.ndarray:
        """Slices z-context … z+context (edges repeated); brain-only stacks are rescaled to a brain max of ≈ 1."""
        volume = self.volumes[index]
        zs = np.clip(np.arange(z - context, z + context + 1), 0, volume.shape[0] - 1)
        stack = volume[zs]
        if brain_only:
            stack = stack * self.brains[index][zs] / self.split["brain_scale"][index]
        return stack


class PatchDataset(Dataset):
    """Random clean 2.5-D patches; item i is a fixed function of (seed, i). Noise is added by the model."""

    def __init__(self, prepared: Prepared, params: PatchParams, context: int, seed: int):
        self.prepared, self.params, self.context, self.seed = prepared, params, context, seed
        self.slices = prepared.split["train"]

    def __len__(self) -> int:
        return self.params.per_epoch

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, i])
        index, z = self.slices[rng.integers(len(self.slices))]
        stack = self.prepared.stack(index, z, self.context, brain_only=bool(rng.random() < self.params.brain_only))
        if rng.random() < self.params.blur_share:
            width = rng.uniform(*self.params.blur)
            stack = gaussian_filter(stack, (0.0, width, width), mode="nearest")
        size = self.params.size
        centred = rng.random() < self.params.foreground
        for _ in range(20):  # rejection sampling of a patch centred on the head
            x0 = rng.integers(stack.shape[1] - size + 1)
            y0 = rng.integers(stack.shape[2] - size + 1)
            if not centred or stack[self.context, x0 + size // 2, y0 + size // 2] > FOREGROUND:
                break
        patch = stack[:, x0 : x0 + size, y0 : y0 + size]
        patch = np.rot90(patch, k=int(rng.integers(4)), axes=(1, 2))
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        patch = patch * rng.uniform(*self.params.gain)
        return torch.from_numpy(np.ascontiguousarray(patch, dtype=np.float32))


class ValidationDataset(Dataset):
    """Whole validation slices, head and brain-only, with fixed seeded noise: (noisy, clean) pairs."""

    def __init__(self, prepared: Prepared, params: PatchParams, context: int, kind: str, seed: int):
        self.pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        generator = torch.Generator().manual_seed(seed)
        n = 0
        for index, z in prepared.split["val"]:
            for brain_only in (False, True):
                clean = torch.from_numpy(np.ascontiguousarray(prepared.stack(index, z, context, brain_only), dtype=np.float32))
                level = params.val_levels[n % len(params.val_levels)]
                self.pairs.append((corrupt(clean, kind, level, generator), clean[context : context + 1]))
                n += 1

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pairs[i]
