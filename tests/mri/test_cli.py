"""`latente mri denoise | evaluate` on real crops, with an untrained model folder (fast) and, for
the denoising quality, a model trained by the real (small) pipeline (slow)."""
from __future__ import annotations

import json
import math

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.openers import ImageOpener

from conftest import assert_user_error
from latente.domains.mri.evaluation import noise_seed
from latente.shared.models import AutoencoderConfig, build_model, save_model
from latente.shared.noise import corrupt

from tests.mri.conftest import TEST


@pytest.fixture(scope="module")
def noisy_file(mri_crops, tmp_path_factory):
    """The cropped MNI volume with 5 % Rician noise, stored as uint8 like the original."""
    image = nib.load(mri_crops / "mri" / TEST)
    clean = np.asanyarray(image.dataobj).astype(np.float32) / 255
    noisy = corrupt(torch.from_numpy(clean), "rician", 0.05, torch.Generator().manual_seed(0)).numpy()
    path = tmp_path_factory.mktemp("noisy") / "noisy.nii.gz"
    nib.save(nib.Nifti1Image(np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8), image.affine, image.header), path)
    return path


def header_bytes(path):
    with ImageOpener(path) as fh:
        return nib.Nifti1Header.from_fileobj(fh).binaryblock


@pytest.mark.slow
def test_denoise_keeps_header_affine_dtype_and_range_and_reduces_error(latente, small_model, noisy_file, mri_crops, tmp_path):
    out = tmp_path / "den.nii.gz"
    result = latente("mri", "denoise", noisy_file, out, "--model", small_model)  # the real command, as a user runs it
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "denoising slices" in result.stderr
    assert header_bytes(out) == header_bytes(noisy_file)
    noisy, den = nib.load(noisy_file), nib.load(out)
    assert np.array_equal(den.affine, noisy.affine)
    assert den.get_data_dtype() == noisy.get_data_dtype() and den.shape == noisy.shape
    n, d = np.asanyarray(noisy.dataobj).astype(float), np.asanyarray(den.dataobj).astype(float)
    assert n.min() <= d.min() and d.max() <= n.max()
    clean = np.asanyarray(nib.load(mri_crops / "mri" / TEST).dataobj).astype(float)
    # two tiny training epochs already remove most of the Rician bias of the dark background
    assert np.mean((d - clean) ** 2) < 0.8 * np.mean((n - clean) ** 2)


def test_denoise_reorients_and_says_so(mri_cli, untrained_model, noisy_file, tmp_path):
    image = nib.load(noisy_file)
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[:2, 3] = np.array(image.shape[:2]) - 1
    lps_file = tmp_path / "lps.nii.gz"
    lps = nib.Nifti1Image(np.asanyarray(image.dataobj)[::-1, ::-1], image.affine @ flip, image.header)
    nib.save(lps, lps_file)
    assert nib.aff2axcodes(lps.affine) == ("L", "P", "S")
    ras_out, lps_out = tmp_path / "ras_out.nii.gz", tmp_path / "lps_out.nii.gz"
    assert mri_cli("denoise", noisy_file, ras_out, "--model", untrained_model).returncode == 0
    result = mri_cli("denoise", lps_file, lps_out, "--model", untrained_model)
    assert result.returncode == 0, result.stderr
    assert "LPS" in result.stderr and "reoriented to RAS" in result.stderr
    assert header_bytes(lps_out) == header_bytes(lps_file)
    same_voxels = np.asanyarray(nib.load(lps_out).dataobj)[::-1, ::-1]
    assert np.array_equal(same_voxels, np.asanyarray(nib.load(ras_out).dataobj))


def test_denoise_adapt_fine_tunes_on_the_file_itself_and_says_so(mri_cli, untrained_model, noisy_file, tmp_path):
    """`--adapt` runs the fine-tune (progress bar, one note with σ and the loss) before denoising;
    the output changes from the plain run's, and the saved model folder does not."""
    plain, adapted = tmp_path / "plain.nii.gz", tmp_path / "adapted.nii.gz"
    weights = (untrained_model / "model.safetensors").read_bytes()
    assert mri_cli("denoise", noisy_file, plain, "--model", untrained_model).returncode == 0
    result = mri_cli("denoise", noisy_file, adapted, "--model", untrained_model, "--adapt", "--adapt-steps", "3")
    assert result.returncode == 0, result.stderr
    assert "adapting to the volume" in result.stderr and f"note: adapted to {noisy_file}" in result.stderr
    assert not np.array_equal(np.asanyarray(nib.load(plain).dataobj), np.asanyarray(nib.load(adapted).dataobj))
    assert (untrained_model / "model.safetensors").read_bytes() == weights
    assert_user_error(mri_cli("denoise", noisy_file, tmp_path / "x.nii.gz", "--model", untrained_model, "--adapt", "--adapt-steps", "0"),
                      "--adapt-steps")
    one_slice = _write(tmp_path / "one_slice.nii.gz", np.random.default_rng(0).random((12, 12, 1)).astype(np.float32))
    assert_user_error(mri_cli("denoise", one_slice, tmp_path / "y.nii.gz", "--model", untrained_model, "--adapt"),
                      str(one_slice), "--adapt", "noise")


def test_denoise_4d_volume_frame_by_frame(mri_cli, untrained_model, noisy_file, tmp_path):
    image = nib.load(noisy_file)
    frame = np.asanyarray(image.dataobj)[:, :, :6]
    four = tmp_path / "four.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([frame, frame[::-1]], axis=-1), image.affine), four)
    one = tmp_path / "one.nii.gz"
    nib.save(nib.Nifti1Image(frame, image.affine), one)
    out4, out1 = tmp_path / "out4.nii.gz", tmp_path / "out1.nii.gz"
    result = mri_cli("denoise", four, out4, "--model", untrained_model)
    assert result.returncode == 0, result.stderr
    assert "4-D" in result.stderr
    assert mri_cli("denoise", one, out1, "--model", untrained_model).returncode == 0
    den4 = np.asanyarray(nib.load(out4).dataobj)
    assert den4.shape == (*frame.shape, 2)
    # both frames share the file's min/max here, so frame 0 matches the 3-D run exactly
    assert np.array_equal(den4[..., 0], np.asanyarray(nib.load(out1).dataobj))


def test_evaluate_json_shape_and_seeded_noise(latente, untrained_model, mri_crops):
    volume = mri_crops / "mri" / TEST
    result = latente("mri", "evaluate", "--volumes", volume, volume, "--noise", "0.03,0.09", "--model", untrained_model,
                     "--slices", "2", "--baselines", "noisy,gaussian,nlm", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["domain"] == "mri" and report["data"]["n"] == 2
    rows = report["results"]
    per_level = {(r["method"], r["condition"]["noise"]): r["metrics"] for r in rows if set(r["condition"]) == {"noise"}}
    assert set(per_level) == {(m, lv) for m in ("model", "noisy", "gaussian", "nlm") for lv in (0.03, 0.09)}
    for metrics in per_level.values():
        assert set(metrics) == {"psnr", "ssim", "psnr_mask", "ssim_mask"}
    # in the brain, Rician noise at σ has an MSE close to σ², so the noisy PSNR is close to −20·log10 σ
    assert per_level[("noisy", 0.03)]["psnr_mask"] == pytest.approx(-20 * math.log10(0.03), abs=0.3)
    assert per_level[("noisy", 0.09)]["psnr_mask"] == pytest.approx(-20 * math.log10(0.09), abs=0.5)
    assert per_level[("nlm", 0.09)]["psnr_mask"] > per_level[("noisy", 0.09)]["psnr_mask"] + 3
    overall = {r["method"]: r["metrics"] for r in rows if r["condition"] == {}}
    assert set(overall) == {"model", "noisy", "gaussian", "nlm"} and overall["nlm"]["seconds"] > 0
    # the same volume twice gets two different seeded noise draws; each draw is reproducible
    item_rows = [r for r in rows if r["method"] == "noisy" and r["condition"].get("noise") == 0.09 and "volume" in r["condition"]]
    assert len(item_rows) == 2 and item_rows[0]["metrics"] != item_rows[1]["metrics"]
    assert noise_seed(0, 0, 1) == noise_seed(0, 0, 1) != noise_seed(0, 1, 1)


@pytest.fixture(scope="module")
def ecg_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("other") / "ecg_model"
    model = build_model(AutoencoderConfig(name="conv_ae", spatial_dims=1, channels=(4,), strides=(2,), latent_channels=2))
    return save_model(model, folder, domain="ecg", preprocessing={}, data={})


def _write(path, data, affine=np.eye(4)):
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


def test_bad_inputs_one_line_exit_2_no_output(mri_cli, untrained_model, ecg_model, noisy_file, tmp_path):
    out = tmp_path / "out.nii.gz"
    text = tmp_path / "notes.nii.gz"
    text.write_text("not an image")
    zeros = _write(tmp_path / "zeros.nii.gz", np.zeros((8, 8, 8), np.float32))
    nan = np.ones((8, 8, 8), np.float32)
    nan[1, 2, 3] = np.nan
    nans = _write(tmp_path / "nan.nii.gz", nan)
    inf = np.ones((8, 8, 8), np.float32)
    inf[0, 0, 0] = np.inf
    infs = _write(tmp_path / "inf.nii.gz", inf)
    flat = _write(tmp_path / "flat.nii.gz", np.ones((8, 8), np.float32))
    five = _write(tmp_path / "five.nii.gz", np.ones((4, 4, 4, 2, 2), np.float32))
    cases = [
        ((text, out, "--model", untrained_model), (str(text), "not a readable NIfTI")),
        ((tmp_path / "missing.nii.gz", out, "--model", untrained_model), ("missing.nii.gz", "not found")),
        ((zeros, out, "--model", untrained_model), (str(zeros), "every voxel is zero")),
        ((nans, out, "--model", untrained_model), (str(nans), "1 voxels are NaN or Inf")),
        ((infs, out, "--model", untrained_model), (str(infs), "NaN or Inf")),
        ((flat, out, "--model", untrained_model), (str(flat), "2 dimensions")),
        ((five, out, "--model", untrained_model), (str(five), "5 dimensions")),
        ((noisy_file, out, "--model", ecg_model), (str(ecg_model), "'ecg' model, not a 'mri' model")),
        ((noisy_file, tmp_path / "out.img", "--model", untrained_model), ("out.img", ".nii or .nii.gz")),
    ]
    for args, fragments in cases:
        assert_user_error(mri_cli("denoise", *args), *fragments)
        assert not out.exists()
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    out.write_bytes(b"keep")
    assert_user_error(mri_cli("denoise", noisy_file, out, "--model", untrained_model), str(out), "already exists", "--force")
    assert out.read_bytes() == b"keep"


def test_evaluate_bad_options(mri_cli, untrained_model, mri_crops, tmp_path):
    volume = mri_crops / "mri" / TEST
    assert_user_error(mri_cli("evaluate", "--volumes", volume, "--noise", "0.05,abc", "--model", untrained_model, "--json"), "--noise")
    assert_user_error(mri_cli("evaluate", "--volumes", volume, "--noise", "5", "--model", untrained_model), "--noise", "between 0 and 1")
    assert_user_error(mri_cli("evaluate", "--volumes", volume, "--baselines", "bm4d", "--model", untrained_model), "--baselines", "bm4d")
    assert_user_error(mri_cli("evaluate", "--volumes", volume, "--baseline-sigma", "true", "--model", untrained_model),
                      "--baseline-sigma", "total or added")
    text = tmp_path / "scan.nii"
    text.write_text("text")
    assert_user_error(mri_cli("evaluate", "--volumes", volume, text, "--model", untrained_model), str(text), "NIfTI")
    assert_user_error(mri_cli("evaluate", "--volumes", volume, "--model", tmp_path / "none"), "none", "model folder not found")
