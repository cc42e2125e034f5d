"""One params schema per stage of the MRI pipeline (the `mri:` section of params.yaml)."""
from __future__ import annotations

from typing import Literal, Optional

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


class AdaptParams(StrictParams):
    """A self-supervised fine-tune of the trained model on one noisy volume, its own only.

    `steps` is the budget: a step count, not seconds, so that a seeded adaptation is reproducible.
    `alpha` belongs to `recorrupted`, `masked_fraction` and `neighbourhood` to `blind_spot`. The
    loss on a fixed batch of `val_patches` patches is checked every `check_every` steps and before the
    first; a check's weights qualify only where that loss fell by more than two paired standard errors,
    the lowest qualifying check is kept, else the trained model (`training.adapt` says why).
    """

    method: Literal["recorrupted", "blind_spot"] = "recorrupted"
    steps: int = pydantic.Field(300, ge=1)
    batch_size: int = pydantic.Field(8, ge=1)
    patch_size: int = pydantic.Field(64, ge=16)
    lr: float = pydantic.Field(3.0e-4, gt=0.0)
    alpha: float = pydantic.Field(0.5, gt=0.0)  # recorruption strength: input noise σ·√(1 + α²), target noise σ·√(1 + 1/α²)
    masked_fraction: float = pydantic.Field(0.02, gt=0.0, lt=0.5)  # share of centre-slice voxels hidden per patch
    neighbourhood: int = pydantic.Field(2, ge=1)  # a hidden voxel takes the value of a random voxel this far away at most
    val_patches: int = pydantic.Field(32, ge=1)
    check_every: int = pydantic.Field(50, ge=1)
    seed: int = 0


class PatchExplorer(StrictParams):
    """The patches whose codes the explorer shows: a grid of `size` × `size` voxel patches, `stride` apart, over the
    middle evaluated axial slice of each test volume (the report's panels' slice), those with at least a share `head`
    of their voxels in the mask; each seen clean and at every evaluation noise level, in the very noisy volumes the
    methods are scored on."""

    size: int = pydantic.Field(24, ge=4)
    stride: int = pydantic.Field(24, ge=1)
    head: float = pydantic.Field(0.5, gt=0.0, le=1.0)


# what the classical denoisers are told: the added noise σ, or the total σ (the volume's own noise ⊕ the added)
BASELINE_SIGMAS = ("total", "added")


class EvaluateParams(StrictParams):
    noise: tuple[float, ...] = (0.01, 0.03, 0.05, 0.07, 0.09)
    kind: Literal["rician", "gaussian"] = "rician"
    seed: int = 0
    slices: int = pydantic.Field(40, ge=0)
    mask_threshold: float = 0.05
    methods: tuple[str, ...] = BASELINES
    figure_noise: float = 0.05
    # the first is the headline comparison (rows without a `sigma` condition); the others add rows with `sigma`
    baseline_sigma: tuple[Literal["total", "added"], ...] = BASELINE_SIGMAS
    adapt: AdaptParams = AdaptParams()
    adapt_volumes: tuple[str, ...] = ()  # test volumes also scored after `adapt` (method model_adapted)
    explorer: Optional[PatchExplorer] = None  # the latent explorer's patch codes (plots/patches.csv)

    @pydantic.field_validator("baseline_sigma")
    @classmethod
    def _sigmas(cls, sigmas: tuple[str, ...]) -> tuple[str, ...]:
        if not sigmas or len(set(sigmas)) != len(sigmas):
            raise ValueError(f"name each of {list(BASELINE_SIGMAS)} at most once, at least one")
        return sigmas

    @pydantic.field_validator("methods")
    @classmethod
    def _known(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(methods) - set(BASELINES))
        if unknown:
            raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
        return methods
