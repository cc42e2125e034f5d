"""Params schemas of the protein stages (one per stage; unknown keys are errors)."""
from __future__ import annotations

import pydantic

from latente.shared.models.config import AutoencoderConfig
from latente.shared.params import StrictParams
from latente.shared.sources import SourceParams
from latente.shared.params import TrainerConfig

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
    """`model` is the family VAE's dense_vae; `model.model_config` fills in the alignment's width and states."""

    model: AutoencoderConfig
    decoder: DecoderParams = DecoderParams()
    trainer: TrainerConfig = TrainerConfig()
    val_fraction: float = pydantic.Field(0.05, ge=0.0, lt=0.5)

    @pydantic.field_validator("model")
    @classmethod
    def _family_vae(cls, value: AutoencoderConfig) -> AutoencoderConfig:
        if value.name != "dense_vae" or value.recon_loss != "categorical":
            raise ValueError("the family VAE is a dense_vae with a categorical loss (a softmax over the states of each column)")
        given = [name for name in ALIGNMENT_FIELDS if name in value.model_fields_set]
        if given:
            raise ValueError(f"{', '.join(given)} come from the alignment: remove them")
        return value


class EvaluateParams(StrictParams):
    mutations: str  # DMS CSV inside data/raw/protein
    mutant_column: str = "mutant"
    score_column: str = "score"
    samples: int = pydantic.Field(100, ge=1)  # ELBO samples per sequence
    pseudocount: float = pydantic.Field(1.0, gt=0.0)  # site-independent baseline
    generated: int = pydantic.Field(1000, ge=1)  # sequences sampled for the generation statistics
    clusters: int = pydantic.Field(8, ge=2)  # sequence clusters that colour the latent projection
    seed: int = 0
