"""Params schemas, one per stage, plus the reader and detector configs the CLI reuses."""
from __future__ import annotations

from typing import Literal

import pydantic

from latente.shared.models import AutoencoderConfig
from latente.shared.params import StrictParams
from latente.shared.sources import SourceParams
from latente.shared.params import TrainerConfig


class ReaderConfig(StrictParams):
    """How to read a multivariate sensor CSV (SKAB's layout by default)."""

    sep: str = ";"
    timestamp: str | None = "datetime"
    sensors: tuple[str, ...] | None = None  # None: every column with numbers, except timestamp and labels
    label: str | None = "anomaly"
    changepoint: str | None = "changepoint"
    nan_policy: Literal["error", "drop", "ffill"] = "ffill"

    def label_columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.label, self.changepoint) if c)


class CalibrationRule(StrictParams):
    """How a detector's sensor weights and threshold follow from rows of normal operation.

    A detector saves its rule, so that `score --calibrate-rows N` can redo the standardisation,
    the weights and the threshold on the first N rows of the file it scores, exactly as the
    detector's own fit did on its training rows.
    """

    threshold_quantile: float = pydantic.Field(0.999, gt=0.0, le=1.0)
    threshold_factor: float = pydantic.Field(4 / 3, gt=0.0)
    sensor_weights: Literal["short_term", "uniform"] = "short_term"


class DetectorConfig(CalibrationRule):
    """Everything that defines one fitted detector, apart from its data.

    `model` leaves the data-derived fields (spatial_dims, in_channels, input_size) to
    `model.model_config`, which sets them from the sensors and `window`. The defaults follow
    SKAB's Conv-AE notebook: Adam 1e-3 at a constant rate, batch 32, at most 100 epochs,
    early stopping with patience 5 on the last 10 % of the training windows.
    """

    window: int = pydantic.Field(60, ge=2)
    val_fraction: float = pydantic.Field(0.1, ge=0.0, lt=1.0)  # the last windows validate, as Keras's validation_split
    model: AutoencoderConfig = AutoencoderConfig(
        name="conv_ae", channels=(32, 16), strides=(2, 2), kernel_size=7, latent_channels=8, act="RELU", norm=None,
        dropout=0.2,
    )
    trainer: TrainerConfig = TrainerConfig(
        epochs=100, batch_size=32, lr=1e-3, patience=5, scheduler="constant", grad_clip=None, seed=0, device="cpu",
        bf16=False, threads=2, adamw_kernel="fused",
    )

    def with_trainer(self, **changes) -> "DetectorConfig":
        """The same detector trained with other trainer settings (a seed replica, fewer epochs)."""
        return self.model_copy(update={"trainer": self.trainer.model_copy(update=changes)})

    def rule(self) -> CalibrationRule:
        """The calibration part alone, as a detector saves it."""
        return CalibrationRule.model_validate(self.model_dump(include=set(CalibrationRule.model_fields)))


class FetchParams(StrictParams):
    source: SourceParams


class PrepareParams(StrictParams):
    reader: ReaderConfig = ReaderConfig()
    benchmark: tuple[str, ...] = ("skab/valve1", "skab/valve2")  # folders whose labelled files form the benchmark
    normal_file: str | None = "skab/anomaly-free/anomaly-free.csv"  # unlabelled normal run for the global model


class TrainParams(StrictParams):
    train_rows: int = pydantic.Field(400, ge=2)  # SKAB: the first 400 rows of each file are the normal segment
    detector: DetectorConfig = DetectorConfig()
    global_epochs: int = pydantic.Field(30, ge=1)  # the global model sees ~9,000 windows per epoch
    robustness_seeds: tuple[int, ...] = (1, 2)  # extra per-file replicas, to report the spread over seeds


class PCABaselineParams(StrictParams):
    """SKAB's T²+Q (core/t2.py): 85 % variance, p = 0.999, rolling median of 5."""

    explained_variance: float = pydantic.Field(0.85, gt=0.0, le=1.0)
    p_value: float = pydantic.Field(0.999, gt=0.0, lt=1.0)
    median_window: int = pydantic.Field(5, ge=1)
    q_limit: Literal["skab", "jackson_mudholkar"] = "skab"


class IsolationForestParams(StrictParams):
    """SKAB's notebook: raw features, contamination 0.0005, rolling median of 3."""

    contamination: float = pydantic.Field(0.0005, gt=0.0, le=0.5)
    median_window: int = pydantic.Field(3, ge=1)
    n_estimators: int = pydantic.Field(100, ge=1)
    seed: int = 0


class EvaluateParams(StrictParams):
    pca_t2q: PCABaselineParams = PCABaselineParams()
    isolation_forest: IsolationForestParams = IsolationForestParams()
    nab_window_s: float = pydantic.Field(60.0, gt=0.0)  # SKAB's change-point leaderboard: 60 s right of each CP
    plot_files: tuple[str, ...] = ("skab/valve1/8.csv", "skab/valve2/2.csv")
    explain_file: str = "skab/valve1/0.csv"
    explorer_file: str = "skab/valve1/8.csv"  # whose test windows the latent explorer shows (each file has its own detector)
