"""Every bad `latente ecg` command line of issue 16 (and its neighbours): one `error:` line, exit 2,
no traceback, no partial or clobbered file (tests/bad_input.py). In-process for speed; a few cases
also through the real `latente` process."""
from __future__ import annotations

import shutil

import pytest

from bad_input import Env, case, env_stack, replay  # noqa: F401  (env_stack is a fixture)
from conftest import call_latente

C = "ecg compress {record} {tmp}/o.ltc --model {model}"  # a good command line, but for what each case adds
D = "ecg decompress {ltc} {tmp}/dec --model {model}"
E = "ecg evaluate --records {records} --names 100 --model {model}"

CASES = [
    # --bits: what an ECG codec supports (AutoencoderConfig.code_bits, 2..16)
    case("bits_64", C + " --bits 64", "--bits", "64 is out of range", "from 2 to 16"),
    case("bits_0", C + " --bits 0", "--bits", "0 is out of range"),
    case("bits_negative", C + " --bits -3", "--bits", "-3 is out of range"),
    case("bits_1", C + " --bits 1", "--bits", "1 is out of range"),
    case("bits_17", C + " --bits 17", "--bits", "17 is out of range"),
    case("bits_text", C + " --bits abc", "--bits", "'abc' is not a whole number", "from 2 to 16"),
    case("bits_fraction", C + " --bits 2.5", "--bits", "'2.5' is not a whole number"),
    case("bits_empty", C + " --bits ''", "--bits", "'' is not a whole number"),
    case("bits_without_value", C + " --bits", "--bits", "needs a value"),
    case("evaluate_bits_64", E + " --bits 64", "--bits", "64 is out of range"),
    # --max-error: ADC units, 0..2047
    case("max_error_negative", C + " --max-error -1", "--max-error", "-1 is out of range", "from 0 to 2047"),
    case("max_error_huge", C + " --max-error 100000000", "--max-error", "100000000 is out of range"),
    case("max_error_2048", C + " --max-error 2048", "--max-error", "2048 is out of range"),
    case("max_error_text", C + " --max-error lots", "--max-error", "'lots' is not a whole number"),
    case("evaluate_max_error_negative", E + " --max-error -1", "--max-error", "-1 is out of range"),
    # OUT: checked before the model is loaded and the record read
    case("out_is_a_folder", "ecg compress {record} {dir} --model {model}", "{dir}", "is a folder"),
    case("out_parent_is_a_file", "ecg compress {record} {file}/o.ltc --model {model}", "{file}", "is a file, not a folder"),
    case("out_grandparent_is_a_file", "ecg compress {record} {file}/sub/o.ltc --model {model}", "{file}", "is a file, not a folder"),
    case("out_in_read_only_folder", "ecg compress {record} {ro}/o.ltc --model {model}", "{ro}", "not writable"),
    case("out_exists", "ecg compress {record} {existing} --model {model}", "{existing}", "already exists", "--force"),
    case("no_force_is_gone", C + " --no-force", "--no-force", "no such option"),
    case("out_missing", "ecg compress {record}", "OUT", "required"),
    case("extra_argument", C + " extra", "ecg compress", "unexpected extra argument"),
    # RECORD
    case("record_is_a_folder", "ecg compress {dir} {tmp}/o.ltc --model {model}", "{dir}", "is a folder, not a WFDB record"),
    case("record_is_compressed", "ecg compress {ltc} {tmp}/o.ltc --model {model}", "{ltc}", "is a compressed file, not a WFDB record",
         "latente ecg decompress"),
    case("record_missing", "ecg compress {missing} {tmp}/o.ltc --model {model}", "missing.hea", "not found"),
    # --model
    case("model_is_a_file", C.replace("{model}", "{file}"), "{file}", "is a file, not a model folder"),
    case("model_missing", C.replace("{model}", "{missing}"), "{missing}", "model folder not found"),
    case("default_model_nowhere", "ecg compress {record} {tmp}/o.ltc", "--model", "models/ecg/A",
         "neither in the current folder", "nor in the latente project folder", outside=True),
    # decompress
    case("decompress_input_is_a_folder", "ecg decompress {dir} {tmp}/dec --model {model}", "{dir}", "is a folder, not a compressed file"),
    case("decompress_input_missing", "ecg decompress {missing} {tmp}/dec --model {model}", "{missing}", "compressed file not found"),
    case("decompress_out_is_a_folder", "ecg decompress {ltc} {dir} --model {model}", "{dir}", "is a folder", "decoded.hea"),
    case("decompress_out_exists", "ecg decompress {ltc} {tmp}/kept --model {model}", "kept.hea", "already exists", "--force"),
    case("decompress_out_parent_is_a_file", "ecg decompress {ltc} {file}/dec --model {model}", "{file}", "is a file, not a folder"),
    case("decompress_out_read_only", "ecg decompress {ltc} {ro}/dec --model {model}", "{ro}", "not writable"),
    case("decompress_no_force_is_gone", D + " --no-force", "--no-force", "no such option"),
    # evaluate --records
    case("records_is_a_header", "ecg evaluate --records {records}/100.hea --model {model}", "100.hea", "is a file, not a folder",
         "--names 100"),
    case("records_missing", "ecg evaluate --records {missing} --model {model}", "{missing}", "not found"),
    case("records_not_given", "ecg evaluate --model {model}", "--records", "required"),
    case("unknown_option", E + " --bitz 3", "--bitz", "no such option", "--bits"),
    case("unknown_command", "ecg compres", "ecg", "no such command 'compres'"),
]


@pytest.fixture(scope="module")
def compressed(tiny_codec, mirror, tmp_path_factory):
    """A real .ltc file of record 100 written by the tiny codec."""
    out = tmp_path_factory.mktemp("ltc") / "r100.ltc"
    result = call_latente("ecg", "compress", mirror / "ecg/records/100", out, "--model", tiny_codec, "--lead", "MLII")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def env(tmp_path, env_stack, tiny_codec, compressed, mirror):  # noqa: F811
    (tmp_path / "kept.hea").write_text("precious header\n")
    return Env(tmp_path, env_stack, model=tiny_codec, ltc=compressed, records=mirror / "ecg/records",
               record=mirror / "ecg/records/100")


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(latente, bad, env, monkeypatch):
    replay(latente, bad, env, monkeypatch)


@pytest.mark.parametrize("bad", [c for c in CASES if c.id in ("bits_64", "out_parent_is_a_file", "record_is_compressed")])
def test_bad_input_in_a_real_process(latente_subprocess, bad, env):
    replay(latente_subprocess, bad, env)


def test_default_model_found_from_any_folder(latente, tiny_codec, compressed, tmp_path, monkeypatch):
    """`--model` left out, run from another folder: the default models/ecg/A is found in the project folder."""
    from latente.shared import cli as shared_cli

    root = tmp_path / "project"
    shutil.copytree(tiny_codec, root / "models/ecg/A")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setattr(shared_cli, "PROJECT_ROOT", root)
    result = latente("ecg", "decompress", compressed, tmp_path / "dec")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dec.hea").is_file() and (tmp_path / "dec.dat").is_file()
