"""Dimension-generic autoencoders: one config, one registry, one loader."""
from latente.shared.models.autoencoders import AEOutput, Autoencoder, build_model
from latente.shared.models.config import MODEL_NAMES, AutoencoderConfig, CorruptionConfig, SparsityConfig
from latente.shared.models.store import LoadedModel, load_model, save_model

__all__ = [
    "AEOutput", "Autoencoder", "AutoencoderConfig", "CorruptionConfig", "LoadedModel",
    "MODEL_NAMES", "SparsityConfig", "build_model", "load_model", "save_model",
]
