"""A saved model is a folder: config.json + model.safetensors (+ extras.safetensors). No pickle."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pydantic
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from latente.shared import __version__
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.models.autoencoders import Autoencoder, build_model
from latente.shared.models.config import AutoencoderConfig
from latente.shared.params import first_problem

CONFIG = "config.json"
CONFIG_DIGEST = "config_sha256"
CONFIG_KEYS = ("latente_version", "domain", "model", "preprocessing", "data", "info", "files", CONFIG_DIGEST)  # what save_model writes
WEIGHTS = "model.safetensors"
EXTRAS = "extras.safetensors"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_digest(meta: dict[str, Any]) -> str:
    """sha256 of a model config without its own digest, keys sorted and no spaces: the seal that
    makes an edited config.json fail to load, as the weights' digests do for the tensors."""
    body = {key: value for key, value in meta.items() if key != CONFIG_DIGEST}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


def save_model(
    model: Autoencoder,
    folder: str | Path,
    *,
    domain: str,
    preprocessing: dict[str, Any],
    data: dict[str, Any],
    extras: dict[str, torch.Tensor] | None = None,
    info: dict[str, Any] | None = None,
    force: bool = True,
) -> Path:
    """Write the model folder atomically. `preprocessing` is everything needed to use it."""
    folder = Path(folder)
    with atomic_dir(folder, force=force) as tmp:
        save_tensors(model.state_dict(), tmp / WEIGHTS)
        files = {WEIGHTS: sha256(tmp / WEIGHTS)}
        if extras:
            save_tensors(extras, tmp / EXTRAS)
            files[EXTRAS] = sha256(tmp / EXTRAS)
        meta = {
            "latente_version": __version__,
            "domain": domain,
            "model": model.config.model_dump(mode="json"),
            "preprocessing": preprocessing,
            "data": data,
            "info": info or {},
            "files": files,
        }
        meta = json.loads(json.dumps(meta))  # sealed as load_model will read it (tuples as lists, keys as strings)
        write_json(tmp / CONFIG, {**meta, CONFIG_DIGEST: config_digest(meta)})
    return folder


class LoadedModel:
    """A model ready for inference, with what was saved beside it."""

    def __init__(self, model: Autoencoder, meta: dict[str, Any], extras: dict[str, torch.Tensor], folder: Path):
        self.model = model
        self.meta = meta
        self.extras = extras
        self.folder = folder

    @property
    def domain(self) -> str:
        return self.meta["domain"]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.meta["preprocessing"]

    @property
    def info(self) -> dict[str, Any]:
        return self.meta.get("info", {})


def _read_tensors(path: Path, expected_sha: str | None) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(path, "missing from the model folder")
    if expected_sha is not None and sha256(path) != expected_sha:
        raise UserError(path, "checksum mismatch: the file is corrupted or was altered")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise UserError(path, f"not a readable safetensors file ({err})") from None


def load_model(folder: str | Path, domain: str | None = None) -> LoadedModel:
    """The only loader: read a model folder, check its domain and files, return it in eval mode."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(folder, "model folder not found", "train one with `dvc repro train@<domain>`")
    meta = read_json(folder / CONFIG)
    if not isinstance(meta, dict) or "model" not in meta or "domain" not in meta:
        raise UserError(folder / CONFIG, "not a latente model config")
    if CONFIG_DIGEST not in meta:
        raise UserError(f"{folder / CONFIG}: {CONFIG_DIGEST}", "missing: this config was not written by save_model", "retrain the model")
    if meta[CONFIG_DIGEST] != config_digest(meta):
        raise UserError(folder / CONFIG, "checksum mismatch: the file was edited or corrupted after saving",
                        "a model folder is written whole by training; retrain or refit rather than edit it")
    unknown = [key for key in meta if key not in CONFIG_KEYS]
    if unknown:
        raise UserError(f"{folder / CONFIG}: {unknown[0]}", "unknown key (misspelt?)", f"a model config holds only {', '.join(CONFIG_KEYS)}")
    if domain is not None and meta["domain"] != domain:
        raise UserError(folder, f"is a '{meta['domain']}' model, not a '{domain}' model")
    try:
        config = AutoencoderConfig.model_validate(meta["model"])
    except pydantic.ValidationError as err:
        loc, problem = first_problem(err)
        raise UserError(f"{folder / CONFIG}: {'.'.join(['model', *map(str, loc)])}", problem) from None
    files = meta.get("files", {})
    model = build_model(config)
    try:
        model.load_state_dict(_read_tensors(folder / WEIGHTS, files.get(WEIGHTS)))
    except RuntimeError as err:
        raise UserError(folder / WEIGHTS, f"weights do not fit the config ({str(err).splitlines()[0]})") from None
    extras = _read_tensors(folder / EXTRAS, files.get(EXTRAS)) if EXTRAS in files else {}
    model.eval()
    return LoadedModel(model, meta, extras, folder)
