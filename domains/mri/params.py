"""One params schema per stage of the MRI pipeline (the `mri:` section of params.yaml)."""
from __future__ import annotations

from typing import Literal

import pydantic

from latente.shared.models.config import AutoencoderConfig
from latente.shared.params import StrictParams
from latente.shared.sources import SourceParams
from latente.shared.params import TrainerConfig

# the methods the model is scored beside: the noisy input itself and the classical denoisers of baselines.py
BASELINES = ("noisy", "gaussian", "nlm", "bm3d")


class FetchParams(StrictParams):
    source: SourceParams


class PrepareParams(StrictParams):
    """Which raw volumes train and test; training volumes pair with a brain mask (voxels > 0)."""

    train_volumes: tuple[str, ...]
    train_masks: tuple[str, ...]
    test_volumes: tuple[str, ...]
    min_brain_fraction: float = pydantic.Field(0.05, ge=0.0, lt=1.0)
    val_fraction: float = pydantic.Field(0.15, gt=0.0, lt=1.0)

    @pydantic.model_validator(mode="after")
    def _paired(self) -> "PrepareParams":
        if len(self.train_masks) != len(self.train_volumes):
            raise ValueError("train_masks must name one mask per training volume")
        overlap = set(self.train_volumes) & set(self.test_volumes)
        if overlap:
            raise ValueError(f"the split is by volume: {sorted(overlap)} is both a training and a test volume")
        return self


class PatchParams(StrictParams):
    """How training patches are drawn from the axial slices of the training volumes."""

    size: int = pydantic.Field(64, ge=16)
    per_epoch: int = pydantic.Field(6000, ge=1)
    brain_only: float = pydantic.Field(0.5, ge=0.0, le=1.0)
    foreground: float = pydantic.Field(0.9, ge=0.0, le=1.0)  # share of patches centred on a head voxel
    gain: tuple[float, float] = (0.5, 1.0)
    # in-plane Gaussian blur of the clean slice, so that smoother anatomy (e.g. population templates) is in the prior
    blur_share: float = pydantic.Field(0.0, ge=0.0, le=1.0)
    blur: tuple[float, float] = (0.3, 1.2)
    val_levels: tuple[float, ...] = (0.01, 0.03, 0.05, 0.07, 0.09)


class TrainParams(StrictParams):
    """`model` declares the denoiser whole; `model.model_config` checks that it fits the 2.5-D slice stacks."""

    model: AutoencoderConfig
    patches: PatchParams = PatchParams()
    trainer: TrainerConfig = TrainerConfig()


class EvaluateParams(StrictParams):
    noise: tuple[float, ...] = (0.01, 0.03, 0.05, 0.07, 0.09)
    kind: Literal["rician", "gaussian"] = "rician"
    seed: int = 0
    slices: int = pydantic.Field(40, ge=0)
    mask_threshold: float = 0.05
    methods: tuple[str, ...] = BASELINES
    figure_noise: float = 0.05

    @pydantic.field_validator("methods")
    @classmethod
    def _known(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(methods) - set(BASELINES))
        if unknown:
            raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
        return methods
