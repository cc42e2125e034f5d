"""Every bad `latente anomaly` command line of issue 16 (and its neighbours): one `error:` line, exit 2,
no traceback, no partial or clobbered file (tests/bad_input.py). Numbers are checked while the
command line is parsed; the CSV, the model folder and the outputs before any row is read."""
from __future__ import annotations

import pytest

from bad_input import Env, case, env_stack, replay  # noqa: F401  (env_stack is a fixture)
from conftest import call_latente

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
]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, mirror):
    """A real detector, fitted in 1 epoch on rows 0:400 of valve1/0.csv."""
    folder = tmp_path_factory.mktemp("anomaly_model") / "valve1_0"
    result = call_latente("anomaly", "fit", mirror / "anomaly/skab/valve1/0.csv", "--model-out", folder, "--rows", "0:400",
                          "--epochs", "1")
    assert result.returncode == 0, result.stderr
    return folder


@pytest.fixture
def env(tmp_path, env_stack, fitted, mirror):  # noqa: F811
    return Env(tmp_path, env_stack, csv=mirror / "anomaly/skab/valve1/0.csv", data=mirror / "anomaly/skab/valve1", model=fitted)


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(latente, bad, env, monkeypatch):
    replay(latente, bad, env, monkeypatch)


@pytest.mark.parametrize("bad", [c for c in CASES if c.id in ("chunk_rows_0", "model_out_is_a_file")])
def test_bad_input_in_a_real_process(latente_subprocess, bad, env):
    replay(latente_subprocess, bad, env)
