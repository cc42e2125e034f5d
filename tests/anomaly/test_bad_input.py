"""Every bad `latente anomaly` command line of issue 16 (and its neighbours): one `error:` line, exit 2,
no traceback, no partial or clobbered file (tests/bad_input.py). Numbers are checked while the
command line is parsed; the CSV, the model folder and the outputs before any row is read."""
from __future__ import annotations

import json
import math
import shutil

import pytest

from bad_input import Env, case, env_stack, replay  # noqa: F401  (env_stack is a fixture)
from conftest import call_latente, write_sealed_config

F = "anomaly fit {csv} --model-out {tmp}/m --rows 0:400 --epochs 1"
SC = "anomaly score {csv} --model {model} --out {tmp}/scores.csv"
EV = "anomaly evaluate --data {data}"

CASES = [
    # fit: numbers
    case("fit_epochs_0", F + " --epochs 0", "--epochs", "0 is out of range", "from 1 to 100000"),
    case("fit_epochs_text", F + " --epochs some", "--epochs", "'some' is not a whole number"),
    case("fit_epochs_huge", F + " --epochs 1000000000", "--epochs", "1000000000 is out of range"),
    case("fit_seed_negative", F + " --seed -1", "--seed", "-1 is out of range"),
    case("fit_seed_text", F + " --seed 1.5", "--seed", "'1.5' is not a whole number"),
    # fit --model-out: checked before the CSV is read and the detector trained
    case("model_out_is_a_file", "anomaly fit {csv} --model-out {file}", "{file}", "is a file, not a folder"),
    case("model_out_exists", "anomaly fit {csv} --model-out {dir}", "{dir}", "already exists", "--force"),
    case("model_out_parent_is_a_file", "anomaly fit {csv} --model-out {file}/m", "{file}", "is a file, not a folder"),
    case("model_out_in_read_only_folder", "anomaly fit {csv} --model-out {ro}/m", "{ro}", "not writable"),
    case("model_out_not_given", "anomaly fit {csv}", "--model-out", "required"),
    case("fit_no_force_is_gone", F + " --no-force", "--no-force", "no such option"),
    # fit CSV
    case("fit_csv_missing", "anomaly fit {missing} --model-out {tmp}/m", "{missing}", "CSV file not found"),
    case("fit_csv_is_a_folder", "anomaly fit {dir} --model-out {tmp}/m", "{dir}", "is a folder, not a CSV file"),
    case("fit_rows_text", "anomaly fit {csv} --model-out {tmp}/m --rows a:b", "--rows a:b", "expected START:END"),
    case("fit_nan_policy_unknown", F + " --nan-policy guess", "nan_policy"),
    # score: numbers
    case("chunk_rows_0", SC + " --chunk-rows 0", "--chunk-rows", "0 is out of range", "from 1 to 10000000"),
    case("chunk_rows_negative", SC + " --chunk-rows -5", "--chunk-rows", "-5 is out of range"),
    case("chunk_rows_text", SC + " --chunk-rows big", "--chunk-rows", "'big' is not a whole number"),
    case("chunk_rows_huge", SC + " --chunk-rows 1000000000", "--chunk-rows", "1000000000 is out of range"),
    # score --out
    case("out_is_a_folder", "anomaly score {csv} --model {model} --out {dir}", "{dir}", "is a folder"),
    case("out_exists", "anomaly score {csv} --model {model} --out {existing}", "{existing}", "already exists", "--force"),
    case("out_parent_is_a_file", "anomaly score {csv} --model {model} --out {file}/s.csv", "{file}", "is a file, not a folder"),
    case("out_in_read_only_folder", "anomaly score {csv} --model {model} --out {ro}/s.csv", "{ro}", "not writable"),
    case("score_no_force_is_gone", SC + " --no-force", "--no-force", "no such option"),
    # score: CSV and --model
    case("score_csv_missing", "anomaly score {missing} --model {model} --out {tmp}/s.csv", "{missing}", "CSV file not found"),
    case("score_csv_is_a_folder", "anomaly score {dir} --model {model} --out {tmp}/s.csv", "{dir}", "is a folder, not a CSV file"),
    case("model_is_a_file", SC.replace("{model}", "{file}"), "{file}", "is a file, not a model folder"),
    case("model_missing", SC.replace("{model}", "{missing}"), "{missing}", "model folder not found"),
    case("default_model_nowhere", "anomaly score {csv} --out {tmp}/s.csv", "--model", "models/anomaly/global",
         "neither in the current folder", outside=True),
    # evaluate
    case("data_missing", "anomaly evaluate --data {missing}", "{missing}", "not found"),
    case("data_is_a_file", "anomaly evaluate --data {csv}", "{csv}", "is a file, not a folder"),
    case("data_not_given", "anomaly evaluate", "--data", "required"),
    case("train_rows_1", EV + " --train-rows 1", "--train-rows", "1 is out of range", "from 2 to"),
    case("train_rows_text", EV + " --train-rows half", "--train-rows", "'half' is not a whole number"),
    case("evaluate_epochs_0", EV + " --epochs 0", "--epochs", "0 is out of range"),
    case("evaluate_no_label", EV + " --label ''", "--label", "needs a label column"),
    case("unknown_option", EV + " --epoch 3", "--epoch", "no such option", "--epochs"),
    # binary input (a UnicodeDecodeError traceback in `score`, issue 16 cause 5)
    case("score_binary_csv", "anomaly score {binary} --model {model} --out {tmp}/s.csv", "{binary}", "not a text CSV file"),
    case("fit_binary_csv", "anomaly fit {binary} --model-out {tmp}/m", "{binary}", "not a text CSV file"),
    # a model folder whose config.json was edited after saving (cause 8): refused by its checksum
    case("model_edited", SC.replace("{model}", "{m_edited}"), "config.json", "checksum mismatch", "retrain or refit"),
    # ... and one sealed but wrong (a writer other than `fit`): checked on load, the key named
    case("model_threshold_nan", SC.replace("{model}", "{m_threshold_nan}"), "preprocessing.threshold", "nan", "refit"),
    case("model_threshold_negative", SC.replace("{model}", "{m_threshold_negative}"), "preprocessing.threshold", "-1.0"),
    case("model_threshold_text", SC.replace("{model}", "{m_threshold_text}"), "preprocessing.threshold", "'high'"),
    case("model_window_negative", SC.replace("{model}", "{m_window_negative}"), "preprocessing.window", "-5",
         "whole number of at least 2"),
    case("model_window_not_the_network_s", SC.replace("{model}", "{m_window_61}"), "preprocessing.window",
         "61 differs from the network's input length"),
    case("model_mean_too_short", SC.replace("{model}", "{m_mean_short}"), "preprocessing.mean", "8 finite numbers"),
    case("model_scale_zero", SC.replace("{model}", "{m_scale_zero}"), "preprocessing.scale", "not above 0"),
    case("model_weights_nan", SC.replace("{model}", "{m_weights_nan}"), "preprocessing.weights", "finite numbers"),
    case("model_weights_negative", SC.replace("{model}", "{m_weights_negative}"), "preprocessing.weights", "negative"),
    case("model_sensors_twice", SC.replace("{model}", "{m_sensors_twice}"), "preprocessing.sensors", "twice"),
    case("model_step_negative", SC.replace("{model}", "{m_step_negative}"), "preprocessing.step_s", "-1"),
    case("model_unknown_key", SC.replace("{model}", "{m_unknown_key}"), "preprocessing.thresold", "unknown key"),
    case("model_without_rule", SC.replace("{model}", "{m_no_rule}"), "config.json", "no preprocessing.rule", "refit"),
    case("model_rule_quantile_2", SC.replace("{model}", "{m_rule_quantile}"), "preprocessing.rule.threshold_quantile"),
    case("model_reader_nan_policy", SC.replace("{model}", "{m_reader_policy}"), "preprocessing.reader.nan_policy"),
    # score: calibration, false-alarm rate, separator (issue 16, section 1)
    case("far_without_calibration", SC + " --far 0.05", "--far", "needs --calibrate-rows"),
    case("far_0", SC + " --calibrate-rows 400 --far 0", "--far", "0 is out of range", "above 0 and below 1"),
    case("far_1", SC + " --calibrate-rows 400 --far 1", "--far", "1 is out of range"),
    case("far_percent", SC + " --calibrate-rows 400 --far 5", "--far", "5 is out of range"),
    case("far_nan", SC + " --calibrate-rows 400 --far nan", "--far", "not a finite number"),
    case("calibrate_rows_too_few", SC + " --calibrate-rows 100", "--calibrate-rows", "too few", "at least 178"),
    case("calibrate_rows_text", SC + " --calibrate-rows all", "--calibrate-rows", "'all' is not a whole number"),
    case("calibrate_rows_beyond_the_file", "anomaly score {short} --model {model} --out {tmp}/s.csv --calibrate-rows 400",
         "{short}", "fewer than the 400 calibration rows"),
    case("score_sep_empty", SC + " --sep ''", "--sep", "is empty"),
    case("score_wrong_sep", "anomaly score {comma} --model {model} --out {tmp}/s.csv", "{comma}", "lacks columns", "give its separator with --sep"),
    # fit --rows and --sep
    case("fit_rows_negative", "anomaly fit {csv} --model-out {tmp}/m --rows -5:", "--rows -5:", "cannot be negative"),
    case("fit_rows_reversed", "anomaly fit {csv} --model-out {tmp}/m --rows 300:200", "--rows 300:200", "END must be above START"),
    case("fit_rows_beyond_the_file", "anomaly fit {csv} --model-out {tmp}/m --rows 5000:", "--rows 5000:", "starts after the last"),
    case("fit_rows_shorter_than_a_window", "anomaly fit {csv} --model-out {tmp}/m --rows 0:30", "rows 0:30",
         "fewer than one window of 60"),
    case("fit_sep_empty", "anomaly fit {csv} --model-out {tmp}/m --sep ''", "--sep", "is empty"),
    case("model_out_is_a_file_forced", "anomaly fit {csv} --model-out {file} --force", "{file}", "is a file, not a folder"),
    # evaluate's cross-file protocol
    case("evaluate_far_without_model", EV + " --far 0.05", "--far", "needs --model"),
    case("evaluate_model_missing", EV + " --model {missing}", "{missing}", "model folder not found"),
    case("evaluate_model_is_a_file", EV + " --model {file}", "{file}", "is a file, not a model folder"),
    case("evaluate_calibrate_rows_too_few", EV + " --model {model} --calibrate-rows 60", "--calibrate-rows", "at least 178"),
    case("evaluate_model_broken", EV + " --model {m_threshold_nan}", "preprocessing.threshold"),
]

BROKEN_MODELS = {  # placeholder → what is done to the fitted model's config.json "preprocessing"
    "m_threshold_nan": lambda p: p.update(threshold=math.nan),
    "m_threshold_negative": lambda p: p.update(threshold=-1.0),
    "m_threshold_text": lambda p: p.update(threshold="high"),
    "m_window_negative": lambda p: p.update(window=-5),
    "m_window_61": lambda p: p.update(window=61),
    "m_mean_short": lambda p: p.update(mean=p["mean"][:3]),
    "m_scale_zero": lambda p: p["scale"].__setitem__(2, 0.0),
    "m_weights_nan": lambda p: p["weights"].__setitem__(0, math.nan),
    "m_weights_negative": lambda p: p["weights"].__setitem__(0, -0.5),
    "m_sensors_twice": lambda p: p["sensors"].__setitem__(1, p["sensors"][0]),
    "m_step_negative": lambda p: p.update(step_s=-1),
    "m_unknown_key": lambda p: p.update(thresold=1.0),
    "m_no_rule": lambda p: p.pop("rule"),
    "m_rule_quantile": lambda p: p["rule"].update(threshold_quantile=2),
    "m_reader_policy": lambda p: p["reader"].update(nan_policy="guess"),
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, mirror):
    """A real detector, fitted in 1 epoch on rows 0:400 of valve1/0.csv."""
    folder = tmp_path_factory.mktemp("anomaly_model") / "valve1_0"
    result = call_latente("anomaly", "fit", mirror / "anomaly/skab/valve1/0.csv", "--model-out", folder, "--rows", "0:400",
                          "--epochs", "1")
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, fitted, mirror):
    """Bad inputs made once: broken copies of the fitted model, a binary file, a short CSV, a comma-separated one."""
    folder = tmp_path_factory.mktemp("anomaly_inputs")
    made = {}
    for name, damage in BROKEN_MODELS.items():
        shutil.copytree(fitted, folder / name)
        config = json.loads((folder / name / "config.json").read_text())
        damage(config["preprocessing"])
        write_sealed_config(folder / name, config)
        made[name] = folder / name
    shutil.copytree(fitted, folder / "m_edited")
    edited = json.loads((folder / "m_edited" / "config.json").read_text())
    edited["preprocessing"]["threshold"] *= 2  # a valid value, but not the one fit saved
    (folder / "m_edited" / "config.json").write_text(json.dumps(edited))
    made["m_edited"] = folder / "m_edited"
    made["binary"] = folder / "plant.csv"
    made["binary"].write_bytes(bytes(range(256)) * 64)
    lines = (mirror / "anomaly/skab/valve1/0.csv").read_text().splitlines()
    made["short"] = folder / "short.csv"
    made["short"].write_text("\n".join(lines[:301]) + "\n")
    made["comma"] = folder / "comma.csv"
    made["comma"].write_text("\n".join(line.replace(";", ",") for line in lines[:301]) + "\n")
    return made


@pytest.fixture
def env(tmp_path, env_stack, fitted, inputs, mirror):  # noqa: F811
    return Env(tmp_path, env_stack, csv=mirror / "anomaly/skab/valve1/0.csv", data=mirror / "anomaly/skab/valve1",
               model=fitted, **inputs)


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(latente, bad, env, monkeypatch):
    replay(latente, bad, env, monkeypatch)


@pytest.mark.parametrize("bad", [c for c in CASES if c.id in ("chunk_rows_0", "model_out_is_a_file")])
def test_bad_input_in_a_real_process(latente_subprocess, bad, env):
    replay(latente_subprocess, bad, env)
