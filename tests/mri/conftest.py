"""Crops of the real mirror volumes, an untrained model folder, and one small real pipeline run (fetch → evaluate) on them."""
from __future__ import annotations

import os
import subprocess
import sys
import typing
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from tiny import MRI

REPO = Path(__file__).resolve().parents[2]
(TRAIN,), (MASK,), (TEST, REAL) = MRI["prepare"]["train_volumes"], MRI["prepare"]["train_masks"], MRI["prepare"]["test_volumes"]


def crop_volume(src: Path, dest: Path, box: tuple[slice, slice, slice]) -> None:
    """A real sub-volume with the header kept and the affine moved to the crop's corner."""
    image = nib.load(src)
    data = np.asanyarray(image.dataobj)[box]
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ np.array([s.start for s in box]) + image.affine[:3, 3]
    nib.save(nib.Nifti1Image(data, affine, image.header), dest)


@pytest.fixture(scope="session")
def mri_crops(mirror, tmp_path_factory) -> Path:
    """A mirror folder (`mri/...`) holding crops of the four real volumes, same file names."""
    return write_crops(mirror, tmp_path_factory.mktemp("mri_mirror"))


def write_crops(mirror: Path, root: Path) -> Path:
    """`root`, a mirror folder now holding `mri/...`: crops of the four real volumes, same file names."""
    folder = root / "mri"
    folder.mkdir()
    colin = (slice(0, 90), slice(50, 170), slice(70, 106))  # left half: head, skull and background
    crop_volume(mirror / "mri" / TRAIN, folder / TRAIN, colin)
    crop_volume(mirror / "mri" / MASK, folder / MASK, colin)
    crop_volume(mirror / "mri" / TEST, folder / TEST, (slice(0, 96), slice(60, 180), slice(80, 100)))
    crop_volume(mirror / "mri" / REAL, folder / REAL, (slice(40, 136), slice(40, 150), slice(60, 76)))
    return root


# the tiny params, fetching the crops (no sha256: they are not the published files)
SMALL_PARAMS = {"fetch": {"source": {"kind": "canonical", "files": [TRAIN, MASK, TEST, REAL]}}, **MRI}


def write_params(workdir: Path, mri: dict) -> None:
    """workdir/params.yaml with `mri` as the domain's section and the repo's own `references.mri` (the report's targets)."""
    references = yaml.safe_load((REPO / "params.yaml").read_text())["references"]["mri"]
    (workdir / "params.yaml").write_text(yaml.safe_dump({"mri": mri, "references": {"mri": references}}, allow_unicode=True))


def run_stage(workdir: Path, stage: str, mirror_root: Path) -> subprocess.CompletedProcess:
    """`python -m latente.pipelines.mri STAGE` in `workdir`, as DVC runs it."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LATENTE_MIRROR": str(mirror_root), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "latente.pipelines.mri", stage], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)


def run_stages_in_process(workdir: Path, stages: tuple[str, ...], mirror_root: Path) -> None:
    """The stage functions of pipelines/mri.py with workdir's params.yaml (one process: no re-imports),
    each given its params validated against its own annotation, as `run_stage` does."""
    from latente.pipelines.mri import STAGES
    from latente.shared.params import stage_params
    from latente.shared.stage import DomainPaths

    by_name = {stage.name: stage for stage in STAGES}
    saved = os.environ.get("LATENTE_MIRROR")
    os.environ["LATENTE_MIRROR"] = str(mirror_root)
    try:
        for stage in stages:
            function = by_name[stage].function()
            params = stage_params("mri", stage, typing.get_type_hints(function)["params"], workdir / "params.yaml")
            function(params, DomainPaths("mri", root=workdir))
    finally:
        if saved is None:
            os.environ.pop("LATENTE_MIRROR")
        else:
            os.environ["LATENTE_MIRROR"] = saved


@pytest.fixture(scope="session")
def small_pipeline(mri_crops, tmp_path_factory) -> Path:
    """The four real stages run on the crops with a tiny model; returns the work folder."""
    work = tmp_path_factory.mktemp("mri_pipeline")
    write_params(work, SMALL_PARAMS)
    run_stages_in_process(work, ("fetch", "prepare", "train", "evaluate"), mri_crops)
    return work


@pytest.fixture(scope="session")
def small_model(small_pipeline) -> Path:
    return small_pipeline / "models" / "mri"


@pytest.fixture(scope="session")
def untrained_model(tmp_path_factory) -> Path:
    """A model folder as the train stage writes it, holding the tiny model's seeded initial weights
    (not the identity start): enough for every CLI check but denoising quality, without training."""
    import torch

    from latente.domains.mri.model import PREPROCESSING, model_config
    from latente.domains.mri.params import TrainParams
    from latente.shared.models import build_model, save_model

    torch.manual_seed(0)
    model = build_model(model_config(TrainParams.model_validate(MRI["train"])))
    return save_model(model, tmp_path_factory.mktemp("untrained") / "mri", domain="mri", preprocessing=PREPROCESSING,
                      data={"train_volumes": [TRAIN], "test_volumes": [TEST]})


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
