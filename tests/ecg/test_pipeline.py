"""`dvc repro evaluate@ecg` end to end with tiny params, in a temporary copy of the repo."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_PARTS = ["shared", "domains", "pipelines", "vendor", "dvc.yaml", "params.yaml", "pyproject.toml", ".dvc/config", ".dvcignore", ".gitignore"]
TINY = {
    "prepare": {"train_records": ["105", "116"], "lead": "0", "validation_fraction": 0.2, "scale_mv": 1.0, "seconds": 90},
    "train": {
        "window": 256,
        "model": {"name": "conv_ae", "channels": [8, 8], "strides": [2, 4], "kernel_size": 5, "latent_channels": 2, "code_bits": 6, "rate_weight": 0.01, "norm": None},
        "variants": {"A": {}},
        "trainer": {"epochs": 2, "batch_size": 32, "lr": 0.003, "patience": None, "seed": 0},
    },
    "evaluate": {
        "test_records": ["100"], "lead": "MLII", "seconds": 60,
        "operating_points": {"A": {"model": "A", "bits": 6}},
        "rate_distortion": [{"model": "A", "bits": 3}],
        "wavelet_target_crs": [32.25], "wavelet_target_prd": 2.73,
    },
}


def run(cmd, cwd, env):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory, repo_root, mirror):
    root = tmp_path_factory.mktemp("repo")
    for part in REPO_PARTS:
        src, dest = repo_root / part, root / part
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dest)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["ecg"].update(TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "LATENTE_MIRROR": str(mirror), "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "tiny"]):
        assert run(cmd, root, env).returncode == 0
    result = run(["dvc", "repro", "evaluate@ecg"], root, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root, env


def test_repro_writes_metrics_report_and_model(tiny_repo):
    root, env = tiny_repo
    metrics = json.loads((root / "reports/ecg/metrics.json").read_text())
    assert metrics["domain"] == "ecg" and metrics["data"]["items"] == ["100"]
    model = next(r for r in metrics["results"] if r["method"] == "model" and r["condition"] == {"operating_point": "A"})
    wavelet = next(r for r in metrics["results"] if r["method"] == "wavelet" and r["condition"] == {"operating_point": "A"})
    assert model["metrics"]["cr"] > 1 and model["metrics"]["prd"] > 0
    assert abs(wavelet["metrics"]["cr"] / model["metrics"]["cr"] - 1) < 0.05  # the baseline runs at matched CR
    assert {"cr", "prd", "prdn", "snr", "qs", "rpeak_f1", "rpeak_se", "rpeak_ppv"} <= set(model["metrics"])
    report = (root / "reports/ecg/report.md").read_text()
    for figure in ("normal_stretch.png", "rate_distortion.png", "error_distribution.png"):
        assert f"figures/{figure}" in report and (root / "reports/ecg/figures" / figure).stat().st_size > 1000
    assert "11 bits per sample" in report
    assert (root / "models/ecg/A/config.json").is_file()
    assert (root / "reports/ecg/training/A/plots/metrics/val/loss.tsv").is_file()


def test_dvc_sees_metrics_and_renders_plots_offline(tiny_repo):
    root, env = tiny_repo
    shown = run(["dvc", "metrics", "show", "--json"], root, env)
    assert shown.returncode == 0 and "reports/ecg/metrics.json" in shown.stdout
    plots = run(["dvc", "plots", "show", "-o", "plots_html"], root, env)
    assert plots.returncode == 0, plots.stderr
    html = (root / "plots_html" / "index.html").read_text()
    assert "rate_distortion.csv" in html and "vega-embed" in html
    assert "cdn.jsdelivr" not in html and '<script src="http' not in html
    status = run(["dvc", "status", "evaluate@ecg"], root, env)
    assert "changed" not in status.stdout


def test_misspelt_param_stops_the_stage_and_names_the_key(tiny_repo):
    root, env = tiny_repo
    # DVC 3.67 refuses a plain -S for a new key; `+key=value` adds it, and our validation stops it.
    result = run(["dvc", "exp", "run", "-S", "+ecg.train.trainer.epocs=3", "train@ecg"], root, env)
    assert result.returncode != 0
    assert "ecg.train.trainer.epocs: unknown key" in result.stdout + result.stderr
    result = run(["dvc", "exp", "run", "-S", "ecg.train.trainer.epochs=many", "train@ecg"], root, env)
    assert result.returncode != 0
    assert "ecg.train.trainer.epochs: Input should be a valid integer" in result.stdout + result.stderr
