"""Crops of the real mirror volumes, and one small real pipeline run (fetch → evaluate) on them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

TRAIN = "colin27_ch2_t1.nii.gz"
MASK = "colin27_ch2bet_t1_brain.nii.gz"
TEST = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def crop_volume(src: Path, dest: Path, box: tuple[slice, slice, slice]) -> None:
    """A real sub-volume with the header kept and the affine moved to the crop's corner."""
    image = nib.load(src)
    data = np.asanyarray(image.dataobj)[box]
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ np.array([s.start for s in box]) + image.affine[:3, 3]
    nib.save(nib.Nifti1Image(data, affine, image.header), dest)


@pytest.fixture(scope="session")
def mri_crops(mirror, tmp_path_factory) -> Path:
    """A mirror folder (`mri/...`) holding crops of the three real volumes, same file names."""
    root = tmp_path_factory.mktemp("mri_mirror")
    folder = root / "mri"
    folder.mkdir()
    colin = (slice(0, 90), slice(50, 170), slice(70, 106))  # left half: head, skull and background
    crop_volume(mirror / "mri" / TRAIN, folder / TRAIN, colin)
    crop_volume(mirror / "mri" / MASK, folder / MASK, colin)
    crop_volume(mirror / "mri" / TEST, folder / TEST, (slice(0, 96), slice(60, 180), slice(80, 100)))
    return root


SMALL_PARAMS = {
    "fetch": {"source": {"kind": "canonical", "files": [TRAIN, MASK, TEST]}},
    "prepare": {"train_volumes": [TRAIN], "train_masks": [MASK], "test_volumes": [TEST], "min_brain_fraction": 0.05, "val_fraction": 0.2},
    "train": {
        "model": {"name": "conv_dae", "spatial_dims": 2, "in_channels": 3, "out_channels": 1, "channels": [8, 8], "strides": [2, 1],
                  "latent_channels": 8, "residual": True, "corruption": {"kind": "rician", "level": [0.01, 0.1]}},
        "patches": {"size": 32, "per_epoch": 480, "gain": [0.5, 1.0], "blur_share": 0.5},
        "trainer": {"epochs": 3, "batch_size": 16, "lr": 0.003, "patience": None, "seed": 0, "device": "cpu", "threads": 1},
    },
    "evaluate": {"noise": [0.03, 0.09], "kind": "rician", "seed": 0, "slices": 4, "mask_threshold": 0.05,
                 "methods": ["noisy", "gaussian", "nlm", "bm3d"], "figure_noise": 0.03},
}


def run_stage(workdir: Path, stage: str, mirror_root: Path) -> subprocess.CompletedProcess:
    """`python -m latente.pipelines.mri STAGE` in `workdir`, as DVC runs it."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTE_MIRROR": str(mirror_root), "PYTHONPATH": str(repo)}
    return subprocess.run([sys.executable, "-m", "latente.pipelines.mri", stage], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)


def run_stages_in_process(workdir: Path, stages: tuple[str, ...], mirror_root: Path) -> None:
    """The stage functions of pipelines/mri.py with workdir's params.yaml (one process: no re-imports)."""
    from latente.pipelines import mri
    from latente.shared.params import stage_params
    from latente.shared.stage import DomainPaths

    schemas = {"fetch": mri.FetchParams, "prepare": mri.PrepareParams, "train": mri.TrainParams, "evaluate": mri.EvaluateParams}
    saved = os.environ.get("LATENTE_MIRROR")
    os.environ["LATENTE_MIRROR"] = str(mirror_root)
    try:
        for stage in stages:
            params = stage_params("mri", stage, schemas[stage], workdir / "params.yaml")
            getattr(mri, stage)(params, DomainPaths("mri", root=workdir))
    finally:
        if saved is None:
            os.environ.pop("LATENTE_MIRROR")
        else:
            os.environ["LATENTE_MIRROR"] = saved


@pytest.fixture(scope="session")
def small_pipeline(mri_crops, tmp_path_factory) -> Path:
    """The four real stages run on the crops with a tiny model; returns the work folder."""
    work = tmp_path_factory.mktemp("mri_pipeline")
    (work / "params.yaml").write_text(yaml.safe_dump({"mri": SMALL_PARAMS}))
    run_stages_in_process(work, ("fetch", "prepare", "train", "evaluate"), mri_crops)
    return work


@pytest.fixture(scope="session")
def small_model(small_pipeline) -> Path:
    return small_pipeline / "models" / "mri"


@pytest.fixture
def mri_cli(capsys):
    """`latente mri ARGS` in this process (the entry point's error wrapper included) → CompletedProcess.

    Starting a fresh interpreter costs seconds of imports; the `latente` fixture covers the real
    subprocess path in a few tests.
    """
    from latente.domains.mri.cli import app
    from latente.shared.errors import exit_on_user_error

    def run(*args) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        capsys.readouterr()
        try:
            exit_on_user_error(app)(args=argv, prog_name="latente mri")
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, captured.out, captured.err)

    return run
