"""One config schema for every autoencoder: validated in params.yaml, saved in config.json."""
from __future__ import annotations

import math
from typing import Literal

import pydantic

from latente.shared.params import StrictParams

ARCHITECTURES = ("conv", "dense")
VARIANTS = ("ae", "dae", "sae", "vae")
MODEL_NAMES = tuple(f"{a}_{v}" for a in ARCHITECTURES for v in VARIANTS)

ModelName = Literal["conv_ae", "conv_dae", "conv_sae", "conv_vae", "dense_ae", "dense_dae", "dense_sae", "dense_vae"]


class CorruptionConfig(StrictParams):
    """Denoising input corruption; `level` is drawn per sample from [low, high]."""

    kind: Literal["gaussian", "rician", "masking"] = "gaussian"
    level: tuple[float, float] = (0.1, 0.1)


class SparsityConfig(StrictParams):
    """L1 on the code, or KL between a target and the mean sigmoid activation."""

    kind: Literal["l1", "kl"] = "l1"
    weight: float = 1e-3
    target: float = 0.05


class AutoencoderConfig(StrictParams):
    name: ModelName
    spatial_dims: Literal[1, 2, 3] = 1
    in_channels: int = pydantic.Field(1, ge=1)
    out_channels: int | None = None
    input_size: tuple[int, ...] | None = None
    # convolutional backbone
    channels: tuple[int, ...] = (16, 32, 64)
    strides: tuple[int, ...] = (2, 2, 2)
    kernel_size: int = 3
    num_res_units: int = 0
    latent_channels: int = 8
    # dense backbone (and an optional flat bottleneck for conv)
    hidden: tuple[int, ...] = (256,)
    decoder_hidden: tuple[int, ...] | None = None
    latent_dim: int | None = None
    act: str = "PRELU"
    norm: str | None = "BATCH"
    dropout: float = 0.0
    # behaviour
    residual: bool = False
    recon_loss: Literal["mse", "l1", "bce", "categorical"] = "mse"
    code_bits: int | None = pydantic.Field(None, ge=2, le=16)
    rate_weight: float = pydantic.Field(0.0, ge=0)
    corruption: CorruptionConfig | None = None
    sparsity: SparsityConfig | None = None
    beta: float = 1.0

    @property
    def architecture(self) -> str:
        return self.name.split("_")[0]

    @property
    def variant(self) -> str:
        return self.name.split("_")[1]

    @property
    def outputs(self) -> int:
        return self.out_channels or self.in_channels

    @property
    def context_channels(self) -> int:
        """Input channels that only give context (e.g. neighbouring slices): half before, half after
        the centre channels, which are the ones reconstructed."""
        return self.in_channels - self.outputs

    @property
    def downsampling(self) -> int:
        return math.prod(self.strides)

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> "AutoencoderConfig":
        if self.input_size is not None and len(self.input_size) != self.spatial_dims:
            raise ValueError(f"input_size has {len(self.input_size)} dims, spatial_dims is {self.spatial_dims}")
        if self.architecture == "dense" and (self.input_size is None or self.latent_dim is None):
            raise ValueError("dense models need input_size and latent_dim")
        if self.architecture == "conv" and self.latent_dim is not None and self.input_size is None:
            raise ValueError("a conv model with a flat latent_dim needs input_size")
        if self.architecture == "conv" and len(self.channels) != len(self.strides):
            raise ValueError("channels and strides must have the same length")
        if self.context_channels < 0 or self.context_channels % 2:
            raise ValueError("out_channels must not exceed in_channels, and the extra input channels must split evenly around them")
        if self.residual and self.recon_loss not in ("mse", "l1"):
            raise ValueError("residual learning needs an mse or l1 loss")
        if self.variant == "sae" and self.sparsity is None:
            object.__setattr__(self, "sparsity", SparsityConfig())
        if self.variant == "dae" and self.corruption is None:
            object.__setattr__(self, "corruption", CorruptionConfig())
        return self
