"""The learned codec: its model config hook, and the .ltc file format (exact header, bounded error
with a residual, corruption rejected)."""
import struct
import zlib

import numpy as np
import pytest
import torch
import wfdb

from latente.domains.ecg import model as codec
from latente.domains.ecg.data import write_lead
from latente.domains.ecg.params import CodecVariant, TrainParams
from latente.domains.ecg.training import codec_configs
from latente.shared.errors import UserError
from latente.shared.models import AutoencoderConfig
from tiny import ECG


def test_model_config_sets_one_lead_and_each_variants_rate_weight():
    base = AutoencoderConfig.model_validate({**ECG["train"]["model"], "in_channels": 3, "spatial_dims": 2, "strides": [2, 2]})
    config = codec.model_config(base, CodecVariant(rate_weight=0.5))
    assert (config.spatial_dims, config.in_channels, config.rate_weight) == (1, 1, 0.5)
    assert config.model_dump(exclude={"spatial_dims", "in_channels", "rate_weight"}) == base.model_dump(exclude={"spatial_dims", "in_channels", "rate_weight"})
    assert codec.model_config(base).rate_weight == base.rate_weight


def test_one_codec_per_variant_or_one_default():
    params = TrainParams.model_validate({**ECG["train"], "variants": {"A": {"rate_weight": 0.004}, "B": {"rate_weight": 0.015}}})
    configs = codec_configs(params)
    assert list(configs) == ["A", "B"] and [c.rate_weight for c in configs.values()] == [0.004, 0.015]
    assert list(codec_configs(params.model_copy(update={"variants": {}}))) == ["default"]


def test_a_codec_needs_code_bits():
    with pytest.raises(UserError, match="code_bits"):
        codec.model_config(AutoencoderConfig(name="conv_ae"))


def test_header_fields_read_back_exactly(loaded_codec, lead):
    data = codec.compress(loaded_codec, lead, bits=6)
    header, offset = codec.read_header(data)
    # record 100's header (100.hea): 360 Hz, gain 200 ADC units per mV, baseline 1024
    assert (header.version, header.fs, header.gain, header.baseline, header.n_samples) == (codec.FORMAT_VERSION, 360.0, 200.0, 1024, len(lead.adc))
    config = loaded_codec.model.config
    assert (header.bits, header.channels, header.max_error, header.has_residual) == (6, config.latent_channels, 0, False)
    assert header.code_length == -(-len(lead.adc) // config.downsampling)
    assert header.model_id == codec.model_id(loaded_codec)
    assert (header.lead_name, header.units) == ("MLII", "mV")
    assert offset + header.latent_bytes + header.residual_bytes + 4 == len(data)


def test_round_trip_is_deterministic_and_close(loaded_codec, lead):
    data = codec.compress(loaded_codec, lead, bits=6)
    assert data == codec.compress(loaded_codec, lead, bits=6)
    decoded = codec.decompress(loaded_codec, data)
    assert decoded.adc.shape == lead.adc.shape and decoded.name == "MLII"
    # the decoder side reproduces exactly what the encoder's network computes
    symbols = codec.encode_symbols(loaded_codec, lead, 5)
    assert np.array_equal(decoded.adc, codec.decode_symbols(loaded_codec, symbols, len(lead.adc), 200.0, 1024))


@pytest.mark.parametrize("max_error", [1, 4, 12])
def test_residual_guarantees_the_error_bound(loaded_codec, lead, max_error):
    data = codec.compress(loaded_codec, lead, bits=6, max_error=max_error)
    decoded = codec.decompress(loaded_codec, data)
    assert np.abs(decoded.adc - lead.adc).max() <= max_error
    header, _ = codec.read_header(data)
    assert header.has_residual and header.max_error == max_error


def test_coded_size_matches_the_models_rate(loaded_codec, lead):
    """The range coder spends what the learned prior says: Σ −log2 P(symbol), within a few bytes."""
    symbols = codec.encode_symbols(loaded_codec, lead, 6)
    with torch.no_grad():
        ideal_bits = loaded_codec.model.code_bits_needed(torch.from_numpy(symbols).float().unsqueeze(0)).sum().item()
    header, _ = codec.read_header(codec.compress(loaded_codec, lead, bits=6))
    # tolerance: 1 % of the ideal size, plus the coder's final flush (two 32-bit words)
    assert abs(header.latent_bytes * 8 - ideal_bits) < 0.01 * ideal_bits + 64


def test_symbols_are_clipped_to_the_bit_depth(loaded_codec, lead):
    symbols = codec.encode_symbols(loaded_codec, lead, 2)
    assert symbols.min() >= -2 and symbols.max() <= 1  # 2 bits, two's complement: −2 … 1


def test_range_coding_beats_raw_bits(loaded_codec, lead):
    data = codec.compress(loaded_codec, lead, bits=6)
    header, _ = codec.read_header(data)
    assert header.latent_bytes * 8 < 6 * header.channels * header.code_length


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic"])
def test_damaged_files_are_rejected(loaded_codec, lead, damage):
    data = bytearray(codec.compress(loaded_codec, lead, bits=6))
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data[0:4] = b"XXXX"
    with pytest.raises(UserError, match="checksum mismatch|not a latente ECG file"):
        codec.decompress(loaded_codec, bytes(data), source="x.ltc")


def test_unknown_version_is_rejected(loaded_codec, lead):
    data = bytearray(codec.compress(loaded_codec, lead, bits=6))
    data[4] = 9
    body = bytes(data[:-4])
    with pytest.raises(UserError, match="format version 9"):
        codec.read_header(body + struct.pack("<I", zlib.crc32(body)))


def test_other_model_is_refused(loaded_codec, lead):
    data = codec.compress(loaded_codec, lead, bits=6)
    fixed = codec._FIXED.unpack(data[: codec._FIXED.size])
    forged = codec._FIXED.pack(*fixed[:11], b"\x00" * 16, *fixed[12:]) + data[codec._FIXED.size : -4]
    forged += struct.pack("<I", zlib.crc32(forged))
    with pytest.raises(UserError, match="was written by model 000000"):
        codec.decompress(loaded_codec, forged)


def test_decoded_record_is_readable_by_wfdb(loaded_codec, lead, tmp_path):
    decoded = codec.decompress(loaded_codec, codec.compress(loaded_codec, lead, bits=6), record="out")
    stem = write_lead(decoded, tmp_path / "out")
    rec = wfdb.rdrecord(str(stem), physical=False)
    assert rec.fs == 360 and rec.sig_name == ["MLII"] and rec.adc_gain == [200.0] and rec.baseline == [1024]
    assert np.array_equal(rec.d_signal[:, 0], decoded.adc)

