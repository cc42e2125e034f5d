"""Writing keeps the input's header bytes, affine, dtype, scaling and range; orientation round trips."""
from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest
from nibabel.openers import ImageOpener

from latente.domains.mri.data import from_orientation, read_volume, to_orientation, write_like
from latente.shared.errors import UserError


def disk_header(path):
    with ImageOpener(path) as fh:
        return nib.Nifti1Header.from_fileobj(fh)


def test_write_like_keeps_uint8_header_bytes_and_rounds(mri_crops, tmp_path):
    src = mri_crops / "mri" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    volume = read_volume(src)
    out = write_like(volume, volume.data + 0.4, tmp_path / "same.nii.gz")
    assert disk_header(out).binaryblock == disk_header(src).binaryblock
    written = nib.load(out)
    assert np.array_equal(written.affine, volume.image.affine)
    assert written.get_data_dtype() == np.uint8
    expected = np.clip(np.rint(volume.data + 0.4), volume.data.min(), volume.data.max())
    assert np.array_equal(np.asanyarray(written.dataobj), expected.astype(np.uint8))
    with gzip.open(out) as fh:  # really gzip-compressed NIfTI
        assert fh.read(4)[:4] == (348).to_bytes(4, "little")


def test_write_like_keeps_int16_scaling_and_plain_nii(tmp_path):
    raw = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6) * 7
    image = nib.Nifti1Image(raw, np.diag([1.5, 1.0, 2.0, 1.0]))
    image.header.set_slope_inter(0.5, 10.0)
    src = tmp_path / "scaled.nii"
    nib.save(image, src)
    volume = read_volume(src)
    assert volume.data.max() == pytest.approx(raw.max() * 0.5 + 10)
    out = write_like(volume, volume.data[::-1], tmp_path / "out.nii")
    assert disk_header(out).binaryblock == disk_header(src).binaryblock
    written = nib.load(out)
    assert written.dataobj.slope == 0.5 and written.dataobj.inter == 10.0
    assert np.allclose(np.asanyarray(written.dataobj), volume.data[::-1])


def test_write_like_refuses_existing_and_non_nifti_names(mri_crops, tmp_path):
    volume = read_volume(mri_crops / "mri" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    existing = tmp_path / "x.nii.gz"
    existing.write_bytes(b"keep")
    with pytest.raises(UserError, match="already exists"):
        write_like(volume, volume.data, existing)
    assert existing.read_bytes() == b"keep"
    with pytest.raises(UserError, match=".nii or .nii.gz"):
        write_like(volume, volume.data, tmp_path / "x.img")


def test_orientation_round_trip_and_axes():
    data = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    ras = to_orientation(data, lps, ("R", "A", "S"))
    assert np.array_equal(ras, data[::-1, ::-1, :])
    assert np.array_equal(from_orientation(ras, lps, ("R", "A", "S")), data)
    pir = np.array([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])  # voxel axes run P, I, R
    assert nib.aff2axcodes(pir) == ("P", "I", "R")
    moved = to_orientation(data, pir, ("R", "A", "S"))
    assert moved.shape == (4, 2, 3)
    assert np.array_equal(from_orientation(moved, pir, ("R", "A", "S")), data)
