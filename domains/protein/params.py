"""Params schemas of the protein stages (one per stage; unknown keys are errors)."""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from latente.domains.protein import BOUNDS
from latente.shared.models.config import AutoencoderConfig
from latente.shared.params import InterpolationParams, StrictParams, TrainerConfig
from latente.shared.sources import SourceParams

# the model's fields that the alignment sets (`model.model_config`): never params
ALIGNMENT_FIELDS = ("spatial_dims", "in_channels", "input_size")


class FetchParams(StrictParams):
    source: SourceParams


class PrepareParams(StrictParams):
    alignment: str  # file name inside data/raw/protein
    focus: str | None = None  # id of the focus sequence; None = the first sequence
    theta: float = pydantic.Field(0.2, gt=0.0, lt=1.0)  # neighbours have identity > 1 - theta


class DecoderParams(StrictParams):
    """DeepSequence's decoder output layer and weight priors, beyond the dense_vae (see domains/protein/model.py)."""

    sparse: bool = True
    bayesian: bool = False  # Gaussian posterior over decoder weights (DeepSequence SVI) instead of MAP
    patterns: int = pydantic.Field(4, ge=1)
    dictionary: int = pydantic.Field(40, ge=0)  # 0 = no dictionary over the 21 states
    l2: float = pydantic.Field(1.0, ge=0.0)  # MAP: weight of the N(0, 1) prior on decoder weights
    gate_prior_p: float = pydantic.Field(0.001, gt=0.0, lt=1.0)
    gate_prior_sigma: float = pydantic.Field(4.0, gt=0.0)


class TrainParams(StrictParams):
    """`model` is the family VAE's dense_vae; `model.model_config` fills in the alignment's width and states.

    The procedure trains an ensemble of `members` VAEs that share one validation split (drawn with
    `trainer.seed`) and differ in their initialisation and sample order (member k trains with seed
    `trainer.seed + 1000 k`); their ΔELBOs are averaged. `replicates` repeats the whole procedure with
    seeds `trainer.seed + 1, + 2, …`, for the seed spread the report shows.
    """

    model: AutoencoderConfig
    decoder: DecoderParams = DecoderParams()
    trainer: TrainerConfig = TrainerConfig()
    val_fraction: float = pydantic.Field(0.05, ge=0.0, lt=0.5)
    members: int = pydantic.Field(5, ge=1, le=50)
    replicates: int = pydantic.Field(1, ge=1, le=20)

    @pydantic.field_validator("model")
    @classmethod
    def _family_vae(cls, value: AutoencoderConfig) -> AutoencoderConfig:
        if value.name != "dense_vae" or value.recon_loss != "categorical":
            raise ValueError("the family VAE is a dense_vae with a categorical loss (a softmax over the states of each column)")
        given = [name for name in ALIGNMENT_FIELDS if name in value.model_fields_set]
        if given:
            raise ValueError(f"{', '.join(given)} come from the alignment: remove them")
        return value


class DepthParams(StrictParams):
    """The alignment-depth curve: the procedure retrained on subsamples of the prepared alignment.

    A subsample keeps the focus and draws the other sequences without replacement with probability
    proportional to their weight, then reweighs them (`data.subsample`); each model takes as many
    optimiser steps as the full alignment's (`training.steps_matched`).
    """

    sequences: list[pydantic.PositiveInt] = [250, 500, 1000, 2000]
    members: int = pydantic.Field(1, ge=1, le=50)  # ensemble size of each depth's procedure
    seed: int = 0


class CalibrationParams(StrictParams):
    """The ΔELBO standard error against the spread of repeated estimates, per number of samples."""

    samples: list[pydantic.PositiveInt] = [10, 30, 100, 300]
    repeats: int = pydantic.Field(5, ge=2)
    mutants: int = pydantic.Field(200, ge=2)  # drawn at random from the DMS


class GenerationParams(StrictParams):
    """Sequences sampled from the prior, and the sweep of the two knobs of `latente protein sample`."""

    sequences: int = pydantic.Field(1000, ge=1)
    temperatures: list[pydantic.PositiveFloat] = [1.0]  # the decoder's logits are divided by it
    latent_scales: list[pydantic.PositiveFloat] = [1.0]  # z ~ N(0, scale² I)


class EvaluateParams(StrictParams):
    mutations: str  # DMS CSV inside data/raw/protein
    mutant_column: str = "mutant"
    score_column: str = "score"
    samples: int = pydantic.Field(100, ge=1)  # latent draws per sequence
    # the bound whose difference scores a mutant; the other is reported beside it. The ELBO: at the draws a score
    # can afford, the importance-weighted bound's Monte Carlo error is several times larger and shrinks far slower
    # than 1/√S (its weights are heavy-tailed), which the report's calibration shows for either bound
    bound: Literal[BOUNDS] = BOUNDS[0]
    pseudocount: float = pydantic.Field(1.0, gt=0.0)  # site-independent baseline
    generation: GenerationParams = GenerationParams()
    depth: DepthParams = DepthParams()
    calibration: CalibrationParams = CalibrationParams()
    clusters: int = pydantic.Field(8, ge=2)  # sequence clusters that colour the latent projection
    interpolation: Optional[InterpolationParams] = None
    seed: int = 0
