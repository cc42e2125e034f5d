"""Params schemas of the ECG stages; each stage sees only its own keys."""
from __future__ import annotations

import pydantic

from latente.shared.models.config import AutoencoderConfig
from latente.shared.models.entropy_config import HyperpriorConfig
from latente.shared.params import StrictParams
from latente.shared.sources import SourceParams
from latente.shared.params import TrainerConfig


class FetchParams(StrictParams):
    source: SourceParams


class PrepareParams(StrictParams):
    train_records: tuple[str, ...]
    lead: str = "0"
    validation_fraction: float = pydantic.Field(0.1, gt=0, lt=1)
    seconds: float | None = pydantic.Field(None, gt=0)  # use only the first seconds of each record


SHIFT_LIMIT = 40
"""Rate-control shifts run from −40 to 40: quantisation steps exp(s·shift), s the scale table's log
step (0.123 for the default table), so from ×1/137 to ×137 of the trained step: beyond any useful CR."""


class CodecVariant(StrictParams):
    """What one named model changes: its rate weight λ (loss = Σ squared error in mV² + λ · bits),
    which sets the rate it is best at."""

    rate_weight: float = pydantic.Field(gt=0)


class TrainParams(StrictParams):
    window: int = pydantic.Field(1024, ge=64)
    hop: int | None = pydantic.Field(None, ge=1)  # between training windows; default: the window
    model: AutoencoderConfig  # the analysis and synthesis transforms
    hyperprior: HyperpriorConfig = HyperpriorConfig()
    trainer: TrainerConfig
    variants: dict[str, CodecVariant] = pydantic.Field(min_length=1)  # one model per name


class OperatingPoint(StrictParams):
    """A model and how its rate is set per record: reach a CR, stay within a PRDN, or a fixed shift."""

    model: str
    cr: float | None = pydantic.Field(None, gt=0)  # the finest step whose file reaches this CR
    prdn: float | None = pydantic.Field(None, gt=0)  # the coarsest step whose PRDN stays within this (%)
    shift: int | None = pydantic.Field(None, ge=-SHIFT_LIMIT, le=SHIFT_LIMIT)  # a fixed step exp(step · shift)
    max_error: int = pydantic.Field(0, ge=0)

    @pydantic.model_validator(mode="after")
    def _one_rate_setting(self) -> "OperatingPoint":
        given = [name for name in ("cr", "prdn", "shift") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of cr, prdn, shift (given: {', '.join(given) or 'none'})")
        return self


class BeatExplorer(StrictParams):
    """The beats whose codes the explorer shows: evenly spaced over each test record (so the classes
    keep their proportions), each cut from `before_s` before its annotated R peak to `after_s` after."""

    operating_point: str  # whose coded latents and reconstruction are shown
    beats_per_record: int = pydantic.Field(ge=2)
    before_s: float = pydantic.Field(gt=0)
    after_s: float = pydantic.Field(gt=0)


class EvaluateParams(StrictParams):
    test_records: tuple[str, ...]
    lead: str = "MLII"
    seconds: float | None = pydantic.Field(None, gt=0)  # evaluate only the first seconds of each record
    operating_points: dict[str, OperatingPoint]
    rate_distortion: tuple[OperatingPoint, ...] = ()
    wavelet_target_crs: tuple[float, ...]  # CRs at which the wavelet baseline's PRD is reported
    wavelet_target_prd: float = pydantic.Field(gt=0)  # PRD at which its CR is reported
    explorer: BeatExplorer

    @pydantic.model_validator(mode="after")
    def _explorer_point_exists(self) -> "EvaluateParams":
        if self.explorer.operating_point not in self.operating_points:
            raise ValueError(f"explorer.operating_point {self.explorer.operating_point!r} is not one of operating_points "
                             f"({', '.join(self.operating_points)})")
        return self
