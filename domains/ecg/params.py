"""Params schemas of the ECG stages; each stage sees only its own keys."""
from __future__ import annotations

import pydantic

from latente.shared.models.config import AutoencoderConfig
from latente.shared.params import StrictParams
from latente.shared.sources import SourceParams
from latente.shared.params import TrainerConfig


class FetchParams(StrictParams):
    source: SourceParams


class PrepareParams(StrictParams):
    train_records: tuple[str, ...]
    lead: str = "0"
    validation_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    scale_mv: float = pydantic.Field(1.0, gt=0)
    seconds: float | None = pydantic.Field(None, gt=0)  # use only the first seconds of each record


class CodecVariant(StrictParams):
    """What one named model changes in `model`: its rate weight, which sets its operating point."""

    rate_weight: float = pydantic.Field(ge=0)


class TrainParams(StrictParams):
    window: int = pydantic.Field(1024, ge=64)
    hop: int | None = pydantic.Field(None, ge=1)  # between training windows; default: the window
    model: AutoencoderConfig
    trainer: TrainerConfig
    variants: dict[str, CodecVariant] = pydantic.Field(default_factory=dict)  # none: one model, "default"


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
    wavelet_target_crs: tuple[float, ...]  # CRs at which the wavelet baseline's PRD is reported
    wavelet_target_prd: float = pydantic.Field(gt=0)  # PRD at which its CR is reported
