"""Dimension-generic autoencoders: one config, one registry, one loader.

The config schemas import without torch, so params validation and `latente --help` stay fast;
the torch-backed names are imported on first use (PEP 562 module `__getattr__`).
"""
from importlib import import_module
from typing import Any

from latente.shared.models.config import MODEL_NAMES, AutoencoderConfig, CorruptionConfig, SparsityConfig

_TORCH_BACKED = {
    "AEOutput": "latente.shared.models.autoencoders",
    "Autoencoder": "latente.shared.models.autoencoders",
    "build_model": "latente.shared.models.autoencoders",
    "LoadedModel": "latente.shared.models.store",
    "load_model": "latente.shared.models.store",
    "save_model": "latente.shared.models.store",
}

__all__ = ["AutoencoderConfig", "CorruptionConfig", "MODEL_NAMES", "SparsityConfig", *_TORCH_BACKED]


def __getattr__(name: str) -> Any:
    if name not in _TORCH_BACKED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_TORCH_BACKED[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_TORCH_BACKED})
