"""The learned ECG codec (a convolutional autoencoder with a scale hyperprior) and its `.ltc` file format.

The analysis transform maps a whole lead (fully convolutional, so there are no block edges) to a
latent y at 1/`downsampling` of the sampling rate; y is divided by the quantisation step
q = exp(step·shift), rounded and range-coded under a zero-mean Gaussian whose scale the
hyperprior predicts per element from side information ẑ (coded first, under a per-channel
prior). `shift` is the rate control: an integer in the header, searched per record to reach a
target CR or PRDN. Every table and index the range coder sees is an integer, so decoding is
exact on any machine (`latente.shared.models.entropy` says how).

The lead is first scaled to the training records' mean standard deviation
(`data.normalising_gain`); the factor is in the header, and the decoder divides by it.

Layout of a version-3 file (little-endian):
    header | side stream (ẑ) | latent stream (ŷ) | residual stream | CRC-32 of all before it.
The optional residual, quantised with step 2e+1, guarantees |original − decoded| ≤ e ADC units;
it is range-coded with a discretised Laplace whose scale is in the header. The residual is taken
against the encoder's float synthesis rounded to ADC units; a decoder on another machine whose
float synthesis lands on the other side of a .5 at some sample decodes that sample within e + 1.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import constriction
import numpy as np
import torch
from torch import nn

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.data import Lead, normalising_gain
from latente.domains.ecg.params import SHIFT_LIMIT
from latente.shared.errors import UserError
from latente.shared.models import AEOutput, AutoencoderConfig, LoadedModel, load_model, save_model
from latente.shared.models.autoencoders import Autoencoder
from latente.shared.models.entropy import ScaleHyperprior, decode_grouped, encode_grouped, table_bits
from latente.shared.models.entropy_config import HyperpriorConfig

MAGIC = b"LTEC"
FORMAT_VERSION = 3
"""1: factorized per-channel Laplace prior, symbols clipped to `bits` (latente before the hyperprior
codec). 2: scale hyperprior with integer tables, rate-control shift, lead coded at its own
amplitude. 3: as 2, with the lead normalised (the factor in the header). Only 3 is read."""
_FIXED = struct.Struct("<4sBBffiIbBIIH16sIIIff")
_CRC = struct.Struct("<I")
FS_MAX = 1e6  # Hz; far above any ECG (MIT-BIH: 360 Hz), so only a damaged header exceeds it
MAX_SAMPLES = 2**27
"""The longest lead a file may hold (134 M samples: 4.3 days at 360 Hz, 37 h at 1 kHz). Decoding
holds a few 8-byte values per sample, so a damaged length (4e9) must be refused before any
allocation, not decoded into tens of gigabytes."""
MAX_ERROR_MAX = 2047  # ADC units; the `--max-error` bound (2047 spans an 11-bit ADC)
RESIDUAL_BOUND_MAX = 2**16
"""The largest residual symbol bound a file may state: a 16-bit record's whole range. A larger bound
(only a damaged or crafted file has one) would make the range coder fail or decode garbage."""
HYPERPRIOR_PREFIX = "hyperprior."


def transform_config(model: AutoencoderConfig) -> AutoencoderConfig:
    """The analysis/synthesis transforms of a codec: `model` on one lead (1-D, one channel).

    The codec is fully convolutional, so no input size is fixed; the hyperprior does the entropy coding.
    """
    if model.architecture != "conv" or model.flat_code:
        raise UserError(f"{DOMAIN}.train.model.name", f"is {model.name}", "an ECG codec is fully convolutional: use conv_ae without latent_dim")
    return model.model_copy(update={"spatial_dims": 1, "in_channels": 1})


class EcgCodec(nn.Module):
    """Transforms (a shared conv autoencoder) + scale hyperprior; loss = Σ squared error (mV²) + λ · bits."""

    def __init__(self, transform: AutoencoderConfig, hyperprior: HyperpriorConfig, rate_weight: float):
        super().__init__()
        self.transform = Autoencoder(transform)
        self.hyperprior = ScaleHyperprior(transform.latent_channels, hyperprior)
        self.rate_weight = rate_weight

    @property
    def block(self) -> int:
        """Samples per side-information step: inputs are padded to a multiple of it."""
        return self.transform.config.downsampling * 4

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, (0, (-x.shape[-1]) % self.block))

    def analyse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent y and side information z of a padded input."""
        y = self.transform.encoder(x)
        return y, self.hyperprior.side_info(y)

    def synthesise(self, y_hat: torch.Tensor, length: int) -> torch.Tensor:
        return self.transform.decoder(y_hat)[..., :length]

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> AEOutput:
        target = x if target is None else target
        y, z = self.analyse(self.pad(x))
        if self.training:
            y_hat, z_hat = y + torch.rand_like(y) - 0.5, z + torch.rand_like(z) - 0.5
        else:
            y_hat, z_hat = torch.round(y), torch.round(z)
        y_bits, z_bits = self.hyperprior.rate(y_hat, z_hat)
        recon = self.synthesise(y_hat, x.shape[-1])
        terms = {"recon": ((recon - target) ** 2).flatten(1).sum(1), "rate": y_bits.flatten(1).sum(1) + z_bits.flatten(1).sum(1)}
        loss = (terms["recon"] + self.rate_weight * terms["rate"]).mean()
        return AEOutput(recon=recon, z=y, loss=loss, terms=terms)


def save_codec(codec: EcgCodec, folder: Path, *, preprocessing: dict, data: dict, info: dict) -> None:
    """A model folder like every domain's (config.json + model.safetensors of the transforms); the
    hyperprior's weights and its integer coding tables go in extras.safetensors."""
    extras = {HYPERPRIOR_PREFIX + k: v for k, v in codec.hyperprior.state_dict().items()}
    extras.update(codec.hyperprior.tables())
    preprocessing = {**preprocessing, "hyperprior": codec.hyperprior.config.model_dump(mode="json"), "rate_weight": codec.rate_weight}
    save_model(codec.transform, folder, domain=DOMAIN, preprocessing=preprocessing, data=data, extras=extras, info=info)


@dataclass
class LoadedCodec:
    """A codec ready to code, with its integer tables and the model folder it came from."""

    codec: EcgCodec
    loaded: LoadedModel
    y_frequencies: np.ndarray
    z_frequencies: np.ndarray

    @property
    def folder(self) -> Path:
        return self.loaded.folder

    @property
    def preprocessing(self) -> dict:
        return self.loaded.preprocessing

    @property
    def info(self) -> dict:
        return self.loaded.info

    @property
    def hyperprior(self) -> ScaleHyperprior:
        return self.codec.hyperprior

    @property
    def model_id(self) -> bytes:
        """16 bytes identifying the weights and tables that wrote a file (from their sha256)."""
        files = self.loaded.meta["files"]
        return hashlib.sha256("".join(files[k] for k in sorted(files)).encode()).digest()[:16]


def load_codec(folder: str | Path) -> LoadedCodec:
    """The one call that loads a codec folder (checksums checked by the shared loader)."""
    loaded = load_model(folder, domain=DOMAIN)
    try:
        hyper = HyperpriorConfig.model_validate(loaded.preprocessing["hyperprior"])
        codec = EcgCodec(loaded.model.config, hyper, float(loaded.preprocessing["rate_weight"]))
        codec.transform.load_state_dict(loaded.model.state_dict())
        codec.hyperprior.load_state_dict({k[len(HYPERPRIOR_PREFIX):]: v for k, v in loaded.extras.items() if k.startswith(HYPERPRIOR_PREFIX)})
        y_freq, z_freq = loaded.extras["y_frequencies"].numpy().astype(np.int64), loaded.extras["z_frequencies"].numpy().astype(np.int64)
    except (KeyError, RuntimeError, ValueError) as err:
        raise UserError(Path(folder) / "extras.safetensors", f"not an ECG codec's hyperprior ({str(err).splitlines()[0]})",
                        "train it with `dvc repro train@ecg`") from None
    if y_freq.shape != (hyper.levels, 2 * hyper.symbol_bound + 1) or z_freq.shape != (hyper.channels, 2 * hyper.side_bound + 1):
        raise UserError(Path(folder) / "extras.safetensors", "coding tables do not fit the hyperprior config")
    codec.eval()
    return LoadedCodec(codec, loaded, y_freq, z_freq)


# --- coding ----------------------------------------------------------------------------------
@dataclass
class Analysis:
    """What the encoder computes once per lead; every shift is coded from it."""

    y: torch.Tensor  # [M, L] float latent
    z_symbols: np.ndarray  # [C, L/4] integers
    indices: np.ndarray  # [M, L] scale-table index at shift 0
    input_gain: float  # the lead's normalising factor (float32-exact)


def quantisation_step(codec: LoadedCodec, shift: int) -> float:
    return math.exp(codec.hyperprior.log_step * shift)


@torch.no_grad()
def analyse(codec: LoadedCodec, lead: Lead) -> Analysis:
    input_gain = normalising_gain(lead, codec.preprocessing["reference_sd_mv"])
    x = codec.codec.pad(torch.from_numpy((lead.mv * input_gain).astype(np.float32)).view(1, 1, -1))
    y, z = codec.codec.analyse(x)
    bound = codec.hyperprior.config.side_bound
    z_symbols = torch.round(z).clamp(-bound, bound)
    indices = codec.hyperprior.indices(z_symbols.to(torch.int64), y.shape[-1])
    return Analysis(y[0], z_symbols[0].to(torch.int64).numpy(), indices[0].numpy(), input_gain)


def latent_symbols(codec: LoadedCodec, analysis: Analysis, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """(ŷ symbols, their table indices) at a rate-control shift: y / q rounded, scales / q as an index shift."""
    bound = codec.hyperprior.config.symbol_bound
    symbols = torch.round(analysis.y / quantisation_step(codec, shift)).clamp(-bound, bound).to(torch.int64).numpy()
    return symbols, shifted_indices(codec, analysis.indices, shift)


def shifted_indices(codec: LoadedCodec, indices: np.ndarray, shift: int) -> np.ndarray:
    return np.clip(indices - shift, 0, codec.hyperprior.config.levels - 1)


def _side_groups(z_symbols: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.arange(z_symbols.shape[0]).reshape(-1, 1), z_symbols.shape)


def side_bits(codec: LoadedCodec, z_symbols: np.ndarray) -> float:
    return table_bits(z_symbols, _side_groups(z_symbols), codec.z_frequencies, codec.hyperprior.config.side_bound)


def estimated_bytes(codec: LoadedCodec, analysis: Analysis, shift: int) -> float:
    """The file's size at `shift` without a residual, from the tables (the coder adds a few bytes)."""
    symbols, groups = latent_symbols(codec, analysis, shift)
    bits = table_bits(symbols, groups, codec.y_frequencies, codec.hyperprior.config.symbol_bound)
    return (bits + side_bits(codec, analysis.z_symbols)) / 8 + _FIXED.size + _CRC.size


@torch.no_grad()
def reconstruct(codec: LoadedCodec, symbols: np.ndarray, shift: int, input_gain: float, n: int, gain: float, baseline: int) -> np.ndarray:
    """ADC values the synthesis transform makes from latent symbols coded at `shift` (a lead normalised by `input_gain`)."""
    y_hat = torch.from_numpy(symbols).unsqueeze(0).to(torch.float32) * quantisation_step(codec, shift)
    mv = codec.codec.synthesise(y_hat, n)[0, 0].numpy().astype(np.float64) / input_gain
    return np.rint(mv * gain + baseline).astype(np.int64)


def _laplace(low: int, high: int):
    return constriction.stream.model.QuantizedLaplace(low, high)


def compress(codec: LoadedCodec, lead: Lead, shift: int = 0, max_error: int = 0, analysis: Analysis | None = None) -> bytes:
    """Encode one lead at a rate-control shift; `max_error` > 0 adds a residual that bounds the error in ADC units."""
    fs = codec.preprocessing["fs"]
    if abs(lead.fs - fs) > 1e-6:
        raise UserError(lead.record, f"sampled at {lead.fs:g} Hz but the model was trained at {fs:g} Hz", "resample the record first")
    if len(lead.adc) > MAX_SAMPLES:
        raise UserError(lead.record, f"has {len(lead.adc)} samples, more than a file holds ({MAX_SAMPLES})", "split the record into parts")
    if not -SHIFT_LIMIT <= shift <= SHIFT_LIMIT:
        raise ValueError(f"shift {shift} is outside ±{SHIFT_LIMIT}")
    analysis = analysis or analyse(codec, lead)
    cfg = codec.hyperprior.config
    symbols, groups = latent_symbols(codec, analysis, shift)
    side = encode_grouped(analysis.z_symbols, _side_groups(analysis.z_symbols), codec.z_frequencies, cfg.side_bound)
    latent = encode_grouped(symbols, groups, codec.y_frequencies, cfg.symbol_bound)
    residual, scale = b"", 0.0
    if max_error > 0:
        approx = reconstruct(codec, symbols, shift, analysis.input_gain, len(lead.adc), lead.gain, lead.baseline)
        q = np.rint((lead.adc - approx) / (2 * max_error + 1)).astype(np.int64)
        scale = float(np.float32(max(np.abs(q).mean(), 0.05)))  # exactly what the header stores
        bound = int(np.abs(q).max()) + 1
        if bound > RESIDUAL_BOUND_MAX:
            raise UserError(lead.record, f"needs a residual bound of {bound} (more than {RESIDUAL_BOUND_MAX}): the model does not fit this record")
        encoder = constriction.stream.queue.RangeEncoder()
        n = len(q)
        encoder.encode(q.astype(np.int32), _laplace(-bound, bound), np.zeros(n), np.full(n, scale))
        residual = struct.pack("<I", bound) + encoder.get_compressed().tobytes()
    fixed = _FIXED.pack(
        MAGIC, FORMAT_VERSION, int(max_error > 0), lead.fs, lead.gain, lead.baseline, len(lead.adc), shift,
        symbols.shape[0], symbols.shape[1], analysis.z_symbols.shape[1], max_error, codec.model_id,
        len(side), len(latent), len(residual), scale, analysis.input_gain,
    )
    body = fixed + _pack_text(lead.name) + _pack_text(lead.units) + side + latent + residual
    return body + _CRC.pack(zlib.crc32(body))


# --- the file --------------------------------------------------------------------------------
@dataclass
class Header:
    version: int
    has_residual: bool
    fs: float
    gain: float
    baseline: int
    n_samples: int
    shift: int
    channels: int
    code_length: int
    side_length: int
    max_error: int
    model_id: bytes
    side_bytes: int
    latent_bytes: int
    residual_bytes: int
    residual_scale: float
    input_gain: float
    lead_name: str
    units: str


def _pack_text(text: str) -> bytes:
    raw = text.encode("utf-8")[:255]
    return bytes([len(raw)]) + raw


def _unpack_text(data: bytes, offset: int) -> tuple[str, int]:
    length = data[offset]
    return data[offset + 1 : offset + 1 + length].decode("utf-8"), offset + 1 + length


def _damaged(source: str, problem: str) -> UserError:
    return UserError(source, problem, "the file is damaged or was not written by `latente ecg compress`")


def _check_header(header: Header, offset: int, size: int, source: str) -> None:
    """Every header field within the bounds the format allows, and the stream sizes adding up to the file's.

    A valid CRC only proves the bytes are those that were written: a file crafted or written by a
    buggy tool can carry fs −1, a shift of 100 or a length of 4e9, which would fail deep in the
    decoder or allocate gigabytes. Each field is checked before anything is allocated.
    """
    def bad(field: str, value: object, expected: str) -> UserError:
        return _damaged(source, f"header field {field} is {value!r}, expected {expected}")

    if not (math.isfinite(header.fs) and 0 < header.fs <= FS_MAX):
        raise bad("fs", header.fs, f"a sampling rate above 0 and at most {FS_MAX:g} Hz")
    if not (math.isfinite(header.gain) and header.gain > 0):
        raise bad("gain", header.gain, "a finite ADC gain above 0")
    if not (math.isfinite(header.input_gain) and header.input_gain > 0):
        raise bad("input_gain", header.input_gain, "a finite normalising factor above 0")
    if not 1 <= header.n_samples <= MAX_SAMPLES:
        raise bad("n_samples", header.n_samples, f"a sample count from 1 to {MAX_SAMPLES}")
    if not -SHIFT_LIMIT <= header.shift <= SHIFT_LIMIT:
        raise bad("shift", header.shift, f"a rate-control shift from {-SHIFT_LIMIT} to {SHIFT_LIMIT}")
    if header.channels < 1:
        raise bad("channels", header.channels, "at least 1 code channel")
    if not 1 <= header.code_length <= header.n_samples:
        raise bad("code_length", header.code_length, f"from 1 to n_samples ({header.n_samples})")
    if header.side_length * 4 != header.code_length:
        raise bad("side_length", header.side_length, f"a quarter of code_length ({header.code_length})")
    if header.max_error > MAX_ERROR_MAX or (header.max_error > 0) != header.has_residual:
        raise bad("max_error", header.max_error, f"at most {MAX_ERROR_MAX}, and above 0 exactly when the file has a residual")
    for name in ("side_bytes", "latent_bytes"):
        value = getattr(header, name)
        if value < 4 or value % 4:
            raise bad(name, value, "a positive multiple of 4 (the coder writes 32-bit words)")
    if header.has_residual and (header.residual_bytes < 4 or header.residual_bytes % 4):
        raise bad("residual_bytes", header.residual_bytes, "a multiple of 4 of at least 4 (a bound, then 32-bit words)")
    if not header.has_residual and header.residual_bytes:
        raise bad("residual_bytes", header.residual_bytes, "0 in a file without a residual")
    if header.has_residual and not (math.isfinite(header.residual_scale) and header.residual_scale > 0):
        raise bad("residual_scale", header.residual_scale, "a finite number above 0")
    if offset + header.side_bytes + header.latent_bytes + header.residual_bytes + _CRC.size != size:
        raise _damaged(source, f"header stream sizes ({header.side_bytes} + {header.latent_bytes} + {header.residual_bytes} bytes) "
                               f"do not add up to the file's {size} bytes")


def read_header(data: bytes, source: str = "<bytes>") -> tuple[Header, int]:
    """Check magic, version, CRC and every header field; return the header and the offset of the side stream."""
    if len(data) < 5 or data[:4] != MAGIC:
        raise UserError(source, "not a latente ECG file (bad magic or too short)")
    if data[4] != FORMAT_VERSION:
        hint = ("it was written by an earlier latente's codec (1: factorized prior, 2: unnormalised leads); decode it with that release"
                if data[4] < FORMAT_VERSION else "it was written by a newer latente")
        raise UserError(source, f"format version {data[4]} is not supported (this latente reads {FORMAT_VERSION})", hint)
    if len(data) < _FIXED.size + _CRC.size:
        raise UserError(source, "too short for a latente ECG header: the file is truncated")
    (crc,) = _CRC.unpack(data[-_CRC.size :])
    if zlib.crc32(data[: -_CRC.size]) != crc:
        raise UserError(source, "checksum mismatch: the file is truncated or corrupted")
    fields = _FIXED.unpack(data[: _FIXED.size])
    if fields[2] not in (0, 1):
        raise _damaged(source, f"header field has_residual is {fields[2]}, expected 0 or 1")
    try:
        lead_name, offset = _unpack_text(data, _FIXED.size)
        units, offset = _unpack_text(data, offset)
    except (IndexError, UnicodeDecodeError):
        raise _damaged(source, "header lead name or units are not UTF-8 text of the stated length") from None
    header = Header(fields[1], bool(fields[2]), *fields[3:18], lead_name, units)
    _check_header(header, offset, len(data), source)
    return header, offset


def decode_streams(codec: LoadedCodec, data: bytes, source: str = "<bytes>") -> tuple[Header, np.ndarray, np.ndarray]:
    """The header, ẑ and ŷ symbols of a file: integers only (what must be identical on every machine)."""
    header, offset = read_header(data, source)
    if header.model_id != codec.model_id:
        raise UserError(source, f"was written by model {header.model_id.hex()}, not by {codec.folder} ({codec.model_id.hex()})",
                        "pass the --model that compressed it")
    cfg = codec.hyperprior.config
    channels = codec.codec.transform.config.latent_channels
    if header.channels != channels:
        raise _damaged(source, f"header field channels is {header.channels}, but the model codes {channels} channels")
    length = math.ceil(header.n_samples / codec.codec.block) * codec.codec.block // codec.codec.transform.config.downsampling
    if header.code_length != length:
        raise _damaged(source, f"header field code_length is {header.code_length}, but {header.n_samples} samples code to {length} steps with this model")
    side_stream = data[offset : offset + header.side_bytes]
    z_shape = (cfg.channels, header.side_length)
    with _stream("side", source):
        z_symbols = decode_grouped(side_stream, _side_groups(np.empty(z_shape)), codec.z_frequencies, cfg.side_bound)
    indices = codec.hyperprior.indices(torch.from_numpy(z_symbols).unsqueeze(0), header.code_length)[0].numpy()
    start = offset + header.side_bytes
    groups = shifted_indices(codec, indices, header.shift)
    with _stream("latent", source):
        y_symbols = decode_grouped(data[start : start + header.latent_bytes], groups, codec.y_frequencies, cfg.symbol_bound)
    return header, z_symbols, y_symbols


@contextlib.contextmanager
def _stream(name: str, source: str):
    """A stream the range decoder rejects (a valid CRC over bytes no encoder wrote) is a damaged file."""
    try:
        yield
    except (AssertionError, ValueError, RuntimeError, OverflowError) as err:
        raise _damaged(source, f"the {name} stream does not decode under this model's tables ({type(err).__name__})") from None


def decompress(codec: LoadedCodec, data: bytes, record: str = "decoded", source: str = "<bytes>") -> Lead:
    header, _, y_symbols = decode_streams(codec, data, source)
    adc = reconstruct(codec, y_symbols, header.shift, header.input_gain, header.n_samples, header.gain, header.baseline)
    if header.has_residual:
        start = len(data) - _CRC.size - header.residual_bytes
        stream = data[start : start + header.residual_bytes]
        (bound,) = struct.unpack("<I", stream[:4])
        if not 1 <= bound <= RESIDUAL_BOUND_MAX:
            raise _damaged(source, f"residual bound is {bound}, expected 1 to {RESIDUAL_BOUND_MAX}")
        n = header.n_samples
        with _stream("residual", source):
            decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(stream[4:], dtype=np.uint32).copy())
            q = decoder.decode(_laplace(-bound, bound), np.zeros(n), np.full(n, header.residual_scale))
        adc = adc + q.astype(np.int64) * (2 * header.max_error + 1)
    return Lead(record, header.lead_name, adc, header.fs, header.gain, header.baseline, header.units)
