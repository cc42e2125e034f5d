"""The pipeline: strict params, CLI defaults = pipeline defaults, canonical download, and the four stages
end to end on three real SKAB files with the tiny params."""
from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import fields
from pathlib import Path

import pytest
from tiny import ANOMALY

from latente.domains.anomaly import DOMAIN
from latente.domains.anomaly.params import DetectorConfig, EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.domains.anomaly.sources import SKAB_RAW, canonical_downloader, upstream_url
from latente.pipelines.anomaly import STAGES
from latente.shared.errors import UserError
from latente.shared.params import stage_params
from latente.shared.report import check_target, load_references
from latente.shared.results import Results
from latente.shared.sources import fetch_files, file_sha256
from latente.shared.stage import DomainPaths
from latente.shared.trainer import FitResult

SCHEMAS = {"fetch": FetchParams, "prepare": PrepareParams, "train": TrainParams, "evaluate": EvaluateParams}


@pytest.fixture(scope="module")
def stages(repo_root):
    file = repo_root / "params.yaml"
    return {name: stage_params(DOMAIN, name, schema, file) for name, schema in SCHEMAS.items()}


def test_params_yaml_is_the_default_configuration(stages):
    # the CLI builds DetectorConfig() / EvaluateParams() from defaults: they must be what the pipeline measures
    assert stages["train"].detector == DetectorConfig()
    assert stages["train"].train_rows == 400
    assert stages["evaluate"] == EvaluateParams()
    assert stages["prepare"] == PrepareParams()
    assert len(stages["fetch"].source.files) == 21 and set(stages["fetch"].source.sha256) == set(stages["fetch"].source.files)


def test_each_stage_function_takes_its_params_schema():
    assert [s.name for s in STAGES] == list(SCHEMAS)
    for stage in STAGES:
        assert typing.get_type_hints(stage.function())["params"] is SCHEMAS[stage.name]


def test_misspelt_keys_are_named(tmp_path):
    file = tmp_path / "params.yaml"
    file.write_text("anomaly:\n  train:\n    detector:\n      treshold_quantile: 0.99\n")
    with pytest.raises(UserError, match=r"anomaly.train.detector.treshold_quantile: unknown key"):
        stage_params(DOMAIN, "train", TrainParams, file)
    file.write_text("anomaly:\n  train:\n    detector:\n      trainer: {val_fraction: 0.2}\n")  # a detector key, not a trainer one
    with pytest.raises(UserError, match=r"anomaly.train.detector.trainer.val_fraction: unknown key"):
        stage_params(DOMAIN, "train", TrainParams, file)


def test_canonical_source_is_skab_pinned_to_its_commit():
    assert upstream_url("skab/valve2/3.csv") == "https://raw.githubusercontent.com/waico/SKAB/b2c0d46/data/valve2/3.csv"
    assert SKAB_RAW.endswith("/waico/SKAB/b2c0d46/data")
    with pytest.raises(UserError, match="has no canonical upstream"):
        upstream_url("other/1.csv")


def test_canonical_download_verified_against_the_pinned_checksums(stages, http_mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    source = stages["fetch"].source.model_copy(update={"files": ("skab/valve1/0.csv", "skab/anomaly-free/anomaly-free.csv")})
    origin = fetch_files(DOMAIN, source, tmp_path, canonical=canonical_downloader(f"{http_mirror}/anomaly/skab"))
    assert origin == "canonical"
    assert file_sha256(tmp_path / "skab/valve1/0.csv") == source.sha256["skab/valve1/0.csv"]
    bad = source.model_copy(update={"sha256": {**source.sha256, "skab/valve1/0.csv": "0" * 64}})
    with pytest.raises(UserError, match="sha256 does not match"):
        fetch_files(DOMAIN, bad, tmp_path / "again", canonical=canonical_downloader(f"{http_mirror}/anomaly/skab"))


def _fits(model_dir) -> dict[str, dict]:
    """Each saved detector's config.json, by folder."""
    return {p.parent.relative_to(model_dir).as_posix(): json.loads(p.read_text()) for p in model_dir.rglob("config.json")}


def _weights(model_dir) -> dict[str, str]:
    return {p.parent.relative_to(model_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in model_dir.rglob("model.safetensors")}


@pytest.mark.slow
def test_tiny_chain_fetch_to_report(mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    run = {s.name: s.function() for s in STAGES}
    paths = DomainPaths(DOMAIN, tmp_path)
    source = {**ANOMALY["fetch"]["source"], "kind": "local", "location": str(mirror / DOMAIN)}
    run["fetch"](FetchParams.model_validate({"source": source}), paths)
    run["prepare"](PrepareParams.model_validate(ANOMALY["prepare"]), paths)
    train = TrainParams.model_validate(ANOMALY["train"])
    run["train"](train, paths)
    run["evaluate"](EvaluateParams.model_validate(ANOMALY["evaluate"]), paths)

    protocol = json.loads((paths.model / "protocol.json").read_text())
    assert protocol["files"] == {k: k.removesuffix(".csv") for k in ("skab/valve1/0.csv", "skab/valve1/8.csv", "skab/valve2/2.csv")}
    first = _fits(paths.model)
    assert set(first) == {*protocol["files"].values(), *(f"seeds/1/{v}" for v in protocol["files"].values()), "global"}
    for folder, saved in first.items():
        assert set(saved["info"]["fit"]) == {f.name for f in fields(FitResult)}  # the trainer's record, as is
        assert saved["model"]["in_channels"] == 8 and saved["model"]["input_size"] == [60]  # filled by model_config
        assert saved["model"]["channels"] == ANOMALY["train"]["detector"]["model"]["channels"]
    assert first["global"]["info"]["fit"]["epochs_run"] == train.global_epochs

    results = json.loads(paths.metrics.read_text())
    rows = {(r["method"], json.dumps(r["condition"], sort_keys=True)): r["metrics"] for r in results["results"]}
    assert {"model", "model_unweighted", "model_global", "pca_t2q", "isolation_forest"} == {m for m, c in rows if c == "{}"}
    assert ("model", '{"seed": 1}') in rows

    report = paths.report.read_text()
    assert "BASELINES" not in report
    # the method is described from the saved config: 8 sensors into the tiny 8-8 channels, kernel 3
    assert "convolutions 8→8→8 channels (kernel 3, strides 2·2, RELU)" in report and "windows of 60 rows" in report
    references = load_references(DOMAIN)
    loaded = Results(DOMAIN, "", [])
    loaded.rows = results["results"]
    for target in references.targets:  # the Targets table agrees with a check of metrics.json made here
        check = check_target(loaded, target)
        measured = rows[("model", "{}")][target.metric]
        assert check.passed == (measured >= target.value if target.better == "higher" else measured <= target.value)
        assert f"| {target.name} | overall | {target.describe()} | {measured:.3f} | {target.value:.3f} |" in report
        assert f"| {check.verdict} | {target.source} |" in report
    point_anchors = [a for a in references.anchors if "f1" in a.values]
    assert point_anchors
    for anchor in point_anchors:
        assert f"| {anchor.label} | {anchor.values['f1']:.2f} | {anchor.values['far']:.2f} | {anchor.values['mar']:.2f} |" in report
    for anchor in references.anchors:
        if "nab_standard" in anchor.values:  # the NAB table: the leaderboard rows that have NAB scores
            assert f"| {anchor.label} | {anchor.values['nab_standard']:.2f} |" in report
        if "f1" not in anchor.values:  # no F1/FAR/MAR row of dashes for a NAB-only leaderboard entry
            assert f"| {anchor.label} | – |" not in report
    _check_window_codes(paths, mirror / DOMAIN / ANOMALY["evaluate"]["explorer_file"], protocol)

    epochs = {saved["info"]["fit"]["epochs_run"] for folder, saved in first.items() if folder in protocol["files"].values()}
    assert epochs == {3} and "- Training: 3 per-file fits of 3 epochs" in report  # patience 5 never stops 3 epochs

    # a second train run resumes every fit from its finished checkpoint: same weights, and the saved record
    # counts the time of the epochs run before (kept in the checkpoint), not only the reload
    weights = _weights(paths.model)
    run["train"](train, paths)
    assert _weights(paths.model) == weights
    for folder, saved in _fits(paths.model).items():
        before, after = first[folder]["info"]["fit"], saved["info"]["fit"]
        assert after["resumed_from_epoch"] == before["epochs_run"] == after["epochs_run"]
        assert after["history"] == before["history"]
        checkpoint = json.loads((paths.checkpoint / folder / "state.json").read_text())
        assert after["seconds"] >= checkpoint["seconds"] > 0 and after["cpu_seconds"] >= checkpoint["cpu_seconds"] > 0


def _check_window_codes(paths, raw_csv, protocol):
    """plots/windows.csv against its sources: one row per test window of the explorer's file, labels counted
    from the file's own label column, the top sensor's window equal to its standardised values (the saved
    detector's statistics), shares summing to 1, and scores whose minima are the scored rows' scores."""
    import csv

    import numpy as np
    import pandas as pd

    key = ANOMALY["evaluate"]["explorer_file"]
    with (paths.plots / "windows.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    raw = pd.read_csv(raw_csv, sep=";")
    train_rows, window = ANOMALY["train"]["train_rows"], TrainParams.model_validate(ANOMALY["train"]).detector.window
    test = raw.iloc[train_rows:]
    assert len(rows) == len(test) - window + 1
    assert (rows[0]["first_row"], rows[-1]["last_row"]) == (str(train_rows + 1), str(len(raw)))
    saved = json.loads((paths.model / protocol["files"][key] / "config.json").read_text())["preprocessing"]
    sensors = saved["sensors"]
    assert sensors == [c for c in raw.columns if c not in ("datetime", "anomaly", "changepoint")]
    labels = test["anomaly"].to_numpy()
    standardised = (test[sensors].to_numpy() - np.array(saved["mean"])) / np.array(saved["scale"])
    for j, row in enumerate(rows):
        anomalous = int(labels[j : j + window].sum())
        assert row["label"] == ("normal" if anomalous == 0 else "anomalous" if anomalous == window else "partly anomalous")
        shares = np.array(row["error_share"].split(), dtype=float)
        assert row["sensors"].split(" | ") == sensors and len(shares) == len(sensors)
        assert shares.sum() == pytest.approx(1.0, abs=5e-4) and row["top_sensor"] == sensors[int(shares.argmax())]
        top = np.array(row["top_sensor_window"].split(), dtype=float)
        np.testing.assert_allclose(top, standardised[j : j + window, sensors.index(row["top_sensor"])], atol=6e-5)
        assert len(row["top_sensor_reconstruction"].split()) == window
        assert all(np.isfinite(float(row[c])) for c in ("pca_1", "pca_2", "tsne_1", "tsne_2"))
    assert {row["label"] for row in rows} >= {"normal", "anomalous"}
    # SKAB's rule scores row t by the smallest residual of the windows starting at t−W+1 … t−1
    with (paths.plots / f"score_{Path(key).with_suffix('').as_posix().replace('/', '_')}.csv").open(newline="") as handle:
        scored = list(csv.DictReader(handle))
    residual = np.array([float(row["score"]) for row in rows]) * float(scored[0]["threshold"])
    checked = 0
    for t, row in enumerate(scored):
        if row["score"]:
            assert float(row["score"]) == pytest.approx(residual[t - window + 1 : t].min(), rel=2e-4)
            checked += 1
    assert checked == len(test) - 3 * window + 3
    assert f"Every test window of `{key}` ({len(rows)}:" in paths.report.read_text()
    assert (paths.figures / "window_codes.png").stat().st_size > 1000
