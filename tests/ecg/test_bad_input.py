"""Every bad `latente ecg` command line of issue 16 (and its neighbours): one `error:` line, exit 2,
no traceback, no partial or clobbered file (tests/bad_input.py). In-process for speed; a few cases
also through the real `latente` process."""
from __future__ import annotations

import shutil
import struct
import zlib

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
    # .ltc files with a valid CRC but bad header fields (issue 16, cause 3): refused before any allocation
    case("ltc_bits_0", D.replace("{ltc}", "{ltc_bits_0}"), "{ltc_bits_0}", "header field bits is 0", "from 2 to 16"),
    case("ltc_bits_17", D.replace("{ltc}", "{ltc_bits_17}"), "{ltc_bits_17}", "header field bits is 17"),
    case("ltc_gain_0", D.replace("{ltc}", "{ltc_gain_0}"), "{ltc_gain_0}", "header field gain is 0.0"),
    case("ltc_gain_nan", D.replace("{ltc}", "{ltc_gain_nan}"), "{ltc_gain_nan}", "header field gain is nan"),
    case("ltc_fs_negative", D.replace("{ltc}", "{ltc_fs_negative}"), "{ltc_fs_negative}", "header field fs is -1.0"),
    case("ltc_fs_infinite", D.replace("{ltc}", "{ltc_fs_inf}"), "{ltc_fs_inf}", "header field fs is inf"),
    case("ltc_code_length_4e9", D.replace("{ltc}", "{ltc_code_length_huge}"), "{ltc_code_length_huge}",
         "header field code_length is 4000000000"),
    case("ltc_code_length_off_by_one", D.replace("{ltc}", "{ltc_code_length_short}"), "{ltc_code_length_short}",
         "header field code_length", "steps with this model"),
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
    case("ltc_version_2", D.replace("{ltc}", "{ltc_version_2}"), "{ltc_version_2}", "format version 2 is not supported"),
]

_FIELDS = ("magic", "version", "has_residual", "fs", "gain", "baseline", "n_samples", "bits", "channels", "code_length",
           "max_error", "model_id", "latent_bytes", "residual_bytes", "residual_scale")  # domains/ecg/model.py's _FIXED
_FIXED = struct.Struct("<4sBBffiIBBIH16sIIf")


def recoded(data: bytes, name_byte: int | None = None, **changes) -> bytes:
    """`data` (a real .ltc) with header fields changed and a valid CRC, as a crafted file would have."""
    fields = dict(zip(_FIELDS, _FIXED.unpack(data[:_FIXED.size])))
    fields.update({k: (v(fields) if callable(v) else v) for k, v in changes.items()})
    rest = bytearray(data[_FIXED.size:-4])
    if name_byte is not None:
        rest[1] = name_byte  # the first byte of the lead name (after its length byte)
    body = _FIXED.pack(*fields.values()) + bytes(rest)
    return body + struct.pack("<I", zlib.crc32(body))


CRAFTED = {
    "ltc_bits_0": {"bits": 0}, "ltc_bits_17": {"bits": 17}, "ltc_gain_0": {"gain": 0.0},
    "ltc_gain_nan": {"gain": float("nan")}, "ltc_fs_negative": {"fs": -1.0}, "ltc_fs_inf": {"fs": float("inf")},
    "ltc_code_length_huge": {"code_length": 4_000_000_000}, "ltc_code_length_short": {"code_length": lambda f: f["code_length"] - 1},
    "ltc_latent_odd": {"latent_bytes": lambda f: f["latent_bytes"] + 1}, "ltc_samples_huge": {"n_samples": 4_000_000_000},
    "ltc_samples_0": {"n_samples": 0}, "ltc_channels_0": {"channels": 0}, "ltc_channels_more": {"channels": lambda f: f["channels"] + 1},
    "ltc_residual_flag_2": {"has_residual": 2}, "ltc_max_error_alone": {"max_error": 5},
    "ltc_residual_bytes_alone": {"residual_bytes": 4}, "ltc_latent_short": {"latent_bytes": lambda f: f["latent_bytes"] - 4},
    "ltc_name_bytes": {"name_byte": 0xFF}, "ltc_version_2": {"version": 2},
}


@pytest.fixture(scope="module")
def compressed(tiny_codec, mirror, tmp_path_factory):
    """A real .ltc file of record 100 written by the tiny codec."""
    out = tmp_path_factory.mktemp("ltc") / "r100.ltc"
    result = call_latente("ecg", "compress", mirror / "ecg/records/100", out, "--model", tiny_codec, "--lead", "MLII")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def crafted(compressed, tmp_path_factory):
    """The real .ltc with one header field changed each, CRC recomputed."""
    folder = tmp_path_factory.mktemp("crafted")
    data = compressed.read_bytes()
    for name, changes in CRAFTED.items():
        (folder / f"{name}.ltc").write_bytes(recoded(data, **changes))
    return {name: folder / f"{name}.ltc" for name in CRAFTED}


@pytest.fixture
def env(tmp_path, env_stack, tiny_codec, compressed, crafted, mirror):  # noqa: F811
    (tmp_path / "kept.hea").write_text("precious header\n")
    return Env(tmp_path, env_stack, model=tiny_codec, ltc=compressed, records=mirror / "ecg/records",
               record=mirror / "ecg/records/100", **crafted)


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
