"""Every bad `latente speech` command line of issue 16 (and its neighbours): one `error:` line, exit 2,
no traceback, no partial or clobbered file (tests/bad_input.py). The inputs, the output and `--snr`
are checked before the model is loaded, so most cases need no trained model; `{model}` is an empty
folder, which the loader refuses by name."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from bad_input import Env, case, env_stack, replay  # noqa: F401  (env_stack is a fixture)

EM = "speech embed {wav} --out {tmp}/codes.csv --model {model}"
EV = "speech evaluate --data {data} --model {model}"

CASES = [
    # embed --out: checked before the model is loaded
    case("out_is_a_folder", "speech embed {wav} --out {dir} --model {model}", "{dir}", "is a folder"),
    case("out_parent_is_a_file", "speech embed {wav} --out {file}/codes.csv --model {model}", "{file}", "is a file, not a folder"),
    case("out_in_read_only_folder", "speech embed {wav} --out {ro}/codes.csv --model {model}", "{ro}", "not writable"),
    case("out_exists", "speech embed {wav} --out {existing} --model {model}", "{existing}", "already exists", "--force"),
    case("no_force_is_gone", EM + " --no-force", "--no-force", "no such option"),
    case("out_not_given", "speech embed {wav} --model {model}", "--out", "required"),
    # embed's inputs
    case("input_missing", "speech embed {missing} --out {tmp}/codes.csv --model {model}", "{missing}", "file not found"),
    case("input_folder_without_wav", "speech embed {dir} --out {tmp}/codes.csv --model {model}", "{dir}", "holds no .wav files"),
    case("no_input", "speech embed --out {tmp}/codes.csv --model {model}", "INPUTS", "required"),
    # --model
    case("model_is_a_file", EM.replace("{model}", "{file}"), "{file}", "is a file, not a model folder"),
    case("model_missing", EM.replace("{model}", "{missing}"), "{missing}", "model folder not found"),
    case("model_folder_empty", EM, "config.json", "not found"),
    case("default_model_nowhere", "speech embed {wav} --out {tmp}/codes.csv", "--model", "models/speech",
         "neither in the current folder", outside=True),
    # evaluate --snr: finite dB, at most ±100
    case("snr_nan", EV + " --snr nan", "--snr", "nan is not a finite number", "from -100 to 100"),
    case("snr_inf", EV + " --snr inf", "--snr", "inf is not a finite number"),
    case("snr_minus_inf", EV + " --snr -inf", "--snr", "-inf is not a finite number"),
    case("snr_text", EV + " --snr loud", "--snr", "'loud' is not a number"),
    case("snr_1000", EV + " --snr 1000", "--snr", "1000 is out of range"),
    case("snr_huge_negative", EV + " --snr -1e9", "--snr", "out of range"),
    case("snr_second_value_nan", EV + " --snr 10 --snr nan", "--snr", "nan is not a finite number"),
    case("snr_without_value", EV + " --snr", "--snr", "needs a value"),
    # evaluate's inputs
    case("data_missing", "speech evaluate --data {missing} --model {model}", "{missing}", "not found"),
    case("data_is_a_file", "speech evaluate --data {wav} --model {model}", "{wav}", "is a file, not a folder"),
    case("data_not_given", "speech evaluate --model {model}", "--data", "required"),
    case("labels_is_a_folder", EV + " --labels {dir}", "{dir}", "is a folder, not a CSV file"),
    case("labels_missing", EV + " --labels {missing}", "{missing}", "CSV file not found"),
    case("pattern_not_a_regex", EV + " --pattern (?P<label>", "--pattern", "not a valid regular expression"),
    case("pattern_without_groups", EV + " --pattern abc", "--pattern", "(?P<label>"),
    case("evaluate_model_is_a_file", EV.replace("{model}", "{file}"), "{file}", "is a file, not a model folder"),
    case("unknown_option", EV + " --snrs 3", "--snrs", "no such option", "--snr"),
]


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """A real (short) WAV file in a folder of its own."""
    folder = tmp_path_factory.mktemp("speech_in")
    t = np.arange(4000) / 8000
    sf.write(folder / "3_theo_0.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    return folder


@pytest.fixture
def env(tmp_path, env_stack, audio):  # noqa: F811
    (tmp_path / "empty_model").mkdir()
    return Env(tmp_path, env_stack, wav=audio / "3_theo_0.wav", data=audio, model=tmp_path / "empty_model")


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(latente, bad, env, monkeypatch):
    replay(latente, bad, env, monkeypatch)


@pytest.mark.parametrize("bad", [c for c in CASES if c.id in ("snr_nan", "out_exists")])
def test_bad_input_in_a_real_process(latente_subprocess, bad, env):
    replay(latente_subprocess, bad, env)
