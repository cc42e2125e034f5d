"""`latente anomaly fit|score|evaluate` on real SKAB files, and every bad-input case of the issue."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import assert_user_error, call_latente, run_latente, write_sealed_config

from latente.domains.anomaly.baselines import pca_t2q
from latente.domains.anomaly.data import read_series, split
from latente.domains.anomaly.metrics import Confusion, confusion
from latente.domains.anomaly.params import PCABaselineParams, ReaderConfig


def cli(capsys, *args) -> subprocess.CompletedProcess:
    """The real entry point (`latente.domains.cli.main`) in-process: exit status, stdout, stderr."""
    from latente.domains.cli import main

    argv, sys.argv = sys.argv, ["latente", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


@pytest.fixture(scope="module")
def skab_frame(mirror) -> pd.DataFrame:
    return pd.read_csv(mirror / "anomaly/skab/valve1/0.csv", sep=";")


def save(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, sep=";", index=False)
    return path


FIT_ARGS = ("anomaly", "fit", "--rows", "0:400", "--epochs", "2")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, mirror):
    """A detector fitted by the `latente` entry point (in-process) on valve1/0.csv rows 0:400."""
    folder = tmp_path_factory.mktemp("model") / "valve1_0"
    result = call_latente(*FIT_ARGS, mirror / "anomaly/skab/valve1/0.csv", "--model-out", folder)
    assert result.returncode == 0, result.stderr
    assert "fitted on 400 rows × 8 sensors" in result.stderr
    return folder


@pytest.mark.slow
def test_installed_command_fits_the_same_model(fitted, mirror, tmp_path):
    """The real `latente` process (interpreter start, entry point) writes the very weights of the in-process run."""
    result = run_latente(*FIT_ARGS, mirror / "anomaly/skab/valve1/0.csv", "--model-out", tmp_path / "m")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "m/model.safetensors").read_bytes() == (fitted / "model.safetensors").read_bytes()


def test_fit_writes_a_loadable_model_folder(fitted):
    from dataclasses import fields

    from latente.domains.anomaly.model import load_detector
    from latente.shared.trainer import FitResult

    assert {p.name for p in fitted.iterdir()} == {"config.json", "model.safetensors"}
    d = load_detector(fitted)
    assert d.window == 60 and len(d.sensors) == 8 and d.threshold > 0
    assert d.model.config.in_channels == 8 and d.model.config.input_size == (60,)  # from the data, by the model hook
    assert d.info["train_rows"] == 400 and d.info["train_windows"] + d.info["val_windows"] == 341  # 400 − 60 + 1 windows
    assert set(d.info["fit"]) == {f.name for f in fields(FitResult)} and d.info["fit"]["epochs_run"] == 2
    assert json.loads((fitted / "config.json").read_text())["data"]["rows"] == [0, 400]


def test_score_streams_in_chunks_and_equals_whole_file(capsys, fitted, mirror, tmp_path):
    csv = mirror / "anomaly/skab/valve1/3.csv"
    whole = cli(capsys, "anomaly", "score", csv, "--model", fitted, "--out", tmp_path / "whole.csv")
    assert whole.returncode == 0, whole.stderr
    chunked = cli(capsys, "anomaly", "score", csv, "--model", fitted, "--out", tmp_path / "chunked.csv", "--chunk-rows", "97")
    assert chunked.returncode == 0, chunked.stderr
    assert (tmp_path / "whole.csv").read_bytes() == (tmp_path / "chunked.csv").read_bytes()
    out = pd.read_csv(tmp_path / "whole.csv", keep_default_na=False, na_values=[""])
    assert list(out.columns) == ["row", "timestamp", "score", "flag", "top_sensor", "top_share"]
    assert len(out) == 1148 and out["row"].tolist() == list(range(1, 1149))
    assert out["timestamp"].iloc[0] == "2020-03-09 11:14:34"
    scored = out["score"].notna()
    assert scored.sum() == 1148 - 59 - 118  # SKAB's rule: first W−1 and last 2W−2 rows have no label
    assert (out.loc[scored, "top_share"].between(0, 1)).all() and (out.loc[~scored, "flag"] == 0).all()
    from latente.domains.anomaly.model import load_detector

    limit = load_detector(fitted).threshold  # scores are written with 6 significant digits
    assert (out.loc[out["score"] > limit * 1.0001, "flag"] == 1).all()
    assert (out.loc[out["score"] < limit * 0.9999, "flag"] == 0).all()
    if out["flag"].any():
        assert "alarm 1: rows" in whole.stderr and "error shares:" in whole.stderr


def test_evaluate_two_real_files(capsys, mirror, tmp_path):
    data = tmp_path / "data"
    for group, name in (("valve1", "0.csv"), ("valve2", "2.csv")):
        (data / group).mkdir(parents=True)
        shutil.copy(mirror / "anomaly/skab" / group / name, data / group / name)
    result = cli(capsys, "anomaly", "evaluate", "--data", data, "--json", "--epochs", "3")
    assert result.returncode == 0, result.stderr
    obj = json.loads(result.stdout)
    assert obj["domain"] == "anomaly" and obj["data"]["items"] == ["valve1/0.csv", "valve2/2.csv"]
    overall = {r["method"]: r["metrics"] for r in obj["results"] if not r["condition"]}
    assert list(overall) == ["model", "model_unweighted", "pca_t2q", "isolation_forest"]
    files = [split(read_series(data / k, ReaderConfig(), labels_required=True), 400, 60, k) for k in obj["data"]["items"]]
    test_rows = sum(len(test) for _, test in files)
    anomalous = sum(int(test.labels.sum()) for _, test in files)
    for method, m in overall.items():
        assert m["tp"] + m["tn"] + m["fp"] + m["fn"] == test_rows and m["tp"] + m["fn"] == anomalous
        assert Confusion(m["tp"], m["tn"], m["fp"], m["fn"]).metrics() == pytest.approx({k: m[k] for k in ("f1", "far", "mar")})
        assert {"nab_standard", "nab_low_fp", "nab_low_fn"} <= set(m)
    direct = sum((confusion(test.labels, pca_t2q(train, test.values, PCABaselineParams())) for train, test in files), Confusion())
    assert overall["pca_t2q"]["f1"] == pytest.approx(direct.metrics()["f1"])
    per_file = [r for r in obj["results"] if r["condition"]]
    assert {(r["method"], r["condition"]["file"]) for r in per_file} == {(m, k) for m in overall for k in obj["data"]["items"]}


# --- bad input: one line naming the file/column/row, exit 2, no output left behind ----------------------------------

def test_missing_columns(capsys, skab_frame, tmp_path):
    csv = save(skab_frame.drop(columns=["datetime"]), tmp_path / "no_time.csv")
    assert_user_error(cli(capsys, "anomaly", "fit", csv, "--model-out", tmp_path / "m"), "no_time.csv", "missing column 'datetime'")
    assert not (tmp_path / "m").exists()


def test_non_numeric_value(capsys, skab_frame, tmp_path):
    frame = skab_frame.head(200).astype({"Pressure": object})
    frame.loc[57, "Pressure"] = "n/a-bar"
    csv = save(frame, tmp_path / "text.csv")
    assert_user_error(cli(capsys, "anomaly", "fit", csv, "--model-out", tmp_path / "m"),
                      "text.csv", "column 'Pressure'", "row 58", "'n/a-bar' is not a number")


def test_fewer_rows_than_one_window(capsys, skab_frame, fitted, tmp_path):
    csv = save(skab_frame.head(30), tmp_path / "short.csv")
    assert_user_error(cli(capsys, "anomaly", "fit", csv, "--model-out", tmp_path / "m"), "short.csv", "fewer than one window of 60")
    assert_user_error(cli(capsys, "anomaly", "score", csv, "--model", fitted, "--out", tmp_path / "out.csv"),
                      "short.csv", "30 usable rows, fewer than one window of 60")
    assert not (tmp_path / "out.csv").exists() and list(tmp_path.glob(".out.csv*")) == []


def test_constant_sensor_is_handled(capsys, skab_frame, tmp_path):
    frame = skab_frame.head(300).copy()
    frame["Voltage"] = 230.0
    csv = save(frame, tmp_path / "flat.csv")
    result = cli(capsys, "anomaly", "fit", csv, "--model-out", tmp_path / "m", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "constant in the training rows (scale 1, raw units): Voltage" in result.stderr
    config = json.loads((tmp_path / "m/config.json").read_text())["preprocessing"]
    assert config["scale"][6] == 1.0 and config["weights"][6] == 1.0 and np.isfinite(config["threshold"])
    scored = cli(capsys, "anomaly", "score", csv, "--model", tmp_path / "m", "--out", tmp_path / "out.csv")
    assert scored.returncode == 0, scored.stderr
    assert np.isfinite(pd.read_csv(tmp_path / "out.csv")["score"].dropna()).all()


def test_empty_file(capsys, fitted, tmp_path):
    csv = tmp_path / "empty.csv"
    csv.write_text("")
    assert_user_error(cli(capsys, "anomaly", "fit", csv, "--model-out", tmp_path / "m"), "empty.csv", "the file is empty")
    assert_user_error(cli(capsys, "anomaly", "score", csv, "--model", fitted, "--out", tmp_path / "o.csv"), "empty.csv", "the file is empty")
    assert_user_error(cli(capsys, "anomaly", "evaluate", "--data", tmp_path), "empty.csv", "the file is empty")


def test_model_trained_on_other_columns(capsys, skab_frame, fitted, tmp_path):
    csv = save(skab_frame.rename(columns={"Thermocouple": "Thermo2"}), tmp_path / "renamed.csv")
    assert_user_error(cli(capsys, "anomaly", "score", csv, "--model", fitted, "--out", tmp_path / "o.csv"),
                      "renamed.csv", "lacks column 'Thermocouple'", str(fitted))
    assert not (tmp_path / "o.csv").exists()


def test_outputs_are_not_overwritten_without_force(capsys, mirror, fitted, tmp_path):
    out = tmp_path / "o.csv"
    out.write_text("keep me")
    assert_user_error(cli(capsys, "anomaly", "score", mirror / "anomaly/skab/valve1/1.csv", "--model", fitted, "--out", out),
                      "o.csv", "already exists", "--force")
    assert out.read_text() == "keep me"


def test_wrong_model_folder_and_unlabelled_data(capsys, mirror, fitted, tmp_path):
    csv = mirror / "anomaly/skab/valve1/1.csv"
    assert_user_error(cli(capsys, "anomaly", "score", csv, "--model", tmp_path / "nope", "--out", tmp_path / "o.csv"),
                      "nope", "model folder not found")
    broken = tmp_path / "broken"
    shutil.copytree(fitted, broken)
    config = json.loads((broken / "config.json").read_text())
    del config["preprocessing"]["sensors"]
    write_sealed_config(broken, config)
    assert_user_error(cli(capsys, "anomaly", "score", csv, "--model", broken, "--out", tmp_path / "o.csv"),
                      "broken/config.json", "not an anomaly detector", "sensors")
    (tmp_path / "free").mkdir()
    shutil.copy(mirror / "anomaly/skab/anomaly-free/anomaly-free.csv", tmp_path / "free")
    assert_user_error(cli(capsys, "anomaly", "evaluate", "--data", tmp_path / "free"),
                      "anomaly-free.csv", "missing columns 'anomaly', 'changepoint'")
