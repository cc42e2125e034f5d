"""Autoencoder variants with one output contract: reconstruction, code, loss terms.

Every variant computes per-sample loss terms (shape [B], summed over the elements of a
sample so that a VAE's terms form a proper ELBO) and a scalar `loss`, their batch mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from latente.shared.models.backbones import build_backbone
from latente.shared.models.config import AutoencoderConfig
from latente.shared.noise import corrupt


@dataclass
class AEOutput:
    recon: torch.Tensor
    z: torch.Tensor
    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def _per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


class Autoencoder(nn.Module):
    """Plain autoencoder; the variants below change corruption, code or penalty."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        self.encoder, self.decoder = build_backbone(config, self.code_width())

    def code_width(self) -> int:
        cfg = self.config
        return cfg.latent_dim if cfg.latent_dim is not None else cfg.latent_channels

    # --- pieces the variants override -------------------------------------------------
    def corrupt_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def bottleneck(self, h: torch.Tensor, sample: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return h, {}

    def penalty(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}

    # --- shared machinery --------------------------------------------------------------
    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Pad spatial dims up to a multiple of the total stride; return the original size."""
        size = tuple(x.shape[2:])
        if self.config.architecture != "conv":
            return x, size
        step = self.config.downsampling
        pads: list[int] = []
        for s in reversed(size):
            pads += [0, (-s) % step]
        return (F.pad(x, pads) if any(pads) else x), size

    def encode(self, x: torch.Tensor, sample: bool | None = None) -> torch.Tensor:
        """The code of `x` (the posterior mean for a VAE unless sampling)."""
        padded, _ = self._pad(x)
        z, _ = self.bottleneck(self.encoder(padded), self._sampling(sample))
        return z

    def decode(self, z: torch.Tensor, size: tuple[int, ...] | None = None) -> torch.Tensor:
        """Raw decoder output (logits for bce/categorical), cropped to `size`."""
        out = self.decoder(z)
        if size is not None:
            out = out[(..., *[slice(0, s) for s in size])]
        return out

    def to_data(self, raw: torch.Tensor) -> torch.Tensor:
        """Map raw decoder output to the data space (probabilities for bce/categorical)."""
        if self.config.recon_loss == "bce":
            return torch.sigmoid(raw)
        if self.config.recon_loss == "categorical":
            return torch.softmax(raw, dim=1)
        return raw

    def _sampling(self, sample: bool | None) -> bool:
        return self.training if sample is None else sample

    def reconstruction_term(self, raw: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        kind = self.config.recon_loss
        if kind == "mse":
            return _per_sample((raw - target) ** 2)
        if kind == "l1":
            return _per_sample((raw - target).abs())
        if kind == "bce":
            return _per_sample(F.binary_cross_entropy_with_logits(raw, target, reduction="none"))
        # categorical: target is one-hot (or a distribution) over dim 1
        return _per_sample(-(target * F.log_softmax(raw, dim=1)).sum(1, keepdim=True))

    def centre(self, x: torch.Tensor) -> torch.Tensor:
        """The channels of `x` that the model reconstructs (all of them unless some are context)."""
        first = self.config.context_channels // 2
        return x[:, first : first + self.config.outputs] if self.config.context_channels else x

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None, sample: bool | None = None) -> AEOutput:
        """`target` defaults to `x` (its centre channels when the others are context); denoising
        corrupts `x` only while training."""
        target = self.centre(x) if target is None else target
        noisy = self.corrupt_input(x) if self.training else x
        padded, size = self._pad(noisy)
        z, terms = self.bottleneck(self.encoder(padded), self._sampling(sample))
        raw = self.decode(z, size)
        if self.config.residual:
            raw = self.centre(noisy) - raw
        terms = {"recon": self.reconstruction_term(raw, target), **terms, **self.penalty(z)}
        loss = sum(self.weight(name) * term for name, term in terms.items()).mean()
        return AEOutput(recon=self.to_data(raw), z=z, loss=loss, terms=terms)

    def weight(self, term: str) -> float:
        weights = {"kl": self.config.beta, "sparsity": self.config.sparsity.weight if self.config.sparsity else 0.0}
        return weights.get(term, 1.0)


class DenoisingAutoencoder(Autoencoder):
    def corrupt_input(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config.corruption
        assert cfg is not None
        low, high = cfg.level
        level = low + (high - low) * torch.rand(x.shape[0], dtype=x.dtype, device=x.device)
        return corrupt(x, cfg.kind, level)


class SparseAutoencoder(Autoencoder):
    def penalty(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg = self.config.sparsity
        assert cfg is not None
        if cfg.kind == "l1":
            return {"sparsity": _per_sample(z.abs())}
        # KL between the target rate and each unit's mean sigmoid activation over the batch
        rate = torch.sigmoid(z).mean(0).clamp(1e-6, 1 - 1e-6)
        rho = cfg.target
        kl = (rho * torch.log(rho / rate) + (1 - rho) * torch.log((1 - rho) / (1 - rate))).sum()
        return {"sparsity": kl.expand(z.shape[0])}


class VariationalAutoencoder(Autoencoder):
    """β-VAE: the encoder emits mean and log-variance; the mean is the code at eval time."""

    def code_width(self) -> int:
        return 2 * super().code_width()

    def bottleneck(self, h: torch.Tensor, sample: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mu, logvar = h.chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        kl = _per_sample(0.5 * (mu * mu + logvar.exp() - 1.0 - logvar))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        return z, {"kl": kl}


VARIANT_CLASSES: dict[str, type[Autoencoder]] = {
    "ae": Autoencoder,
    "dae": DenoisingAutoencoder,
    "sae": SparseAutoencoder,
    "vae": VariationalAutoencoder,
}


def build_model(config: AutoencoderConfig | dict) -> Autoencoder:
    """The one registry: `config.name` is `<conv|dense>_<ae|dae|sae|vae>`."""
    if isinstance(config, dict):
        config = AutoencoderConfig.model_validate(config)
    return VARIANT_CLASSES[config.variant](config)
