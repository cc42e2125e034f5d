"""Every bad `latente mri` command line of issue 16 (and its neighbours): one `error:` line, exit 2,
no traceback, no partial or clobbered file (tests/bad_input.py). The output of `denoise` is checked
before the model is loaded and the volume denoised: with a real model and a real volume, a bad
output fails at once and prints no progress."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from bad_input import Env, case, env_stack, replay  # noqa: F401  (env_stack is a fixture)

DN = "mri denoise {volume} {tmp}/o.nii.gz --model {model}"
EV = "mri evaluate --volumes {volume} --model {model} --slices 2 --baselines noisy"

CASES = [
    # OUTPUT: checked before any work
    case("out_is_a_folder", "mri denoise {volume} {niidir} --model {model}", "{niidir}", "is a folder"),
    case("out_parent_is_a_file", "mri denoise {volume} {file}/o.nii.gz --model {model}", "{file}", "is a file, not a folder"),
    case("out_grandparent_is_a_file", "mri denoise {volume} {file}/a/b/o.nii.gz --model {model}", "{file}", "is a file, not a folder"),
    case("out_in_read_only_folder", "mri denoise {volume} {ro}/o.nii.gz --model {model}", "{ro}", "not writable"),
    case("out_exists", "mri denoise {volume} {kept} --model {model}", "{kept}", "already exists", "--force"),
    case("out_not_nifti", "mri denoise {volume} {tmp}/o.img --model {model}", "o.img", ".nii or .nii.gz"),
    case("no_force_is_gone", DN + " --no-force", "--no-force", "no such option", "--force"),
    case("out_missing", "mri denoise {volume}", "OUTPUT", "required"),
    # INPUT
    case("input_is_a_folder", "mri denoise {dir} {tmp}/o.nii.gz --model {model}", "{dir}", "is a folder, not a NIfTI file"),
    case("input_missing", "mri denoise {missing} {tmp}/o.nii.gz --model {model}", "{missing}", "NIfTI file not found"),
    case("input_not_nifti", "mri denoise {notes} {tmp}/o.nii.gz --model {model}", "{notes}", "not a readable NIfTI"),
    # --model
    case("model_is_a_file", DN.replace("{model}", "{file}"), "{file}", "is a file, not a model folder"),
    case("model_missing", DN.replace("{model}", "{missing}"), "{missing}", "model folder not found"),
    case("default_model_nowhere", "mri denoise {volume} {tmp}/o.nii.gz", "--model", "models/mri", "neither in the current folder",
         outside=True),
    case("evaluate_model_is_a_file", EV.replace("{model}", "{file}"), "{file}", "is a file, not a model folder"),
    # evaluate's numbers
    case("slices_negative", EV + " --slices -1", "--slices", "-1 is out of range", "from 0 to"),
    case("slices_text", EV + " --slices all", "--slices", "'all' is not a whole number"),
    case("mask_threshold_nan", EV + " --mask-threshold nan", "--mask-threshold", "nan is not a finite number"),
    case("mask_threshold_inf", EV + " --mask-threshold inf", "--mask-threshold", "inf is not a finite number"),
    case("mask_threshold_1", EV + " --mask-threshold 1", "--mask-threshold", "1 is out of range", "of at least 0 and below 1"),
    case("mask_threshold_negative", EV + " --mask-threshold -0.1", "--mask-threshold", "-0.1 is out of range"),
    case("mask_threshold_text", EV + " --mask-threshold half", "--mask-threshold", "'half' is not a number"),
    case("seed_negative", EV + " --seed -1", "--seed", "-1 is out of range", "from 0 to 4294967295"),
    case("seed_too_large", EV + " --seed 4294967296", "--seed", "out of range"),
    case("seed_text", EV + " --seed x", "--seed", "'x' is not a whole number"),
    case("noise_nan", EV + " --noise nan", "--noise", "between 0 and 1"),
    case("noise_5", EV + " --noise 5", "--noise", "between 0 and 1"),
    case("noise_text", EV + " --noise 0.05,abc", "--noise", "not a comma-separated list of numbers"),
    case("kind_unknown", EV + " --kind poisson", "--kind", "'poisson' is not rician or gaussian"),
    case("baseline_unknown", EV + " --baselines bm4d", "--baselines", "bm4d"),
    # evaluate's volumes
    case("volumes_folder", "mri evaluate --volumes {dir} --model {model}", "{dir}", "is a folder, not a NIfTI file"),
    case("volumes_second_missing", "mri evaluate --volumes {volume} {missing} --model {model}", "{missing}", "NIfTI file not found"),
    case("volumes_not_given", "mri evaluate --model {model}", "--volumes", "required"),
    case("unknown_option", EV + " --sigma 3", "--sigma", "no such option"),
]


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """A small real NIfTI volume (random noise in a box) that the model could denoise."""
    path = tmp_path_factory.mktemp("mri_in") / "in.nii.gz"
    data = np.random.default_rng(0).uniform(0, 1, (24, 24, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


@pytest.fixture
def env(tmp_path, env_stack, untrained_model, volume):  # noqa: F811
    (tmp_path / "dir.nii.gz").mkdir()
    (tmp_path / "kept.nii.gz").write_bytes(b"precious volume")
    (tmp_path / "notes.nii.gz").write_text("not an image")
    return Env(tmp_path, env_stack, model=untrained_model, volume=volume, niidir=tmp_path / "dir.nii.gz",
               kept=tmp_path / "kept.nii.gz", notes=tmp_path / "notes.nii.gz")


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(latente, bad, env, monkeypatch):
    result = replay(latente, bad, env, monkeypatch)
    assert "denoising" not in result.stderr  # nothing was computed before the error


@pytest.mark.parametrize("bad", [c for c in CASES if c.id in ("out_in_read_only_folder", "mask_threshold_nan")])
def test_bad_input_in_a_real_process(latente_subprocess, bad, env):
    replay(latente_subprocess, bad, env)
