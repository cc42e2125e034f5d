"""Params schemas of the protein stages (one per stage; unknown keys are errors)."""
from __future__ import annotations

import pydantic

from latente.shared.params import StrictParams
from latente.shared.sources import SourceParams
from latente.shared.trainer import TrainerConfig


class FetchParams(StrictParams):
    source: SourceParams


class PrepareParams(StrictParams):
    alignment: str  # file name inside data/raw/protein
    focus: str | None = None  # id of the focus sequence; None = the first sequence
    theta: float = pydantic.Field(0.2, gt=0.0, lt=1.0)  # neighbours have identity > 1 - theta


class ModelParams(StrictParams):
    """The dense_vae sizes (DeepSequence: encoder 1500-1500, latent 30, decoder 100-500)."""

    hidden: tuple[int, ...] = (1500, 1500)
    latent_dim: int = 30
    decoder_hidden: tuple[int, ...] = (100, 500)
    act: str = "RELU"
    beta: float = pydantic.Field(1.0, gt=0.0)  # weight of the latent KL while training (scoring uses the ELBO, β = 1)


class DecoderParams(StrictParams):
    """DeepSequence's output layer and MAP priors (see domains/protein/model.py)."""

    sparse: bool = True
    bayesian: bool = False  # Gaussian posterior over decoder weights (DeepSequence SVI) instead of MAP
    patterns: int = pydantic.Field(4, ge=1)
    dictionary: int = pydantic.Field(40, ge=0)  # 0 = no dictionary over the 21 states
    l2: float = pydantic.Field(1.0, ge=0.0)  # MAP: weight of the N(0, 1) prior on decoder weights
    gate_prior_p: float = pydantic.Field(0.001, gt=0.0, lt=1.0)
    gate_prior_sigma: float = pydantic.Field(4.0, gt=0.0)
    dropout: float = pydantic.Field(0.0, ge=0.0, lt=1.0)  # on the decoder's hidden layers


class TrainParams(StrictParams):
    model: ModelParams = ModelParams()
    decoder: DecoderParams = DecoderParams()
    trainer: TrainerConfig = TrainerConfig()
    val_fraction: float = pydantic.Field(0.05, ge=0.0, lt=0.5)


class EvaluateParams(StrictParams):
    mutations: str  # DMS CSV inside data/raw/protein
    mutant_column: str = "mutant"
    score_column: str = "score"
    samples: int = pydantic.Field(100, ge=1)  # ELBO samples per sequence
    pseudocount: float = pydantic.Field(1.0, gt=0.0)  # site-independent baseline
    generated: int = pydantic.Field(1000, ge=1)  # sequences sampled for the generation statistics
    clusters: int = pydantic.Field(8, ge=2)  # sequence clusters that colour the latent projection
    seed: int = 0
