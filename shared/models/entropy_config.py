"""The scale hyperprior's settings, importable without torch (params validate before torch loads)."""
from __future__ import annotations

import pydantic

from latente.shared.params import StrictParams


class HyperpriorConfig(StrictParams):
    """The side-information network and the scale table (defaults: CompressAI's 0.11 … 256, 64 levels)."""

    channels: int = pydantic.Field(16, ge=1)  # of z
    hidden: int = pydantic.Field(64, ge=1)  # h_a and h_s width
    scale_min: float = pydantic.Field(0.11, gt=0)
    scale_max: float = pydantic.Field(256.0, gt=0)
    levels: int = pydantic.Field(64, ge=2, le=256)
    symbol_bound: int = pydantic.Field(1023, ge=1, le=2**15)  # y symbols are clipped to ±symbol_bound
    side_bound: int = pydantic.Field(63, ge=1, le=2**15)  # z symbols are clipped to ±side_bound

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> "HyperpriorConfig":
        if self.scale_max <= self.scale_min:
            raise ValueError(f"scale_max ({self.scale_max:g}) must exceed scale_min ({self.scale_min:g})")
        return self
