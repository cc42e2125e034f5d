"""Input corruptions for denoising autoencoders and for seeded evaluation noise."""
from __future__ import annotations

import torch

CORRUPTIONS = ("gaussian", "rician", "masking")


def corrupt(
    x: torch.Tensor,
    kind: str,
    level: float | torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Corrupt `x`; `level` is a scalar or one value per sample (shape [B]).

    gaussian: x + N(0, level²); rician: |x + N(0, level²) + i·N(0, level²)|, the
    magnitude noise of MRI; masking: each element zeroed with probability `level`.
    """
    level = torch.as_tensor(level, dtype=x.dtype, device=x.device)
    if level.ndim == 1:
        level = level.view(-1, *([1] * (x.ndim - 1)))

    def normal() -> torch.Tensor:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)

    if kind == "gaussian":
        return x + level * normal()
    if kind == "rician":
        real = x + level * normal()
        imag = level * normal()
        return torch.sqrt(real * real + imag * imag)
    if kind == "masking":
        keep = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) >= level
        return x * keep
    raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")
