"""The real stages on crops of the mirror volumes; fetch from a URL and from the canonical archives."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import zipfile

import pytest
import yaml

from conftest import assert_user_error
from latente.domains.mri.params import TrainParams
from latente.domains.mri.sources import DEB_MEMBERS, WHEEL_MEMBERS, download_canonical
from latente.shared.errors import UserError
from latente.shared.models import load_model
from latente.shared.params import validate
from latente.shared.sources import SourceParams, fetch_files, file_sha256

from tests.mri.conftest import MASK, SMALL_PARAMS, TEST, TRAIN, run_stage, run_stages_in_process


def test_small_pipeline_trains_and_reports(small_pipeline):
    metrics = json.loads((small_pipeline / "reports/mri/metrics.json").read_text())
    assert metrics["domain"] == "mri" and metrics["data"]["items"] == [TEST]
    methods = {r["method"] for r in metrics["results"]}
    assert methods == {"model", "noisy", "gaussian", "nlm", "bm3d"}
    model_09 = next(r for r in metrics["results"] if r["method"] == "model" and r["condition"] == {"noise": 0.09})
    noisy_09 = next(r for r in metrics["results"] if r["method"] == "noisy" and r["condition"] == {"noise": 0.09})
    # a tiny model trained for seconds already removes the Rician bias of the background (whole-slab PSNR)
    assert model_09["metrics"]["psnr"] > noisy_09["metrics"]["psnr"] + 1
    assert noisy_09["metrics"]["psnr_mask"] == pytest.approx(20.92, abs=0.3)
    report = (small_pipeline / "reports/mri/report.md").read_text()
    for figure in ("figures/noise_curves.png", "figures/panels_mni_icbm152_t1_tal_nlin_sym_09a_converted_3pct.png"):
        assert figure in report and (small_pipeline / "reports/mri" / figure).stat().st_size > 1000
    assert "Targets" in report and "s / slice" in report
    assert (small_pipeline / "reports/mri/plots/noise_curves.csv").read_text().startswith("noise,method,psnr_mask")
    loaded = load_model(small_pipeline / "models/mri", domain="mri")
    assert loaded.preprocessing["orientation"] == "RAS" and loaded.preprocessing["context_slices"] == 1
    assert loaded.meta["data"]["train_volumes"] == [TRAIN] and loaded.meta["data"]["test_volumes"] == [TEST]
    split = json.loads((small_pipeline / "data/prepared/mri/split.json").read_text())
    assert split["train"] and split["val"] and not {tuple(s) for s in split["train"]} & {tuple(s) for s in split["val"]}


def test_training_is_deterministic_and_resumes(small_pipeline, mri_crops, tmp_path, capsys):
    """A fresh run with the same seed gives the same weights; a finished run resumes from its checkpoint."""
    weights = (small_pipeline / "models/mri/model.safetensors").read_bytes()
    shutil.copy(small_pipeline / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(small_pipeline / "data", tmp_path / "data")
    run_stages_in_process(tmp_path, ("train",), mri_crops)
    assert (tmp_path / "models/mri/model.safetensors").read_bytes() == weights
    capsys.readouterr()
    run_stages_in_process(tmp_path, ("train",), mri_crops)
    assert "resuming from checkpoint" in capsys.readouterr().err
    assert (tmp_path / "models/mri/model.safetensors").read_bytes() == weights


def test_misspelt_param_is_named(tmp_path, mri_crops):
    params = {"mri": {**SMALL_PARAMS, "prepare": {**SMALL_PARAMS["prepare"], "val_fracton": 0.2}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert_user_error(run_stage(tmp_path, "prepare", mri_crops), "mri.prepare.val_fracton", "unknown key")


def test_train_params_reject_even_slice_stacks():
    bad = {**SMALL_PARAMS["train"], "model": {**SMALL_PARAMS["train"]["model"], "in_channels": 2}}
    with pytest.raises(UserError, match="mri.train"):
        validate(TrainParams, bad, "mri.train")


def test_fetch_from_url_checks_sha256(http_mirror, mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    sha = {TEST: file_sha256(mirror / "mri" / TEST)}
    source = SourceParams(kind="url", location=f"{http_mirror}/mri", files=(TEST,), sha256=sha)
    assert fetch_files("mri", source, tmp_path / "a") == f"{http_mirror}/mri"
    assert (tmp_path / "a" / TEST).read_bytes() == (mirror / "mri" / TEST).read_bytes()
    wrong = SourceParams(kind="url", location=f"{http_mirror}/mri", files=(TEST,), sha256={TEST: "0" * 64})
    with pytest.raises(UserError, match="sha256"):
        fetch_files("mri", wrong, tmp_path / "b")


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += header + data + (b"\n" if len(data) % 2 else b"")
    return out


def test_canonical_archives_are_unpacked(mirror, tmp_path, monkeypatch):
    """A .deb (ar + data.tar.xz) and a wheel laid out like the pinned upstreams, served as file:// URLs."""
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:xz") as tar:
        for name, inner in DEB_MEMBERS.items():
            tar.add(mirror / "mri" / name, arcname=f"./{inner}")
    deb = tmp_path / "mricron-data.deb"
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", "data.tar.xz": tar_bytes.getvalue()}))
    wheel = tmp_path / "nilearn.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, inner in WHEEL_MEMBERS.items():
            archive.write(mirror / "mri" / name, inner)
    files = [TRAIN, MASK, TEST]
    download_canonical(files, tmp_path / "raw", deb_url=deb.as_uri(), wheel_url=wheel.as_uri())
    for name in files:
        assert (tmp_path / "raw" / name).read_bytes() == (mirror / "mri" / name).read_bytes()
    with pytest.raises(UserError, match="no canonical source"):
        download_canonical(["other.nii.gz"], tmp_path / "raw")
