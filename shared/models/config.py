"""One config schema for every autoencoder: validated in params.yaml, saved in config.json.

A field that the chosen model does not use is an error when it is set to anything but its
default (`beta` on a conv_ae, `hidden` on a conv model...), so no setting is silently ignored.
Fields left at their default are fine, which also lets a full `model_dump()` (config.json, the
domains' `model_config` hooks) validate again.
"""
from __future__ import annotations

import math
from typing import Callable, Literal

import pydantic
from pydantic_core import PydanticCustomError

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

    @pydantic.model_validator(mode="after")
    def _target_needs_kl(self) -> "SparsityConfig":
        if self.kind != "kl" and _set_to_non_default(self, "target"):
            raise PydanticCustomError("unused_field", "target is only used by kind 'kl', not by kind '{kind}': remove it", {"kind": self.kind})
        return self


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

    @property
    def flat_code(self) -> bool:
        """Whether the code is a vector (dense models, or conv with latent_dim): the network then fixes
        the input size, which params leave out and the domain's `model_config` hook fills from the data."""
        return self.architecture == "dense" or self.latent_dim is not None

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> "AutoencoderConfig":
        for name, (used, users) in USED_ONLY_BY.items():
            if not used(self) and _set_to_non_default(self, name):
                raise PydanticCustomError("unused_field", "{field} is not used by this {model} model (only by {users}): remove it",
                                          {"field": name, "model": self.name, "users": users})
        if self.input_size is not None and len(self.input_size) != self.spatial_dims:
            raise ValueError(f"input_size has {len(self.input_size)} dims, spatial_dims is {self.spatial_dims}")
        if self.architecture == "dense" and self.latent_dim is None:
            raise ValueError("dense models need latent_dim")
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


# The fields that only some models use, with the test for "this model uses it" (read off
# backbones.py and autoencoders.py) and those models in words. Every other field is used by all.
USED_ONLY_BY: dict[str, tuple[Callable[[AutoencoderConfig], bool], str]] = {
    "channels": (lambda c: c.architecture == "conv", "conv_* models"),
    "strides": (lambda c: c.architecture == "conv", "conv_* models"),
    "kernel_size": (lambda c: c.architecture == "conv", "conv_* models"),
    "num_res_units": (lambda c: c.architecture == "conv", "conv_* models"),
    "latent_channels": (lambda c: c.architecture == "conv" and c.latent_dim is None, "conv_* models without a flat latent_dim"),
    "hidden": (lambda c: c.architecture == "dense", "dense_* models"),
    "decoder_hidden": (lambda c: c.architecture == "dense", "dense_* models"),
    "norm": (lambda c: c.architecture == "conv", "conv_* models"),
    "corruption": (lambda c: c.variant == "dae", "*_dae models"),
    "sparsity": (lambda c: c.variant == "sae", "*_sae models"),
    "beta": (lambda c: c.variant == "vae", "*_vae models"),
}


def _set_to_non_default(config: StrictParams, name: str) -> bool:
    return name in config.model_fields_set and getattr(config, name) != type(config).model_fields[name].default
