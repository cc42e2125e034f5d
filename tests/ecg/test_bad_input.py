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
    # rate control: at most one of --cr, --prdn, --shift (none: shift 0, the trained step)
    case("shift_41", C + " --shift 41", "--shift", "41 is out of range", "from -40 to 40", "the steps a .ltc header holds"),
    case("shift_minus_41", C + " --shift -41", "--shift", "-41 is out of range"),
    case("shift_fraction", C + " --shift 1.5", "--shift", "'1.5' is not a whole number"),
    case("shift_text", C + " --shift abc", "--shift", "'abc' is not a whole number", "from -40 to 40"),
    case("shift_empty", C + " --shift ''", "--shift", "'' is not a whole number"),
    case("shift_without_value", C + " --shift", "--shift", "needs a value"),
    case("cr_0", C + " --cr 0", "--cr", "0 is out of range", "from 1 to 1000"),
    case("cr_below_1", C + " --cr 0.5", "--cr", "0.5 is out of range"),
    case("cr_huge", C + " --cr 1e6", "--cr", "is out of range", "from 1 to 1000"),
    case("cr_nan", C + " --cr nan", "--cr", "nan is not a finite number"),
    case("cr_text", C + " --cr lots", "--cr", "'lots' is not a number"),
    case("cr_without_value", C + " --cr", "--cr", "needs a value"),
    case("prdn_negative", C + " --prdn -1", "--prdn", "-1 is out of range", "above 0 and at most 100"),
    case("prdn_0", C + " --prdn 0", "--prdn", "0 is out of range"),
    case("prdn_101", C + " --prdn 101", "--prdn", "101 is out of range"),
    case("prdn_inf", C + " --prdn inf", "--prdn", "inf is not a finite number"),
    case("cr_and_shift", C + " --cr 30 --shift 1", "--cr and --shift", "set the rate in two ways", "give one of --cr, --prdn, --shift"),
    case("cr_and_prdn", C + " --cr 30 --prdn 5", "--cr and --prdn", "set the rate in two ways"),
    case("all_three", C + " --cr 30 --prdn 5 --shift 2", "--cr and --prdn and --shift", "set the rate in two ways"),
    case("bits_is_gone", C + " --bits 6", "--bits", "no such option"),
    case("evaluate_shift_41", E + " --shift 41", "--shift", "41 is out of range"),
    case("evaluate_cr_0", E + " --cr 0", "--cr", "0 is out of range"),
    case("evaluate_prdn_negative", E + " --prdn -1", "--prdn", "-1 is out of range"),
    case("evaluate_cr_and_shift", E + " --cr 30 --shift 1", "--cr and --shift", "set the rate in two ways"),
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
    case("unknown_option", E + " --shfit 3", "--shfit", "no such option", "did you mean --shift"),
    case("unknown_command", "ecg compres", "ecg", "no such command 'compres'"),
    # .ltc files with a valid CRC but bad header fields (issue 16, cause 3): refused before any allocation
    case("ltc_shift_41", D.replace("{ltc}", "{ltc_shift_41}"), "{ltc_shift_41}", "header field shift is 41", "from -40 to 40"),
    case("ltc_shift_minus_41", D.replace("{ltc}", "{ltc_shift_minus_41}"), "{ltc_shift_minus_41}", "header field shift is -41"),
    case("ltc_gain_0", D.replace("{ltc}", "{ltc_gain_0}"), "{ltc_gain_0}", "header field gain is 0.0"),
    case("ltc_gain_nan", D.replace("{ltc}", "{ltc_gain_nan}"), "{ltc_gain_nan}", "header field gain is nan"),
    case("ltc_input_gain_0", D.replace("{ltc}", "{ltc_input_gain_0}"), "{ltc_input_gain_0}", "header field input_gain is 0.0"),
    case("ltc_input_gain_nan", D.replace("{ltc}", "{ltc_input_gain_nan}"), "{ltc_input_gain_nan}", "header field input_gain is nan"),
    case("ltc_fs_0", D.replace("{ltc}", "{ltc_fs_0}"), "{ltc_fs_0}", "header field fs is 0.0"),
    case("ltc_fs_negative", D.replace("{ltc}", "{ltc_fs_negative}"), "{ltc_fs_negative}", "header field fs is -1.0"),
    case("ltc_fs_infinite", D.replace("{ltc}", "{ltc_fs_inf}"), "{ltc_fs_inf}", "header field fs is inf"),
    case("ltc_code_length_4e9", D.replace("{ltc}", "{ltc_code_length_huge}"), "{ltc_code_length_huge}",
         "header field code_length is 4000000000"),
    case("ltc_code_length_not_the_model_s", D.replace("{ltc}", "{ltc_code_length_short}"), "{ltc_code_length_short}",
         "header field code_length", "steps with this model"),
    case("ltc_side_length_not_a_quarter", D.replace("{ltc}", "{ltc_side_length_more}"), "{ltc_side_length_more}",
         "header field side_length", "a quarter of code_length"),
    case("ltc_side_bytes_not_words", D.replace("{ltc}", "{ltc_side_odd}"), "{ltc_side_odd}",
         "header field side_bytes", "multiple of 4"),
    case("ltc_latent_bytes_not_words", D.replace("{ltc}", "{ltc_latent_odd}"), "{ltc_latent_odd}",
         "header field latent_bytes", "multiple of 4"),
    case("ltc_n_samples_4e9", D.replace("{ltc}", "{ltc_samples_huge}"), "{ltc_samples_huge}",
         "header field n_samples is 4000000000"),
    case("ltc_n_samples_0", D.replace("{ltc}", "{ltc_samples_0}"), "{ltc_samples_0}", "header field n_samples is 0"),
    case("ltc_channels_0", D.replace("{ltc}", "{ltc_channels_0}"), "{ltc_channels_0}", "header field channels is 0"),
    case("ltc_channels_not_the_model_s", D.replace("{ltc}", "{ltc_channels_more}"), "{ltc_channels_more}",
         "header field channels", "the model codes"),
    case("ltc_has_residual_2", D.replace("{ltc}", "{ltc_residual_flag_2}"), "{ltc_residual_flag_2}",
         "header field has_residual is 2"),
    case("ltc_max_error_without_residual", D.replace("{ltc}", "{ltc_max_error_alone}"), "{ltc_max_error_alone}",
         "header field max_error is 5"),
    case("ltc_residual_bytes_without_residual", D.replace("{ltc}", "{ltc_residual_bytes_alone}"),
         "{ltc_residual_bytes_alone}", "header field residual_bytes is 4"),
    case("ltc_sizes_do_not_add_up", D.replace("{ltc}", "{ltc_latent_short}"), "{ltc_latent_short}", "do not add up"),
    case("ltc_lead_name_not_utf8", D.replace("{ltc}", "{ltc_name_bytes}"), "{ltc_name_bytes}", "lead name"),
    case("ltc_version_1", D.replace("{ltc}", "{ltc_version_1}"), "{ltc_version_1}", "format version 1 is not supported",
         "1: factorized prior"),
    case("ltc_version_2", D.replace("{ltc}", "{ltc_version_2}"), "{ltc_version_2}", "format version 2 is not supported",
         "2: unnormalised leads"),
    case("ltc_version_4", D.replace("{ltc}", "{ltc_version_4}"), "{ltc_version_4}", "format version 4 is not supported",
         "newer latente"),
]

CRAFTED = {
    "ltc_shift_41": {"shift": 41}, "ltc_shift_minus_41": {"shift": -41}, "ltc_gain_0": {"gain": 0.0},
    "ltc_gain_nan": {"gain": float("nan")}, "ltc_fs_0": {"fs": 0.0}, "ltc_fs_negative": {"fs": -1.0}, "ltc_fs_inf": {"fs": float("inf")},
    "ltc_code_length_huge": {"code_length": 4_000_000_000},
    # one side step fewer (code_length and side_length both consistent with each other), not what n_samples codes to
    "ltc_code_length_short": {"code_length": lambda f: f["code_length"] - 4, "side_length": lambda f: f["side_length"] - 1},
    "ltc_side_length_more": {"side_length": lambda f: f["side_length"] + 1},
    "ltc_side_odd": {"side_bytes": lambda f: f["side_bytes"] + 1}, "ltc_latent_odd": {"latent_bytes": lambda f: f["latent_bytes"] + 1},
    "ltc_samples_huge": {"n_samples": 4_000_000_000}, "ltc_samples_0": {"n_samples": 0},
    "ltc_channels_0": {"channels": 0}, "ltc_channels_more": {"channels": lambda f: f["channels"] + 1},
    "ltc_residual_flag_2": {"has_residual": 2}, "ltc_max_error_alone": {"max_error": 5},
    "ltc_residual_bytes_alone": {"residual_bytes": 4}, "ltc_latent_short": {"latent_bytes": lambda f: f["latent_bytes"] - 4},
    "ltc_name_bytes": {"name_byte": 0xFF}, "ltc_version_1": {"version": 1}, "ltc_version_2": {"version": 2},
    "ltc_version_4": {"version": 4}, "ltc_input_gain_0": {"input_gain": 0.0}, "ltc_input_gain_nan": {"input_gain": float("nan")},
}


@pytest.fixture(scope="module")
def compressed(tiny_codec, mirror, tmp_path_factory):
    """A real .ltc file of record 100 written by the tiny codec."""
    out = tmp_path_factory.mktemp("ltc") / "r100.ltc"
    result = call_latente("ecg", "compress", mirror / "ecg/records/100", out, "--model", tiny_codec, "--lead", "MLII")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def crafted(compressed, recode, tmp_path_factory):
    """The real .ltc with one header field changed each, CRC recomputed."""
    folder = tmp_path_factory.mktemp("crafted")
    data = compressed.read_bytes()
    for name, changes in CRAFTED.items():
        (folder / f"{name}.ltc").write_bytes(recode(data, **changes))
    return {name: folder / f"{name}.ltc" for name in CRAFTED}


@pytest.fixture
def env(tmp_path, env_stack, tiny_codec, compressed, crafted, mirror):  # noqa: F811
    (tmp_path / "kept.hea").write_text("precious header\n")
    return Env(tmp_path, env_stack, model=tiny_codec, ltc=compressed, records=mirror / "ecg/records",
               record=mirror / "ecg/records/100", **crafted)


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(latente, bad, env, monkeypatch):
    replay(latente, bad, env, monkeypatch)


@pytest.mark.parametrize("bad", [c for c in CASES if c.id in ("cr_and_shift", "out_parent_is_a_file", "record_is_compressed")])
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
