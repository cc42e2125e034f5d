"""A scale hyperprior (Ballé et al. 2018) whose entropy decoding is exact across machines.

A learned codec quantises its latent y to integers and range-codes them under a Gaussian whose
scale differs per element: large on a QRS complex or an edge, small on a flat stretch. The scale
is predicted from side information z = h_a(|y|), itself rounded and coded under a factorized
per-channel prior. The decoder must pick *exactly* the distribution the encoder used for every
symbol, or the range decoder desynchronises and the rest of the stream is lost. A float network
run on another machine (other thread count, SIMD width, libm) can differ in the last bit, so
the known remedy is applied (Ballé et al. 2019, "Integer networks"; CompressAI's scale table):

- scales come from a fixed table of `levels` log-spaced values, and each entry's CDF is a table
  of integer frequencies computed once, when the model is exported, and stored with it;
- the table index of each symbol is computed by an integer network: h_s's weights are rounded
  to multiples of 2^-FRACTION_BITS and evaluated in float64 on integer-valued tensors. Every
  product and partial sum is an integer below 2^53, so it is exact in any summation order;
  ReLU and the power-of-two rescaling (floor of a division by 2^FRACTION_BITS) are exact too.

So the indices depend only on the integer symbols ẑ and the stored integer weights, and a
symbol's index selects a stored integer table: nothing a float rounding can change. Only the
synthesis transform (ẑ, ŷ → signal) runs in float, which moves the reconstruction by far less
than one quantisation step and never the bitstream.

A quantisation step q = exp(step·j) for an integer j (the rate-control shift) divides y before
rounding; because the table is log-spaced with the same step, dividing every scale by q is
exactly an index shift of −j, so rate control keeps the index selection integer too.
"""
from __future__ import annotations

import math

import constriction
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from latente.shared.models.entropy_config import HyperpriorConfig

FRACTION_BITS = 12  # fixed-point precision of the integer hyper-synthesis
PROBABILITY_BITS = 24  # each integer table sums to 2^24 (the range coder's own precision), so the floor of 1 per symbol costs < 0.0002 bits


def gaussian_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


def laplace_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 + 0.5 * torch.sign(x) * (1 - torch.exp(-x.abs()))


def bin_bits(cdf, value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """−log2 of the probability mass of the unit-width bin around `value` (location 0)."""
    upper, lower = cdf((value + 0.5) / scale), cdf((value - 0.5) / scale)
    return -torch.log2((upper - lower).clamp_min(1e-9))


def integer_frequencies(cdf, scales: np.ndarray, bound: int) -> np.ndarray:
    """[len(scales), 2·bound+1] integer frequencies, each row summing to 2^PROBABILITY_BITS, every
    symbol at least 1: the exact tables the coder uses (computed once, stored with the model)."""
    values = torch.arange(-bound, bound + 1, dtype=torch.float64)
    rows = []
    for scale in scales:
        mass = (cdf((values + 0.5) / scale) - cdf((values - 0.5) / scale)).numpy()
        total = 2**PROBABILITY_BITS - len(values)
        freq = np.floor(mass / mass.sum() * total).astype(np.int64) + 1
        freq[bound] += 2**PROBABILITY_BITS - freq.sum()  # the rounding remainder goes to symbol 0
        rows.append(freq)
    return np.stack(rows)


class IntegerConv(nn.Module):
    """A (transposed) 1-D convolution trained in float and evaluated in exact fixed point."""

    def __init__(self, cin: int, cout: int, kernel: int, transposed: bool):
        super().__init__()
        self.transposed = transposed
        if transposed:
            self.conv: nn.Module = nn.ConvTranspose1d(cin, cout, kernel, stride=2, padding=(kernel - 2) // 2)
        else:
            self.conv = nn.Conv1d(cin, cout, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def fixed_point(self, x: torch.Tensor) -> torch.Tensor:
        """`x` holds integers in units of 2^-FRACTION_BITS; so does the (floored) result."""
        one = float(2**FRACTION_BITS)
        weight = torch.round(self.conv.weight.detach().double() * one)
        bias = torch.round(self.conv.bias.detach().double() * one * one)
        op = F.conv_transpose1d if self.transposed else F.conv1d
        kwargs = {"stride": 2, "padding": self.conv.padding} if self.transposed else {"padding": self.conv.padding}
        return torch.floor((op(x, weight, **kwargs) + bias.view(1, -1, 1)) / one)


class _ClampTowardRange(torch.autograd.Function):
    """clamp(x, low, high) whose gradient still reaches an x outside the range when it would move x
    back in (CompressAI's LowerBound, on both ends). A plain clamp has zero gradient there, so a
    scale index that falls below the table in training can never rise again: its channel is dead."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, low: float, high: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x.clamp(low, high)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        inward = ((x >= ctx.low) & (x <= ctx.high)) | ((x < ctx.low) & (grad < 0)) | ((x > ctx.high) & (grad > 0))
        return grad * inward, None, None


class ScaleHyperprior(nn.Module):
    """h_a: |y| → z (×4 shorter); h_s: ẑ → scale-table index of every element of y (float in training)."""

    def __init__(self, latent_channels: int, config: HyperpriorConfig):
        super().__init__()
        self.config = config
        c, h = config.channels, config.hidden
        self.analysis = nn.Sequential(
            nn.Conv1d(latent_channels, h, 3, padding=1), nn.ReLU(),
            nn.Conv1d(h, h, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(h, c, 5, stride=2, padding=2),
        )
        self.synthesis = nn.ModuleList([
            IntegerConv(c, h, 4, transposed=True), IntegerConv(h, h, 4, transposed=True), IntegerConv(h, latent_channels, 3, transposed=False),
        ])
        self.side_scale = nn.Parameter(torch.zeros(c))

    # --- the scale table ------------------------------------------------------------------
    @property
    def log_step(self) -> float:
        cfg = self.config
        return math.log(cfg.scale_max / cfg.scale_min) / (cfg.levels - 1)

    def table_scales(self) -> np.ndarray:
        return self.config.scale_min * np.exp(self.log_step * np.arange(self.config.levels))

    def side_scales(self) -> torch.Tensor:
        return F.softplus(self.side_scale) + 0.1

    # --- training path (float, differentiable) --------------------------------------------
    def index_float(self, z_hat: torch.Tensor) -> torch.Tensor:
        h = z_hat
        for i, layer in enumerate(self.synthesis):
            h = layer(h)
            if i < len(self.synthesis) - 1:
                h = F.relu(h)
        return self.bounded_index(h)

    def bounded_index(self, h: torch.Tensor) -> torch.Tensor:
        """`h` clamped to the table's index range, with the gradient that leads back into it."""
        return _ClampTowardRange.apply(h, 0.0, float(self.config.levels - 1))

    def rate(self, y_hat: torch.Tensor, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bits of ŷ under the predicted scales and of ẑ under the factorized prior, per element."""
        index = self.index_float(z_hat)[..., : y_hat.shape[-1]]
        scale = self.config.scale_min * torch.exp(self.log_step * index)
        y_bits = bin_bits(gaussian_cdf, y_hat, scale)
        z_bits = bin_bits(laplace_cdf, z_hat, self.side_scales().view(1, -1, 1))
        return y_bits, z_bits

    def side_info(self, y: torch.Tensor) -> torch.Tensor:
        return self.analysis(y.abs())

    # --- coding path (integers only) --------------------------------------------------------
    @torch.no_grad()
    def indices(self, z_symbols: torch.Tensor, length: int) -> torch.Tensor:
        """Scale-table index of every y element, from integer ẑ [B, C, L/4] alone, in exact fixed point."""
        one = float(2**FRACTION_BITS)
        h = z_symbols.double() * one
        for i, layer in enumerate(self.synthesis):
            h = layer.fixed_point(h)
            if i < len(self.synthesis) - 1:
                h = h.clamp_min(0)
        index = torch.floor(h / one + 0.5)[..., :length]
        return index.clamp(0, self.config.levels - 1).to(torch.int64)

    @torch.no_grad()
    def tables(self) -> dict[str, torch.Tensor]:
        """The integer frequency tables of y (per scale level) and z (per channel), to store with the model."""
        cfg = self.config
        y_table = integer_frequencies(gaussian_cdf, self.table_scales(), cfg.symbol_bound)
        z_table = integer_frequencies(laplace_cdf, self.side_scales().double().numpy(), cfg.side_bound)
        return {"y_frequencies": torch.from_numpy(y_table).to(torch.int32), "z_frequencies": torch.from_numpy(z_table).to(torch.int32)}


def _categorical(frequencies: np.ndarray) -> constriction.stream.model.Categorical:
    return constriction.stream.model.Categorical(frequencies.astype(np.float64), perfect=False)


def encode_grouped(symbols: np.ndarray, groups: np.ndarray, frequencies: np.ndarray, bound: int) -> bytes:
    """Range-code integer `symbols` (clipped to ±bound beforehand), each under the integer table
    `frequencies[group]`; the groups are coded in increasing order, each in raster order, so a
    decoder that knows `groups` can undo it."""
    encoder = constriction.stream.queue.RangeEncoder()
    flat, keys = symbols.reshape(-1), groups.reshape(-1)
    for g in np.unique(keys):
        encoder.encode((flat[keys == g] + bound).astype(np.int32), _categorical(frequencies[g]))
    return encoder.get_compressed().tobytes()


def decode_grouped(data: bytes, groups: np.ndarray, frequencies: np.ndarray, bound: int) -> np.ndarray:
    """Inverse of `encode_grouped`: symbols shaped like `groups`."""
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(data, dtype=np.uint32).copy())
    keys = groups.reshape(-1)
    out = np.empty(keys.shape, dtype=np.int64)
    for g in np.unique(keys):
        where = keys == g
        out[where] = decoder.decode(_categorical(frequencies[g]), int(where.sum())).astype(np.int64) - bound
    return out.reshape(groups.shape)


def table_bits(symbols: np.ndarray, groups: np.ndarray, frequencies: np.ndarray, bound: int) -> float:
    """What `encode_grouped` writes, in bits, up to the coder's few bytes of overhead: a fast rate
    estimate for rate control."""
    p = frequencies[groups, symbols + bound] / float(2**PROBABILITY_BITS)
    return float(-np.log2(p).sum())
