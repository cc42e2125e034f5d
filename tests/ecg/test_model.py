"""The learned codec: its transforms and params, the .ltc file format (exact header, bounded error with a
residual, every damaged file rejected), rate control, and a bitstream that the float parts of the
decoder cannot change."""
import copy
import dataclasses

import numpy as np
import pydantic
import pytest
import torch
import wfdb

from latente.domains.ecg import model as codec
from latente.domains.ecg.data import Lead, aami_class, normalising_gain, write_lead
from latente.domains.ecg.evaluation import Codec, point_label, shift_for_cr, shift_for_prdn
from latente.domains.ecg.metrics import compression_ratio, prdn
from latente.domains.ecg.params import SHIFT_LIMIT, OperatingPoint
from latente.shared.errors import UserError
from latente.shared.models import AutoencoderConfig, build_model, save_model
from latente.shared.models.entropy import decode_grouped
from tiny import ECG


def short(lead, samples: int = 360):
    """The first `samples` of a lead (a copy: the `lead` fixture is shared by the session)."""
    return dataclasses.replace(lead, adc=lead.adc[:samples].copy())


def decoded_at(loaded, lead, shift: int) -> np.ndarray:
    """What the decoder makes of `lead` coded at `shift` without a residual (no file needed: the same symbols)."""
    analysis = codec.analyse(loaded, lead)
    symbols, _ = codec.latent_symbols(loaded, analysis, shift)
    return codec.reconstruct(loaded, symbols, shift, analysis.input_gain, len(lead.adc), lead.gain, lead.baseline)


# --- the codec's config and params -------------------------------------------------------------
def test_transform_config_is_one_lead_and_leaves_the_coding_to_the_hyperprior():
    base = AutoencoderConfig.model_validate({**ECG["train"]["model"], "in_channels": 3, "spatial_dims": 2})
    config = codec.transform_config(base)
    assert (config.spatial_dims, config.in_channels) == (1, 1)
    assert config.model_dump(exclude={"spatial_dims", "in_channels"}) == base.model_dump(exclude={"spatial_dims", "in_channels"})
    with pytest.raises(UserError, match="ecg.train.model.name: is dense_ae"):
        codec.transform_config(AutoencoderConfig(name="dense_ae", latent_dim=8))
    with pytest.raises(UserError, match="fully convolutional"):
        codec.transform_config(AutoencoderConfig(name="conv_ae", latent_dim=8))


@pytest.mark.parametrize("given", [{"cr": 30}, {"prdn": 8.0}, {"shift": -3}, {"shift": 0}])
def test_operating_point_takes_one_rate_setting(given):
    point = OperatingPoint(model="A", **given)
    assert {k: v for k, v in point.model_dump().items() if k in ("cr", "prdn", "shift") and v is not None} == given
    assert point_label(point) == "A " + {"cr": "CR 30", "prdn": "PRDN 8", "shift": f"shift {given.get('shift')}"}[next(iter(given))]


@pytest.mark.parametrize("given", [{}, {"cr": 30, "shift": 1}, {"cr": 30, "prdn": 8}, {"prdn": 8, "shift": 1}, {"cr": 30, "prdn": 8, "shift": 1}])
def test_operating_point_refuses_none_or_two_rate_settings(given):
    with pytest.raises(pydantic.ValidationError, match="give exactly one of cr, prdn, shift"):
        OperatingPoint(model="A", **given)


@pytest.mark.parametrize("bad", [{"cr": 0}, {"prdn": -1}, {"shift": SHIFT_LIMIT + 1}, {"shift": -SHIFT_LIMIT - 1}, {"shift": 0, "max_error": -1}])
def test_operating_point_bounds(bad):
    with pytest.raises(pydantic.ValidationError):
        OperatingPoint(model="A", **bad)


# --- the file ------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes", [
    {"fs": 250.0}, {"gain": 100.0}, {"baseline": -7}, {"shift": 7}, {"channels": 9}, {"max_error": 3}, {"residual_scale": 2.5},
    {"model_id": b"0123456789abcdef"}, {"n_samples": lambda f: f["n_samples"] + 1},
    {"code_length": lambda f: f["code_length"] - 4, "side_length": lambda f: f["side_length"] - 1},
    {"side_bytes": lambda f: f["side_bytes"] + 4, "latent_bytes": lambda f: f["latent_bytes"] - 4},
    {"latent_bytes": lambda f: f["latent_bytes"] - 4, "residual_bytes": lambda f: f["residual_bytes"] + 4},
], ids=lambda changes: ",".join(changes))
def test_the_tests_header_layout_is_the_codecs(loaded_codec, lead, recode, changes):
    """conftest.py's copy of the fixed header (what the crafted files are made with) puts each field where
    `read_header` reads it: one field rewritten there, that field and only that one reads back changed."""
    data = codec.compress(loaded_codec, short(lead), max_error=2)
    before = dataclasses.asdict(codec.read_header(data)[0])
    after = dataclasses.asdict(codec.read_header(recode(data, **changes))[0])
    expected = {k: (v(before) if callable(v) else v) for k, v in changes.items()}
    assert {k: v for k, v in after.items() if v != before[k]} == expected


def test_header_fields_read_back_exactly(loaded_codec, lead):
    data = codec.compress(loaded_codec, lead, shift=3)
    header, offset = codec.read_header(data)
    # record 100's header (100.hea): 360 Hz, gain 200 ADC units per mV, baseline 1024
    assert (header.version, header.fs, header.gain, header.baseline, header.n_samples) == (codec.FORMAT_VERSION, 360.0, 200.0, 1024, len(lead.adc))
    config = loaded_codec.codec.transform.config
    assert (header.shift, header.channels, header.max_error, header.has_residual, header.residual_bytes) == (3, config.latent_channels, 0, False, 0)
    # the lead is padded to whole side-information steps (4 latent steps), then downsampled
    block = config.downsampling * 4
    assert header.code_length == -(-len(lead.adc) // block) * block // config.downsampling
    assert header.side_length * 4 == header.code_length
    assert header.model_id == loaded_codec.model_id and len(header.model_id) == 16
    assert (header.lead_name, header.units) == ("MLII", "mV")
    assert offset == codec._FIXED.size + 1 + len("MLII") + 1 + len("mV")
    assert offset + header.side_bytes + header.latent_bytes + 4 == len(data)
    # the factor that brought the lead to the training records' deviation, as float32 (what the header holds)
    reference = loaded_codec.preprocessing["reference_sd_mv"]
    assert header.input_gain == np.float32(reference / (lead.adc.std() / 200.0))


def test_normalising_gain_brings_a_lead_to_the_reference_deviation():
    square = Lead("r", "MLII", np.tile([1024 - 100, 1024 + 100], 50), 360.0, 200.0, 1024, "mV")  # sd 100 units = 0.5 mV
    assert normalising_gain(square, 0.25) == 0.5
    assert normalising_gain(dataclasses.replace(square, adc=np.full(100, 1024)), 0.25) == 50.0  # flat: sd counts as 1 unit


def test_beat_symbols_map_to_their_aami_classes():
    """EC57's grouping, symbol by symbol; a non-beat annotation (rhythm change '+') has no class."""
    expected = {"N": "N", "L": "N", "R": "N", "B": "N", "e": "N", "j": "N", "A": "S", "a": "S", "J": "S", "S": "S", "n": "S",
                "V": "V", "r": "V", "E": "V", "F": "F", "/": "Q", "f": "Q", "Q": "Q", "?": "Q"}
    assert {symbol: aami_class(symbol) for symbol in expected} == expected
    with pytest.raises(ValueError, match="'\\+' is not a beat annotation symbol"):
        aami_class("+")


def test_a_lead_at_twice_the_amplitude_codes_to_the_same_symbols(loaded_codec, lead):
    """Normalisation makes the code amplitude-free: ×2 about the baseline halves the factor (exactly,
    a power of two), the model sees the same input, and the decoder gives back twice the signal."""
    part = short(lead, 3600)
    double = dataclasses.replace(part, adc=part.baseline + 2 * (part.adc - part.baseline))
    single, twice = codec.analyse(loaded_codec, part), codec.analyse(loaded_codec, double)
    assert twice.input_gain == single.input_gain / 2
    symbols, _ = codec.latent_symbols(loaded_codec, single, 0)
    assert np.array_equal(codec.latent_symbols(loaded_codec, twice, 0)[0], symbols)
    decoded = codec.decompress(loaded_codec, codec.compress(loaded_codec, part)).adc
    decoded_twice = codec.decompress(loaded_codec, codec.compress(loaded_codec, double)).adc
    assert np.abs(decoded_twice - (part.baseline + 2 * (decoded - part.baseline))).max() <= 1  # ADC rounding only


def test_round_trip_is_deterministic_and_decodes_the_encoders_symbols(loaded_codec, lead):
    data = codec.compress(loaded_codec, lead)
    assert data == codec.compress(loaded_codec, lead)
    decoded = codec.decompress(loaded_codec, data, record="out")
    assert decoded.adc.shape == lead.adc.shape and decoded.adc.dtype == np.int64
    assert (decoded.record, decoded.name, decoded.units, decoded.fs, decoded.gain, decoded.baseline) == ("out", "MLII", "mV", 360.0, 200.0, 1024)
    analysis = codec.analyse(loaded_codec, lead)
    symbols, _ = codec.latent_symbols(loaded_codec, analysis, 0)
    _, z, y = codec.decode_streams(loaded_codec, data)
    assert np.array_equal(z, analysis.z_symbols) and np.array_equal(y, symbols)
    assert np.array_equal(decoded.adc, decoded_at(loaded_codec, lead, 0))


@pytest.mark.parametrize("shift", [-SHIFT_LIMIT, -7, 5, SHIFT_LIMIT])
def test_every_shift_round_trips_the_symbols(loaded_codec, lead, shift):
    """Down to the finest step (symbols clipped to ±symbol_bound) and up to the coarsest (indices clipped at 0)."""
    analysis = codec.analyse(loaded_codec, lead)
    symbols, groups = codec.latent_symbols(loaded_codec, analysis, shift)
    bound = loaded_codec.hyperprior.config.symbol_bound
    assert np.abs(symbols).max() <= bound and groups.min() >= 0 and groups.max() < loaded_codec.hyperprior.config.levels
    header, _, y = codec.decode_streams(loaded_codec, codec.compress(loaded_codec, lead, shift, analysis=analysis))
    assert header.shift == shift and np.array_equal(y, symbols)


def test_coarser_steps_make_smaller_files(loaded_codec, lead):
    analysis = codec.analyse(loaded_codec, lead)
    sizes = [len(codec.compress(loaded_codec, lead, shift, analysis=analysis)) for shift in (-8, -4, 0, 4, 8)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


@pytest.mark.parametrize("shift", [-8, 0, 8])
def test_table_estimate_is_the_files_size(loaded_codec, lead, shift):
    """`estimated_bytes` (what rate control bisects on) is the real size up to the coder's own bytes."""
    analysis = codec.analyse(loaded_codec, lead)
    data = codec.compress(loaded_codec, lead, shift, analysis=analysis)
    text = 1 + len(lead.name) + 1 + len(lead.units)  # the lead name and units, which the estimate leaves out
    extra = len(data) - text - codec.estimated_bytes(loaded_codec, analysis, shift)
    # tolerance: each of the two streams is whole 32-bit words and ends with the range coder's flush
    # (at most 2 words): ≤ 16 bytes more; and constriction re-quantises each integer table (a symbol
    # of frequency 1 costs it 23 bits, not 24), which moves the size by up to ~1 % either way
    assert abs(extra) <= 16 + 0.01 * len(data)


@pytest.mark.parametrize("max_error", [1, 5])
def test_residual_guarantees_the_error_bound(loaded_codec, lead, max_error):
    data = codec.compress(loaded_codec, lead, max_error=max_error)
    decoded = codec.decompress(loaded_codec, data)
    assert np.abs(decoded.adc - lead.adc).max() <= max_error
    header, _ = codec.read_header(data)
    assert header.has_residual and header.max_error == max_error and header.residual_bytes > 0
    # without the residual the same lead is further off: the residual is what bounds it
    assert np.abs(decoded_at(loaded_codec, lead, 0) - lead.adc).max() > max_error


def test_decoded_record_is_readable_by_wfdb(loaded_codec, lead, tmp_path):
    decoded = codec.decompress(loaded_codec, codec.compress(loaded_codec, lead), record="out")
    stem = write_lead(decoded, tmp_path / "out")
    rec = wfdb.rdrecord(str(stem), physical=False)
    assert rec.fs == 360 and rec.sig_name == ["MLII"] and rec.adc_gain == [200.0] and rec.baseline == [1024]
    assert np.array_equal(rec.d_signal[:, 0], decoded.adc)


# --- damaged files -------------------------------------------------------------------------------
REJECTED = "checksum mismatch|not a latente ECG file|format version|truncated"


@pytest.mark.parametrize("max_error", [0, 2])
def test_every_flipped_byte_is_rejected(loaded_codec, lead, max_error):
    data = codec.compress(loaded_codec, short(lead), max_error=max_error)
    assert len(data) < 400  # a short file (1 s), so every position is tried
    for position in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[position] ^= mask
            with pytest.raises(UserError, match=REJECTED) as err:
                codec.decompress(loaded_codec, bytes(damaged), source="x.ltc")
            assert err.value.where == "x.ltc", (position, mask)


def test_every_truncation_is_rejected(loaded_codec, lead):
    data = codec.compress(loaded_codec, short(lead), max_error=2)
    for length in range(len(data)):
        with pytest.raises(UserError, match=REJECTED):
            codec.decompress(loaded_codec, data[:length], source="x.ltc")


CRAFTED = [  # header fields a crafted or buggy writer could put under a valid CRC, and what the error says
    ({"fs": 0.0}, "header field fs is 0.0"),
    ({"fs": float("nan")}, "header field fs is nan"),
    ({"gain": -200.0}, "header field gain is -200.0"),
    ({"n_samples": 0}, "header field n_samples is 0"),
    ({"n_samples": 2**27 + 1}, "header field n_samples is 134217729"),
    ({"shift": SHIFT_LIMIT + 1}, f"header field shift is {SHIFT_LIMIT + 1}"),
    ({"shift": -SHIFT_LIMIT - 1}, f"header field shift is {-SHIFT_LIMIT - 1}"),
    ({"channels": 0}, "header field channels is 0"),
    ({"channels": lambda f: f["channels"] + 1}, f"header field channels is {ECG['train']['model']['latent_channels'] + 1}, "
                                                f"but the model codes {ECG['train']['model']['latent_channels']} channels"),
    ({"code_length": lambda f: f["code_length"] + 4, "side_length": lambda f: f["side_length"] + 1}, "header field code_length is"),
    ({"side_length": lambda f: f["side_length"] + 1}, "expected a quarter of code_length"),
    ({"side_length": 0}, "header field side_length is 0"),
    ({"side_bytes": lambda f: f["side_bytes"] + 4}, "do not add up"),
    ({"latent_bytes": 0}, "header field latent_bytes is 0"),
    ({"side_bytes": 2}, "header field side_bytes is 2"),
    ({"has_residual": 2}, "header field has_residual is 2"),
    ({"has_residual": 0}, "header field max_error is 2"),
    ({"max_error": 0}, "header field max_error is 0"),
    ({"max_error": 2048}, "header field max_error is 2048"),
    ({"residual_scale": float("inf")}, "header field residual_scale is inf"),
    ({"residual_bytes": lambda f: f["residual_bytes"] - 1}, "header field residual_bytes"),
    ({"version": 1}, "format version 1 is not supported"),
    ({"version": 2}, "format version 2 is not supported"),
    ({"version": 4}, "format version 4 is not supported"),
    ({"input_gain": 0.0}, "header field input_gain is 0.0"),
    ({"input_gain": float("inf")}, "header field input_gain is inf"),
    ({"magic": b"LTEX"}, "not a latente ECG file"),
]


@pytest.mark.parametrize("changes,message", CRAFTED, ids=[f"{i}_" + ",".join(c[0]) for i, c in enumerate(CRAFTED)])
def test_bad_header_fields_are_refused_by_name(loaded_codec, lead, recode, changes, message):
    data = codec.compress(loaded_codec, short(lead, 360 * 10), max_error=2)
    assert recode(data) == data  # recoding alone changes nothing
    with pytest.raises(UserError) as err:
        codec.decompress(loaded_codec, recode(data, **changes), source="crafted.ltc")
    assert err.value.where == "crafted.ltc" and message in err.value.problem


def test_version_1_file_names_its_format(loaded_codec, lead):
    data = bytearray(codec.compress(loaded_codec, short(lead)))
    data[4] = 1  # the version byte; the version is read before the CRC
    with pytest.raises(UserError) as err:
        codec.decompress(loaded_codec, bytes(data), source="old.ltc")
    assert err.value.where == "old.ltc"
    assert "format version 1 is not supported (this latente reads 3)" in err.value.problem
    assert "1: factorized prior" in err.value.hint


def test_file_from_another_model_names_both(loaded_codec, lead, tmp_path):
    """A second codec (the tiny one with its synthesis moved a little), saved like the train stage saves."""
    other = copy.deepcopy(loaded_codec.codec)
    with torch.no_grad():
        for p in other.transform.decoder.parameters():
            p.mul_(1.01)
    codec.save_codec(other, tmp_path / "B", preprocessing={k: v for k, v in loaded_codec.preprocessing.items() if k not in ("hyperprior", "rate_weight")},
                     data=loaded_codec.loaded.meta["data"], info={})
    b = codec.load_codec(tmp_path / "B")
    assert b.model_id != loaded_codec.model_id
    data = codec.compress(b, short(lead))
    with pytest.raises(UserError, match=f"was written by model {b.model_id.hex()}, not by .*{loaded_codec.model_id.hex()}") as err:
        codec.decompress(loaded_codec, data, source="b.ltc")
    assert err.value.where == "b.ltc" and "--model" in err.value.hint
    assert len(codec.decompress(b, data).adc) == 360  # its own model reads it


def test_model_folder_without_a_hyperprior_is_refused(tmp_path):
    folder = save_model(build_model({"name": "conv_ae", "spatial_dims": 1, "in_channels": 1}), tmp_path / "plain", domain="ecg",
                        preprocessing={"fs": 360.0, "reference_sd_mv": 0.3, "window": 256}, data={})
    with pytest.raises(UserError, match="extras.safetensors: not an ECG codec's hyperprior"):
        codec.load_codec(folder)


def test_stored_tables_are_the_hyperprior_s(loaded_codec):
    tables = loaded_codec.hyperprior.tables()
    assert np.array_equal(loaded_codec.y_frequencies, tables["y_frequencies"].numpy())
    assert np.array_equal(loaded_codec.z_frequencies, tables["z_frequencies"].numpy())


# --- damaged streams under a valid CRC --------------------------------------------------------------
def test_undecodable_stream_under_a_valid_crc_is_a_user_error(loaded_codec, lead, recode):
    data = codec.compress(loaded_codec, short(lead, 1800))
    header, offset = codec.read_header(data)
    for position in range(offset, offset + header.side_bytes + header.latent_bytes):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        try:
            codec.decompress(loaded_codec, recode(bytes(damaged)), source="x.ltc")
        except UserError as err:
            assert err.where == "x.ltc"


@pytest.mark.parametrize("bound", [0, 2**24, 2**31])
def test_residual_bound_under_a_valid_crc_is_checked(loaded_codec, lead, recode, bound):
    data = bytearray(codec.compress(loaded_codec, short(lead), max_error=2))
    header, offset = codec.read_header(bytes(data))
    start = offset + header.side_bytes + header.latent_bytes  # the residual stream: its bound, then the coder's words
    data[start : start + 4] = bound.to_bytes(4, "little")
    with pytest.raises(UserError, match="residual"):
        codec.decompress(loaded_codec, recode(bytes(data)), source="x.ltc")


# --- rate control ----------------------------------------------------------------------------------
def test_shift_for_cr_is_the_finest_step_reaching_the_cr(loaded_codec, lead):
    n = len(lead.adc)
    analysis = codec.analyse(loaded_codec, lead)
    cr = {s: compression_ratio(n, len(codec.compress(loaded_codec, lead, s, analysis=analysis))) for s in range(-8, 9)}
    for expected in (-6, 0, 6):  # a target between the CRs of two neighbouring shifts: the coarser one is the answer
        assert cr[expected - 1] < cr[expected]
        target = (cr[expected - 1] + cr[expected]) / 2
        shift = shift_for_cr(loaded_codec, lead, target, analysis)
        assert cr[shift] >= target and cr[shift - 1] < target  # reached; one finer is not
        assert shift == expected


def test_shift_for_cr_reached_exactly_is_that_shift(loaded_codec, lead):
    n = len(lead.adc)
    analysis = codec.analyse(loaded_codec, lead)
    for shift in range(-10, -4):
        target = compression_ratio(n, len(codec.compress(loaded_codec, lead, shift, analysis=analysis)))
        assert shift_for_cr(loaded_codec, lead, target, analysis) == shift


def test_shift_for_cr_out_of_reach_is_the_coarsest_step(loaded_codec, lead):
    assert shift_for_cr(loaded_codec, lead, 1000.0) == SHIFT_LIMIT


def test_shift_for_prdn_is_the_coarsest_step_within_the_prdn(loaded_codec, lead):
    distortion = {s: prdn(lead.adc, decoded_at(loaded_codec, lead, s)) for s in range(-8, 9)}
    for expected in (-6, 0, 6):  # a target between the PRDNs of two neighbouring shifts: the finer one is the answer
        assert distortion[expected] < distortion[expected + 1]
        target = (distortion[expected] + distortion[expected + 1]) / 2
        shift = shift_for_prdn(loaded_codec, lead, target)
        assert distortion[shift] <= target and distortion[shift + 1] > target  # within; one coarser exceeds it
        assert shift == expected
    assert shift_for_prdn(loaded_codec, lead, 1e-6) == -SHIFT_LIMIT  # out of reach: the finest step


def test_operating_point_codec_round_trip_uses_rate_control(loaded_codec, lead):
    adc, n_bytes, shift = Codec("A CR 20", loaded_codec, OperatingPoint(model="A", cr=20)).round_trip(lead)
    assert shift == shift_for_cr(loaded_codec, lead, 20.0) and compression_ratio(len(adc), n_bytes) >= 20
    assert np.array_equal(adc, decoded_at(loaded_codec, lead, shift))
    adc, n_bytes, shift = Codec("A shift 2", loaded_codec, OperatingPoint(model="A", shift=2, max_error=3)).round_trip(lead)
    assert shift == 2 and np.abs(adc - lead.adc).max() <= 3


# --- the bitstream does not depend on the decoder's float parts ------------------------------------------
def randomised_hyperprior(loaded: codec.LoadedCodec, seed: int = 0) -> codec.LoadedCodec:
    """The tiny codec with h_a and h_s drawn at random (seeded). The trained tiny hyperprior predicts one
    scale for every element (its ẑ is all 0), which would make the check below vacuous; these weights
    spread ẑ over most of ±side_bound and the indices over most of the scale table. The stored tables
    stay valid: the y tables depend on the config alone, the z tables on `side_scale`, kept."""
    other = dataclasses.replace(loaded, codec=copy.deepcopy(loaded.codec))
    generator = torch.Generator().manual_seed(seed)
    hyper = other.hyperprior
    with torch.no_grad():
        for p in hyper.analysis.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
        for layer in hyper.synthesis:
            layer.conv.weight.copy_(torch.randn(layer.conv.weight.shape, generator=generator))
            layer.conv.bias.copy_(torch.rand(layer.conv.bias.shape, generator=generator) * 4)
    return other


def perturbed_float_parts(loaded: codec.LoadedCodec, relative: float = 1e-6) -> codec.LoadedCodec:
    """The codec with every float weight the decoder does not need bit-exactly moved by `relative` noise:
    the synthesis transform (it makes the signal, not the bitstream) and h_a (the decoder never runs it)."""
    other = dataclasses.replace(loaded, codec=copy.deepcopy(loaded.codec))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in [*other.codec.transform.decoder.parameters(), *other.hyperprior.analysis.parameters()]:
            p.mul_(1 + relative * torch.randn(p.shape, generator=generator))
    return other


@pytest.mark.parametrize("hyperprior", ["trained", "random"])
def test_decoding_is_exact_whatever_the_float_path_does(loaded_codec, lead, hyperprior):
    encoder = loaded_codec if hyperprior == "trained" else randomised_hyperprior(loaded_codec)
    shift = -4
    analysis = codec.analyse(encoder, lead)
    symbols, groups = codec.latent_symbols(encoder, analysis, shift)
    data = codec.compress(encoder, lead, shift, analysis=analysis)
    if hyperprior == "random":  # the check has something to check: many scales, many side symbols
        assert len(np.unique(groups)) > 40 and len(np.unique(analysis.z_symbols)) > 40
    decoder = perturbed_float_parts(encoder)
    y_hat = torch.from_numpy(symbols).unsqueeze(0).float()
    with torch.no_grad():  # the perturbation is real: the synthesis output moved
        assert not torch.equal(encoder.codec.synthesise(y_hat, len(lead.adc)), decoder.codec.synthesise(y_hat, len(lead.adc)))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # and a thread count the encoder did not use
        _, z, y = codec.decode_streams(decoder, data)
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(z, analysis.z_symbols) and np.array_equal(y, symbols)


def test_float_derived_indices_would_not_decode(loaded_codec, lead):
    """What the test above guards against: indices from the float h_s (torch.round(index_float)) differ
    from the integer ones on some elements, and one wrong table index loses the rest of the stream."""
    encoder = randomised_hyperprior(loaded_codec)
    analysis = codec.analyse(encoder, lead)
    symbols, _ = codec.latent_symbols(encoder, analysis, 0)
    data = codec.compress(encoder, lead, 0, analysis=analysis)
    with torch.no_grad():
        float_index = torch.round(encoder.hyperprior.index_float(torch.from_numpy(analysis.z_symbols).unsqueeze(0).float()))
    float_index = float_index[0, :, : analysis.indices.shape[1]].to(torch.int64).numpy()
    assert 0 < (float_index != analysis.indices).sum() < 0.05 * float_index.size  # rare, but there
    header, offset = codec.read_header(data)
    start = offset + header.side_bytes
    try:
        wrong = decode_grouped(data[start : start + header.latent_bytes], codec.shifted_indices(encoder, float_index, 0),
                               encoder.y_frequencies, encoder.hyperprior.config.symbol_bound)
    except AssertionError:  # constriction notices the desynchronised stream
        return
    assert not np.array_equal(wrong, symbols)
