"""Params schemas of the ECG stages; each stage sees only its own keys."""
from __future__ import annotations


import pydantic

from latente.shared.models import AutoencoderConfig
from latente.shared.params import StrictParams
from latente.shared.sources import SourceParams
from latente.shared.trainer import TrainerConfig


class FetchParams(StrictParams):
    source: SourceParams


class PrepareParams(StrictParams):
    train_records: tuple[str, ...]
    lead: str = "0"
    validation_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    scale_mv: float = pydantic.Field(1.0, gt=0)
    seconds: float | None = pydantic.Field(None, gt=0)  # use only the first seconds of each record


class TrainParams(StrictParams):
    window: int = pydantic.Field(1024, ge=64)
    hop: int | None = pydantic.Field(None, ge=1)  # between training windows; default: the window
    model: AutoencoderConfig
    trainer: TrainerConfig
    variants: dict[str, dict] = pydantic.Field(default_factory=dict)

    def variant_configs(self) -> dict[str, AutoencoderConfig]:
        """One model per named variant (overrides of `model`), or just `model` as 'default'."""
        if not self.variants:
            return {"default": self.model}
        base = self.model.model_dump()
        return {name: AutoencoderConfig.model_validate({**base, **over}) for name, over in self.variants.items()}


class OperatingPoint(StrictParams):
    model: str
    bits: int = pydantic.Field(ge=2, le=16)
    max_error: int = pydantic.Field(0, ge=0)


class EvaluateParams(StrictParams):
    test_records: tuple[str, ...]
    lead: str = "MLII"
    seconds: float | None = pydantic.Field(None, gt=0)  # evaluate only the first seconds of each record
    operating_points: dict[str, OperatingPoint]
    rate_distortion: tuple[OperatingPoint, ...] = ()
    wavelet_target_crs: tuple[float, ...] = (32.25, 50.0)
    wavelet_target_prd: float = 2.73
