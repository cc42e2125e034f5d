"""The learned ECG codec: the model config of one operating point and the `.ltc` file format.

The `.ltc` file holds quantised latent codes, range-coded, plus an optional residual.
Layout (little-endian):  header | latent stream | residual stream | CRC-32 of all before it.

The latent symbols are range-coded (constriction's queue coder, i.e. arithmetic coding) under
the model's own learned per-channel Laplace prior — the distribution whose −log2 training
minimised as the rate — so the file carries no tables and its size tracks the trained rate;
generic byte compressors (zlib/LZMA) cannot exploit a known distribution like this. The
optional residual, quantised with step 2e+1, guarantees |original − decoded| ≤ e ADC units;
it is range-coded with a discretised Laplace whose scale is in the header.
"""
from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import constriction
import numpy as np
import torch

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.data import Lead
from latente.domains.ecg.params import CodecVariant
from latente.shared.errors import UserError
from latente.shared.models import AutoencoderConfig, LoadedModel
from latente.shared.models.autoencoders import quantize, symbol_range

MAGIC = b"LTEC"
FORMAT_VERSION = 1
_FIXED = struct.Struct("<4sBBffiIBBIH16sIIf")
_CRC = struct.Struct("<I")
CODE_BITS = (2, 16)  # AutoencoderConfig.code_bits's range: the symbol widths a codec quantises to
FS_MAX = 1e6  # Hz; far above any ECG (MIT-BIH: 360 Hz), so only a damaged header exceeds it
MAX_SAMPLES = 2**27
"""The longest lead a file may hold (134 M samples: 4.3 days at 360 Hz, 37 h at 1 kHz). Decoding
holds a few 8-byte values per sample, so a damaged length (4e9) must be refused before any
allocation, not decoded into tens of gigabytes."""
MAX_ERROR_MAX = 2047  # ADC units; the `--max-error` bound (2047 spans an 11-bit ADC)


def model_config(model: AutoencoderConfig, variant: CodecVariant | None = None) -> AutoencoderConfig:
    """The codec of one operating point: `model` on one lead (1-D, one channel), with the variant's rate weight.

    The codec is fully convolutional, so no input size is fixed; the `.ltc` format needs
    integer codes, so `code_bits` is required.
    """
    if model.code_bits is None:
        raise UserError(f"{DOMAIN}.train.model.code_bits", "is missing", "an ECG codec quantises its codes: give code_bits")
    update: dict = {"spatial_dims": 1, "in_channels": 1}
    if variant is not None:
        update["rate_weight"] = variant.rate_weight
    return model.model_copy(update=update)


@dataclass
class Header:
    version: int
    has_residual: bool
    fs: float
    gain: float
    baseline: int
    n_samples: int
    bits: int
    channels: int
    code_length: int
    max_error: int
    model_id: bytes
    lead_name: str
    units: str
    latent_bytes: int
    residual_bytes: int
    residual_scale: float


def model_id(loaded: LoadedModel) -> bytes:
    """16 bytes identifying the weights that wrote a file (from their sha256)."""
    return bytes.fromhex(loaded.meta["files"]["model.safetensors"])[:16]


def _pack_text(text: str) -> bytes:
    raw = text.encode("utf-8")[:255]
    return bytes([len(raw)]) + raw


def _unpack_text(data: bytes, offset: int) -> tuple[str, int]:
    length = data[offset]
    return data[offset + 1 : offset + 1 + length].decode("utf-8"), offset + 1 + length


def to_model_input(lead_mv: np.ndarray, scale_mv: float) -> torch.Tensor:
    return torch.from_numpy((lead_mv / scale_mv).astype(np.float32)).view(1, 1, -1)


@torch.no_grad()
def encode_symbols(loaded: LoadedModel, lead: Lead, bits: int) -> np.ndarray:
    """Integer latent symbols [C, L] of a lead."""
    x = to_model_input(lead.mv, loaded.preprocessing["scale_mv"])
    return quantize(loaded.model.encode(x), bits)[0].numpy()


@torch.no_grad()
def decode_symbols(loaded: LoadedModel, symbols: np.ndarray, n: int, gain: float, baseline: int) -> np.ndarray:
    """ADC values reconstructed by the decoder network from latent symbols."""
    z = torch.from_numpy(symbols).unsqueeze(0).to(torch.float32)
    mv = loaded.model.decode(z, (n,))[0, 0].numpy().astype(np.float64) * loaded.preprocessing["scale_mv"]
    return np.rint(mv * gain + baseline).astype(np.int64)


def _laplace(low: int, high: int):
    return constriction.stream.model.QuantizedLaplace(low, high)


def _prior(loaded: LoadedModel, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-symbol Laplace location and scale (channel-major), as float64 for the coder."""
    loc, scale = (p.detach().double().numpy() for p in loaded.model.code_prior())
    return np.repeat(loc, length), np.repeat(scale, length)


def _code_latents(loaded: LoadedModel, symbols: np.ndarray, bits: int) -> bytes:
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(symbols.reshape(-1).astype(np.int32), _laplace(*symbol_range(bits)), *_prior(loaded, symbols.shape[1]))
    return encoder.get_compressed().tobytes()


def _decode_latents(loaded: LoadedModel, data: bytes, bits: int, channels: int, length: int) -> np.ndarray:
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
    symbols = decoder.decode(_laplace(*symbol_range(bits)), *_prior(loaded, length))
    return symbols.reshape(channels, length).astype(np.int64)


def compress(loaded: LoadedModel, lead: Lead, bits: int, max_error: int = 0) -> bytes:
    """Encode one lead; `max_error` > 0 adds a residual that bounds the error in ADC units."""
    fs = loaded.preprocessing["fs"]
    if abs(lead.fs - fs) > 1e-6:
        raise UserError(lead.record, f"sampled at {lead.fs:g} Hz but the model was trained at {fs:g} Hz", "resample the record first")
    if len(lead.adc) > MAX_SAMPLES:
        raise UserError(lead.record, f"has {len(lead.adc)} samples, more than a file holds ({MAX_SAMPLES})",
                        "split the record into parts")
    symbols = encode_symbols(loaded, lead, bits)
    latent = _code_latents(loaded, symbols, bits)
    residual, scale = b"", 0.0
    if max_error > 0:
        approx = decode_symbols(loaded, symbols, len(lead.adc), lead.gain, lead.baseline)
        q = np.rint((lead.adc - approx) / (2 * max_error + 1)).astype(np.int64)
        scale = float(np.float32(max(np.abs(q).mean(), 0.05)))  # exactly what the header stores
        bound = int(np.abs(q).max()) + 1
        encoder = constriction.stream.queue.RangeEncoder()
        n = len(q)
        encoder.encode(q.astype(np.int32), _laplace(-bound, bound), np.zeros(n), np.full(n, scale))
        residual = struct.pack("<I", bound) + encoder.get_compressed().tobytes()
    fixed = _FIXED.pack(
        MAGIC, FORMAT_VERSION, int(max_error > 0), lead.fs, lead.gain, lead.baseline, len(lead.adc),
        bits, symbols.shape[0], symbols.shape[1], max_error, model_id(loaded), len(latent), len(residual), scale,
    )
    body = fixed + _pack_text(lead.name) + _pack_text(lead.units) + latent + residual
    return body + _CRC.pack(zlib.crc32(body))


def _check_header(header: Header, offset: int, size: int, source: str) -> None:
    """Every header field within the bounds the format allows, and the stream sizes adding up to the file's.

    A valid CRC only proves the bytes are those that were written: a file crafted or written by a
    buggy tool can carry bits 0, gain 0, fs −1 or a length of 4e9, which would fail deep in the
    decoder or allocate gigabytes. Each field is checked before anything is allocated.
    """
    def bad(field: str, value: object, expected: str) -> UserError:
        return UserError(source, f"header field {field} is {value!r}, expected {expected}",
                         "the file is damaged or was not written by `latente ecg compress`")

    if not (math.isfinite(header.fs) and 0 < header.fs <= FS_MAX):
        raise bad("fs", header.fs, f"a sampling rate above 0 and at most {FS_MAX:g} Hz")
    if not (math.isfinite(header.gain) and header.gain > 0):
        raise bad("gain", header.gain, "a finite ADC gain above 0")
    if not 1 <= header.n_samples <= MAX_SAMPLES:
        raise bad("n_samples", header.n_samples, f"a sample count from 1 to {MAX_SAMPLES}")
    if not CODE_BITS[0] <= header.bits <= CODE_BITS[1]:
        raise bad("bits", header.bits, f"a code width from {CODE_BITS[0]} to {CODE_BITS[1]}")
    if header.channels < 1:
        raise bad("channels", header.channels, "at least 1 code channel")
    if not 1 <= header.code_length <= header.n_samples:
        raise bad("code_length", header.code_length, f"from 1 to n_samples ({header.n_samples})")
    if header.max_error > MAX_ERROR_MAX or (header.max_error > 0) != header.has_residual:
        raise bad("max_error", header.max_error, f"at most {MAX_ERROR_MAX}, and above 0 exactly when the file has a residual")
    if header.latent_bytes < 4 or header.latent_bytes % 4:
        raise bad("latent_bytes", header.latent_bytes, "a positive multiple of 4 (the coder writes 32-bit words)")
    if header.has_residual and (header.residual_bytes < 4 or header.residual_bytes % 4):
        raise bad("residual_bytes", header.residual_bytes, "a multiple of 4 of at least 4 (a bound, then 32-bit words)")
    if not header.has_residual and header.residual_bytes:
        raise bad("residual_bytes", header.residual_bytes, "0 in a file without a residual")
    if header.has_residual and not (math.isfinite(header.residual_scale) and header.residual_scale > 0):
        raise bad("residual_scale", header.residual_scale, "a finite number above 0")
    if offset + header.latent_bytes + header.residual_bytes + _CRC.size != size:
        raise UserError(source, f"header stream sizes ({header.latent_bytes} + {header.residual_bytes} bytes) do not add up "
                                f"to the file's {size} bytes", "the file is damaged or was not written by `latente ecg compress`")


def read_header(data: bytes, source: str = "<bytes>") -> tuple[Header, int]:
    """Check magic, version, CRC and every header field; return the header and the offset of the latent stream."""
    if len(data) < _FIXED.size + _CRC.size or data[:4] != MAGIC:
        raise UserError(source, "not a latente ECG file (bad magic or too short)")
    (crc,) = _CRC.unpack(data[-_CRC.size :])
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise UserError(source, "checksum mismatch: the file is truncated or corrupted")
    fields = _FIXED.unpack(data[: _FIXED.size])
    if fields[1] != FORMAT_VERSION:
        raise UserError(source, f"format version {fields[1]} is not supported (this latente reads {FORMAT_VERSION})")
    if fields[2] not in (0, 1):
        raise UserError(source, f"header field has_residual is {fields[2]}, expected 0 or 1",
                        "the file is damaged or was not written by `latente ecg compress`")
    try:
        lead_name, offset = _unpack_text(data, _FIXED.size)
        units, offset = _unpack_text(data, offset)
    except (IndexError, UnicodeDecodeError):
        raise UserError(source, "header lead name or units are not UTF-8 text of the stated length",
                        "the file is damaged or was not written by `latente ecg compress`") from None
    header = Header(fields[1], bool(fields[2]), *fields[3:11], fields[11], lead_name, units, *fields[12:15])
    _check_header(header, offset, len(data), source)
    return header, offset


def decompress(loaded: LoadedModel, data: bytes, record: str = "decoded", source: str = "<bytes>") -> Lead:
    header, offset = read_header(data, source)
    if header.model_id != model_id(loaded):
        raise UserError(source, f"was written by model {header.model_id.hex()}, not by {loaded.folder} ({model_id(loaded).hex()})", "pass the --model that compressed it")
    channels = len(loaded.model.code_prior()[0])
    if header.channels != channels:
        raise UserError(source, f"header field channels is {header.channels}, but the model codes {channels} channels",
                        "the file is damaged or was not written by `latente ecg compress`")
    stride = math.prod(loaded.model.config.strides)
    if header.code_length != math.ceil(header.n_samples / stride):
        raise UserError(source, f"header field code_length is {header.code_length}, but {header.n_samples} samples code to "
                                f"{math.ceil(header.n_samples / stride)} steps with this model",
                        "the file is damaged or was not written by `latente ecg compress`")
    latent = data[offset : offset + header.latent_bytes]
    symbols = _decode_latents(loaded, latent, header.bits, header.channels, header.code_length)
    adc = decode_symbols(loaded, symbols, header.n_samples, header.gain, header.baseline)
    if header.has_residual:
        start = offset + header.latent_bytes
        stream = data[start : start + header.residual_bytes]
        (bound,) = struct.unpack("<I", stream[:4])
        decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(stream[4:], dtype=np.uint32).copy())
        n = header.n_samples
        q = decoder.decode(_laplace(-bound, bound), np.zeros(n), np.full(n, header.residual_scale))
        adc = adc + q.astype(np.int64) * (2 * header.max_error + 1)
    return Lead(record, header.lead_name, adc, header.fs, header.gain, header.baseline, header.units)

