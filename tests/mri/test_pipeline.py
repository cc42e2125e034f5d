"""The real stages on crops of the mirror volumes; fetch from a URL and from the canonical archives."""
from __future__ import annotations

import dataclasses
import io
import json
import math
import shutil
import tarfile
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from conftest import assert_user_error
from latente.domains.mri.params import EvaluateParams, TrainParams
from latente.domains.mri.report import _lowest_level_note, _plain_model_note, describe_model
from latente.domains.mri.sources import DEB_MEMBERS, WHEEL_MEMBERS, download_canonical
from latente.shared.errors import UserError
from latente.shared.models import load_model
from latente.shared.params import validate
from latente.shared.report import References, Target, check_target, load_references
from latente.shared.results import Results
from latente.shared.sources import SourceParams, fetch_files, file_sha256
from latente.shared.trainer import FitResult

from tests.mri.conftest import MASK, REAL, SMALL_PARAMS, TEST, TRAIN, run_stage, run_stages_in_process


@pytest.mark.slow
def test_small_pipeline_trains_and_reports(small_pipeline):
    metrics = json.loads((small_pipeline / "reports/mri/metrics.json").read_text())
    assert metrics["domain"] == "mri" and metrics["data"]["items"] == [TEST, REAL]
    rows = metrics["results"]
    methods = {r["method"] for r in rows}
    assert methods == {"model", "model_adapted", "noisy", "gaussian", "nlm", "bm3d", "reference"}
    model_09 = next(r for r in rows if r["method"] == "model" and r["condition"] == {"noise": 0.09})
    noisy_09 = next(r for r in rows if r["method"] == "noisy" and r["condition"] == {"noise": 0.09})
    # a tiny model trained for seconds already removes the Rician bias of the background (whole-slab PSNR)
    assert model_09["metrics"]["psnr"] > noisy_09["metrics"]["psnr"] + 1
    # in the brain, Rician noise at σ has an MSE close to σ², so the noisy PSNR is close to −20·log10 σ
    assert noisy_09["metrics"]["psnr_mask"] == pytest.approx(-20 * math.log10(0.09), abs=0.3)
    # the real scan's own noise is estimated; the baselines are told σ₀ ⊕ σ in the headline rows, σ alone in `sigma: added` rows
    sigma0 = {r["condition"]["volume"]: r["metrics"]["intrinsic_sigma"] for r in rows if r["method"] == "reference"}
    assert sigma0[TEST] < sigma0[REAL] and 0.002 < sigma0[REAL] < 0.02
    for method in ("nlm", "bm3d"):
        told = {tuple(sorted(r["condition"].items())) for r in rows if r["method"] == method and "volume" in r["condition"]}
        assert told == {(("noise", lv), ("volume", v)) for lv in (0.03, 0.09) for v in (TEST, REAL)} | \
            {(("noise", lv), ("sigma", "added"), ("volume", v)) for lv in (0.03, 0.09) for v in (TEST, REAL)}
    # only the real scan is adapted to, and the aggregate rows average only what every volume has
    adapted = [r["condition"] for r in rows if r["method"] == "model_adapted"]
    assert adapted == [{"volume": REAL, "noise": 0.03}, {"volume": REAL, "noise": 0.09}, {}]
    report = (small_pipeline / "reports/mri/report.md").read_text()
    for figure in ("figures/noise_curves_MR_Gd.png", "figures/panels_mni_icbm152_t1_tal_nlin_sym_09a_converted_3pct.png",
                   "figures/panels_MR_Gd_9pct.png"):
        assert figure in report and (small_pipeline / "reports/mri" / figure).stat().st_size > 1000
    assert "s / slice" in report and "BASELINES.md" not in report
    assert f"## {REAL} (σ₀ {100 * sigma0[REAL]:.2f} %)" in report and "BM3D 2-D (σ added)" in report
    assert "4 Adam steps" in report and "model + adapt" in report
    assert (small_pipeline / "reports/mri/plots/noise_curves_MR_Gd.csv").read_text().startswith("noise,method,psnr_mask")
    loaded = load_model(small_pipeline / "models/mri", domain="mri")
    assert loaded.preprocessing["orientation"] == "RAS" and loaded.model.config.in_channels == 3
    assert loaded.meta["data"]["train_volumes"] == [TRAIN] and loaded.meta["data"]["test_volumes"] == [TEST, REAL]
    # the training record is the trainer's own, key for key
    assert set(loaded.info) == {f.name for f in dataclasses.fields(FitResult)}
    assert loaded.info["epochs_run"] == SMALL_PARAMS["train"]["trainer"]["epochs"] and loaded.info["resumed_from_epoch"] == 0
    split = json.loads((small_pipeline / "data/prepared/mri/split.json").read_text())
    assert split["train"] and split["val"] and not {tuple(s) for s in split["train"]} & {tuple(s) for s in split["val"]}


@pytest.mark.slow
def test_report_judges_every_target_and_describes_the_trained_model(small_pipeline):
    """Each target of references.mri is a row with its own verdict, recomputed here from metrics.json;
    the model paragraph states the tiny run's architecture and training, not the params.yaml model's."""
    report = (small_pipeline / "reports/mri/report.md").read_text()
    results = Results("mri", "", [])
    results.rows = json.loads((small_pipeline / "reports/mri/metrics.json").read_text())["results"]
    targets = load_references("mri", small_pipeline / "params.yaml").targets
    assert len(targets) == 32
    target_rows = {line.split(" | ")[0].removeprefix("| "): line for line in report.splitlines() if line.startswith("| ")}
    for target in targets:
        check = check_target(results, target)
        measured = target.condition["noise"] in SMALL_PARAMS["evaluate"]["noise"]
        assert check.verdict == (("met" if check.passed else "missed") if measured else "not measured")
        assert f"| {check.verdict} | {target.source} |" in target_rows[target.name]
    model, trainer, patches = (SMALL_PARAMS["train"][key] for key in ("model", "trainer", "patches"))
    assert f"{len(model['channels'])} encoder blocks of {'/'.join(map(str, model['channels']))} channels" in report
    assert "48/48/48/48" not in report  # params.yaml's own model is not the one trained here
    assert "its 1 neighbour on each side" in report and "Residual" in report
    assert f"σ drawn uniformly from [{model['corruption']['level'][0]:g}, {model['corruption']['level'][1]:g}]" in report
    assert (f"Training: {trainer['epochs']} epochs (of {trainer['epochs']}) of {patches['per_epoch']} random "
            f"{patches['size']}×{patches['size']} patches") in report
    assert "The saved weights are the training weights at the epoch that validated best" in report


def test_targets_judging_the_adapted_model_say_how_the_plain_model_fares_on_them():
    """Hand-made rows: at 3 % the fine-tuned model clears BM3D (36.3 ≥ 35.7) and the plain model does not (34.8: margin
    −0.9); at 5 % both clear it; the template's target judges the plain model and is not listed."""
    results = Results("mri", "", [])
    for noise, model, adapted, bm3d in ((0.03, 34.8, 36.3, 35.7), (0.05, 33.0, 33.5, 32.6)):
        for method, value in (("model", model), ("model_adapted", adapted), ("bm3d", bm3d)):
            results.add(method, {"psnr_mask": value}, volume="real.nii.gz", noise=noise)
    results.add("model", {"psnr_mask": 37.7}, volume="template.nii.gz", noise=0.03)
    results.add("bm3d", {"psnr_mask": 37.1}, volume="template.nii.gz", noise=0.03)

    def target(volume: str, noise: float, method: str) -> Target:
        return Target(name=f"{volume} {noise}", metric="psnr_mask", better="higher", method=method, against="bm3d",
                      condition={"volume": volume, "noise": noise}, source="test")

    targets = [target("template.nii.gz", 0.03, "model"), target("real.nii.gz", 0.03, "model_adapted"),
               target("real.nii.gz", 0.05, "model_adapted"), target("real.nii.gz", 0.07, "model_adapted")]
    checks = [check_target(results, t) for t in targets]
    assert [c.verdict for c in checks] == ["met", "met", "met", "not measured"]
    note = _plain_model_note(checks, results)
    assert "3 of the 4 targets judge model + adapt (`latente mri denoise --adapt`), not the model alone." in note
    assert note.endswith("Judged on the model alone, 1 of those measured is missed: volume real.nii.gz, noise 0.03, "
                         "psnr_mask ≥ bm3d (margin -0.9000).\n")
    assert _plain_model_note(checks[:1], results) == ""


def test_the_lowest_level_below_every_target_is_explained_per_volume():
    """Hand-made rows at 1 %: template 42.5 against BM3D 43.8 (−1.30), 43.7 fine-tuned (−0.10); real scan 38.2 against
    42.4 (−4.20), not fine-tuned; once a target is set at 1 %, the note gives way to it."""
    results = Results("mri", "", [])
    for volume, model, adapted, bm3d in (("template.nii.gz", 42.5, 43.7, 43.8), ("real.nii.gz", 38.2, None, 42.4)):
        results.add("model", {"psnr_mask": model}, volume=volume, noise=0.01)
        results.add("bm3d", {"psnr_mask": bm3d}, volume=volume, noise=0.01)
        if adapted is not None:
            results.add("model_adapted", {"psnr_mask": adapted}, volume=volume, noise=0.01)
    params = EvaluateParams(noise=(0.01, 0.03), methods=("noisy", "bm3d"))
    config = TrainParams.model_validate(SMALL_PARAMS["train"]).model
    cases = [SimpleNamespace(name="template.nii.gz"), SimpleNamespace(name="real.nii.gz")]
    target = Target(name="t", metric="psnr_mask", better="higher", against="bm3d", condition={"noise": 0.03}, source="test")
    note = _lowest_level_note(results, params, cases, config, References(targets=(target,)))
    low, high = SMALL_PARAMS["train"]["model"]["corruption"]["level"]
    assert ("At 1 % noise, in-mask PSNR against BM3D (σ total): template.nii.gz -1.30 dB (-0.10 dB with the fine-tune); "
            "real.nii.gz -4.20 dB.") in note
    assert f"σ drawn uniformly from [{low:g}, {high:g}]" in note
    told_added = params.model_copy(update={"baseline_sigma": ("added",)})
    assert "in-mask PSNR against BM3D (σ added): template.nii.gz" in _lowest_level_note(
        results, told_added, cases, config, References(targets=(target,)))
    at_one = target.model_copy(update={"condition": {"noise": 0.01}})
    assert _lowest_level_note(results, params, cases, config, References(targets=(at_one,))) == ""


def test_model_description_is_rendered_from_config_trainer_and_record():
    train = TrainParams.model_validate({
        **SMALL_PARAMS["train"],
        "model": {**SMALL_PARAMS["train"]["model"], "in_channels": 5, "channels": [16, 24, 32], "strides": [2, 1, 1], "residual": False},
        "trainer": {**SMALL_PARAMS["train"]["trainer"], "epochs": 9, "ema_decay": 0.99},
    })
    fit = FitResult(epochs_run=7, best_val_loss=0.00123, best_epoch=6, stopped_early=True, resumed_from_epoch=4,
                    seconds=600.0, cpu_seconds=900.0)
    text = describe_model(train.model, train, fit.to_json())
    assert "3 encoder blocks of 16/24/32 channels" in text and "strides 2/1/1" in text
    assert "predicts the clean centre slice directly" in text and "Residual" not in text
    assert "its 2 neighbours on each side as extra channels (5 channels, 2.5-D)" in text
    assert "Training: 7 epochs (of 9)" in text and "moving average of the training weights (decay 0.99)" in text
    assert "epoch 6, validation loss 0.00123" in text and "10.0 min (15.0 CPU min)" in text
    assert "resumed from a checkpoint after epoch 4" in text


@pytest.mark.slow
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
    epochs = SMALL_PARAMS["train"]["trainer"]["epochs"]
    assert load_model(tmp_path / "models/mri").info["resumed_from_epoch"] == epochs


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


def test_canonical_archives_are_unpacked(mirror, http_mirror, tmp_path, monkeypatch):
    """A .deb (ar + data.tar.xz) and a wheel laid out like the pinned upstreams, served as file:// URLs,
    and the GitHub file from a local HTTP server laid out like the raw repository."""
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
    files = [TRAIN, MASK, TEST, REAL]
    download_canonical(files, tmp_path / "raw", deb_url=deb.as_uri(), wheel_url=wheel.as_uri(), github_url=f"{http_mirror}/mri")
    for name in files:
        assert (tmp_path / "raw" / name).read_bytes() == (mirror / "mri" / name).read_bytes()
    with pytest.raises(UserError, match="no canonical source"):
        download_canonical(["other.nii.gz"], tmp_path / "raw")


@pytest.mark.slow
def test_patch_explorer_rows_match_their_volume_noise_and_a_fresh_encoding(small_pipeline, mri_crops):
    """plots/patches.csv against its sources: the grid of patches over the middle evaluated slice with enough head in
    them, each clean and at every level; the PCA of codes recomputed here from the model's own encoder (up to each
    axis's sign), the in-patch PSNR of a fresh denoising, and each point's image (reference | noisy | denoised)."""
    import csv

    import matplotlib.image
    import torch

    from latente.domains.mri.data import unit_scale
    from latente.domains.mri.evaluation import load_case, noise_seed
    from latente.domains.mri.metrics import psnr
    from latente.domains.mri.model import denoise_values
    from latente.shared.noise import corrupt
    from sklearn.decomposition import PCA

    evaluate, explorer = SMALL_PARAMS["evaluate"], SMALL_PARAMS["evaluate"]["explorer"]
    with (small_pipeline / "reports/mri/plots/patches.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    model = load_model(small_pipeline / "models/mri", domain="mri").model.eval()
    size, levels, step = explorer["size"], [0.0, *evaluate["noise"]], model.config.downsampling
    expected, codes = [], []
    for ci, name in enumerate((TEST, REAL)):
        case = load_case(small_pipeline / "data/raw/mri" / name, evaluate["slices"], evaluate["mask_threshold"])
        z = case.zs.start + (case.zs.stop - case.zs.start) // 2
        corners = [(x, y) for x in range(0, case.clean.shape[0] - size + 1, explorer["stride"])
                   for y in range(0, case.clean.shape[1] - size + 1, explorer["stride"])
                   if case.mask[x : x + size, y : y + size, z].mean() >= explorer["head"]]
        assert corners
        for li, level in enumerate(levels):
            noisy = case.clean if level == 0 else corrupt(torch.from_numpy(case.clean), evaluate["kind"], level,
                                                          torch.Generator().manual_seed(noise_seed(evaluate["seed"], ci, li - 1))).numpy()
            scaled = unit_scale(noisy)[0]
            stack = torch.from_numpy(np.stack([scaled[..., min(max(z + k, 0), scaled.shape[2] - 1)] for k in (-1, 0, 1)])[None].astype(np.float32))
            with torch.no_grad():
                code_map = model.encode(stack)[0].numpy()
            denoised = denoise_values(model, noisy, slice(z, z + 1))[..., 0]
            for x, y in corners:
                expected.append((name, z, x, y, level, noisy[x : x + size, y : y + size, z], denoised[x : x + size, y : y + size],
                                 case.clean[x : x + size, y : y + size, z]))
                codes.append(code_map[:, x // step : (x + size + step - 1) // step, y // step : (y + size + step - 1) // step].mean((1, 2)))
    assert [(r["volume"], int(r["slice"]), int(r["x"]), int(r["y"]), float(r["sigma"])) for r in rows] == [e[:5] for e in expected]
    pca = PCA(2, random_state=0).fit_transform(np.stack(codes))
    for axis in (0, 1):
        written = np.array([float(r[f"pca_{axis + 1}"]) for r in rows])
        assert min(np.abs(written - pca[:, axis]).max(), np.abs(written + pca[:, axis]).max()) < 1e-3
    for row, (_, _, _, _, level, noisy, denoised, clean) in zip(rows, expected):
        assert row["noise"] == ("clean" if level == 0 else f"{100 * level:g} %")
        assert float(row["intensity"]) == pytest.approx(clean.mean(), abs=1e-5)
        assert float(row["psnr_model"]) == pytest.approx(psnr(denoised, clean), abs=1e-3)
        assert (row["psnr_noisy"] == "") == (level == 0)
    image = matplotlib.image.imread(small_pipeline / "reports/mri/figures" / rows[-1]["image"])[..., 0]  # gray: R = G = B
    assert image.shape == (4 * size, 4 * (3 * size + 2))
    _, _, _, _, _, noisy, denoised, clean = expected[-1]
    for k, part in enumerate((clean, noisy, denoised)):
        shown = image[::4, 4 * k * (size + 1) : 4 * (k * (size + 1) + size) : 4]
        assert np.abs(shown - np.clip(np.rot90(part), 0, 1)).max() <= 2 / 255  # 256 gray levels, then 8-bit PNG
    report = (small_pipeline / "reports/mri/report.md").read_text()
    assert "## Patch codes" in report and (small_pipeline / "reports/mri/figures/patch_codes.png").stat().st_size > 1000
