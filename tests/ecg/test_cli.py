"""`latente ecg ...` end to end on real MIT-BIH records, and every bad input of the issue."""
import json
import shutil

import numpy as np
import pytest
import wfdb

from conftest import assert_user_error
from latente.domains.ecg import model as codec
from latente.domains.ecg.data import read_lead
from latente.domains.ecg.evaluation import shift_for_cr, shift_for_prdn
from latente.domains.ecg.metrics import compression_ratio
from latente.shared.models import build_model, save_model


def test_compress_decompress_round_trip(latente_subprocess, tiny_codec, short_record, tmp_path):
    latente = latente_subprocess  # one real end-to-end run of the installed entry point
    out = tmp_path / "r100.ltc"
    result = latente("ecg", "compress", short_record, out, "--model", tiny_codec, "--lead", "MLII", "--max-error", "5")
    assert result.returncode == 0, result.stderr
    assert "CR" in result.stderr and out.stat().st_size > 0
    result = latente("ecg", "decompress", out, tmp_path / "decoded", "--model", tiny_codec)
    assert result.returncode == 0, result.stderr
    rec = wfdb.rdrecord(str(tmp_path / "decoded"), physical=False)
    original = read_lead(short_record, "MLII")
    assert rec.sig_name == ["MLII"] and np.abs(rec.d_signal[:, 0] - original.adc).max() <= 5


@pytest.mark.parametrize("option", ["none", "--shift", "--cr", "--prdn"])
def test_rate_control_options_choose_the_files_step(latente, tiny_codec, loaded_codec, short_record, tmp_path, option):
    """No option: shift 0; --shift N: N; --cr X / --prdn X: what rate control (evaluation.py) chooses for this record."""
    lead = read_lead(short_record, "MLII")
    expected = {"none": 0, "--shift": 3, "--cr": shift_for_cr(loaded_codec, lead, 20.0), "--prdn": shift_for_prdn(loaded_codec, lead, 60.0)}[option]
    value = {"none": None, "--shift": "3", "--cr": "20", "--prdn": "60"}[option]
    out = tmp_path / "r.ltc"
    result = latente("ecg", "compress", short_record, out, "--model", tiny_codec, "--lead", "MLII", *([option, value] if value else []))
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    header, _ = codec.read_header(data)
    assert header.shift == expected and f"shift {expected} " in result.stderr
    assert f"{len(data)} bytes, CR {compression_ratio(len(lead.adc), len(data)):.2f}" in result.stderr
    if option == "--cr":
        assert compression_ratio(len(lead.adc), len(data)) >= 20.0


def test_evaluate_prints_results_json(latente, tiny_codec, short_record):
    result = latente("ecg", "evaluate", "--records", short_record.parent, "--names", short_record.name,
                     "--model", tiny_codec, "--lead", "MLII", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["domain"] == "ecg" and data["data"]["items"] == ["r100"]
    model = next(r for r in data["results"] if r["method"] == "model" and "record" not in r["condition"])
    wavelet = next(r for r in data["results"] if r["method"] == "wavelet" and "record" not in r["condition"])
    assert set(model["metrics"]) >= {"cr", "prd", "prdn", "snr", "qs"}
    assert abs(wavelet["metrics"]["cr"] - model["metrics"]["cr"]) / model["metrics"]["cr"] < 0.05  # matched CR
    per_record = next(r for r in data["results"] if r["method"] == "model" and r["condition"].get("record") == "r100")
    assert per_record["metrics"]["shift"] == 0  # no rate option: the step the model trained at
    assert "shift" not in model["metrics"]  # a step is chosen per record; the mean row has none


def test_evaluate_with_a_target_cr(latente, tiny_codec, loaded_codec, short_record):
    result = latente("ecg", "evaluate", "--records", short_record.parent, "--names", short_record.name,
                     "--model", tiny_codec, "--lead", "MLII", "--cr", "20", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["results"]
    model = next(r for r in rows if r["method"] == "model" and r["condition"] == {"operating_point": tiny_codec.name, "record": "r100"})
    assert model["metrics"]["cr"] >= 20.0
    assert model["metrics"]["shift"] == shift_for_cr(loaded_codec, read_lead(short_record, "MLII"), 20.0)


def test_existing_output_is_refused_without_force(latente, tiny_codec, short_record, tmp_path):
    out = tmp_path / "x.ltc"
    out.write_bytes(b"precious")
    assert_user_error(latente("ecg", "compress", short_record, out, "--model", tiny_codec), str(out), "already exists", "--force")
    assert out.read_bytes() == b"precious"
    assert latente("ecg", "compress", short_record, out, "--model", tiny_codec, "--force").returncode == 0


def test_unknown_lead(latente, tiny_codec, short_record, tmp_path):
    result = latente("ecg", "compress", short_record, tmp_path / "x.ltc", "--model", tiny_codec, "--lead", "V9")
    assert_user_error(result, "r100.hea", "no lead named 'V9'", "MLII, V5")
    assert not (tmp_path / "x.ltc").exists()


def test_missing_and_corrupt_record_files(latente, tiny_codec, short_record, tmp_path):
    assert_user_error(latente("ecg", "compress", tmp_path / "nope", tmp_path / "a.ltc", "--model", tiny_codec), "nope.hea", "not found")
    short_record.with_suffix(".dat").unlink()
    assert_user_error(latente("ecg", "compress", short_record, tmp_path / "b.ltc", "--model", tiny_codec), "r100.dat")
    bad = tmp_path / "bad"
    bad.with_suffix(".hea").write_text("this is not a header\n")
    assert_user_error(latente("ecg", "compress", bad, tmp_path / "c.ltc", "--model", tiny_codec), "bad.hea", "not a readable WFDB record")
    assert not any(tmp_path.glob("*.ltc"))


def test_record_shorter_than_one_window(latente, tiny_codec, crop_record, tmp_path):
    stem = crop_record("tiny", 0.5)
    assert_user_error(latente("ecg", "compress", stem, tmp_path / "t.ltc", "--model", tiny_codec), "tiny.dat", "fewer than one window")


def test_nan_samples(latente, tiny_codec, tmp_path):
    signal = np.sin(np.linspace(0, 60, 3600)).reshape(-1, 1)
    signal[1000] = np.nan
    wfdb.wrsamp("nan", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["16"], adc_gain=[200], baseline=[1024], write_dir=str(tmp_path))
    assert_user_error(latente("ecg", "compress", tmp_path / "nan", tmp_path / "n.ltc", "--model", tiny_codec), "nan.dat", "NaN", "sample 1000")


def test_damaged_compressed_file(latente, tiny_codec, short_record, tmp_path):
    out = tmp_path / "r.ltc"
    assert latente("ecg", "compress", short_record, out, "--model", tiny_codec).returncode == 0
    out.write_bytes(out.read_bytes()[:-20])
    assert_user_error(latente("ecg", "decompress", out, tmp_path / "dec", "--model", tiny_codec), "r.ltc", "checksum mismatch")
    assert not list(tmp_path.glob("dec*"))


def test_model_folder_of_another_domain(latente, short_record, tmp_path):
    folder = save_model(build_model({"name": "conv_ae"}), tmp_path / "mri_model", domain="mri", preprocessing={}, data={})
    assert_user_error(latente("ecg", "compress", short_record, tmp_path / "x.ltc", "--model", folder), "mri_model", "is a 'mri' model, not a 'ecg' model")


def test_decoded_output_not_clobbered(latente, tiny_codec, short_record, tmp_path):
    out = tmp_path / "r.ltc"
    assert latente("ecg", "compress", short_record, out, "--model", tiny_codec).returncode == 0
    shutil.copy(short_record.with_suffix(".hea"), tmp_path / "dec.hea")
    assert_user_error(latente("ecg", "decompress", out, tmp_path / "dec", "--model", tiny_codec), "dec.hea", "already exists")
