"""Strict params: a misspelt or unknown key stops the stage and names the key.

DVC itself accepts typos silently (`dvc exp run -S`, DVC issue 5477), so every stage
validates its own section of params.yaml against a pydantic schema on load.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
import yaml

from latente.shared.errors import UserError

PARAMS_FILE = "params.yaml"

M = TypeVar("M", bound="StrictParams")


class StrictParams(pydantic.BaseModel):
    """Base for every params schema: unknown keys and wrong types are errors."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=False, frozen=True)


def _where(prefix: str, loc: tuple) -> str:
    return ".".join([prefix, *(str(part) for part in loc)])


def first_problem(err: pydantic.ValidationError) -> tuple[tuple, str]:
    """A validation's first error as (key path, problem): every user-facing schema names the key it rejects."""
    first = err.errors()[0]
    problem = {
        "extra_forbidden": "unknown key (misspelt?)",
        "missing": "required key is missing",
    }.get(first["type"], first["msg"].removeprefix("Value error, "))
    return first["loc"], problem


def validate(schema: type[M], values: Any, prefix: str, file: str | Path = PARAMS_FILE) -> M:
    try:
        return schema.model_validate(values)
    except pydantic.ValidationError as err:
        loc, problem = first_problem(err)
        raise UserError(f"{file}: {_where(prefix, loc)}", problem) from None


def load_params(file: str | Path = PARAMS_FILE) -> dict[str, Any]:
    file = Path(file)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(file, "params file not found") from None
    except yaml.YAMLError as err:
        raise UserError(file, f"not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise UserError(file, "must be a mapping of domains")
    return data


def stage_params(domain: str, stage: str, schema: type[M], file: str | Path = PARAMS_FILE) -> M:
    """Validate `<domain>.<stage>` of params.yaml against `schema`."""
    data = load_params(file)
    try:
        section = data[domain][stage]
    except (KeyError, TypeError):
        raise UserError(f"{file}: {domain}.{stage}", "section is missing") from None
    return validate(schema, section, f"{domain}.{stage}", file)


ADAMW_KERNELS = ("default", "foreach", "fused")


class TrainerConfig(StrictParams):
    """The shared trainer's settings (`<domain>.train.trainer`); here, not in the trainer, so that params
    validate without importing torch."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    scheduler: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = 0
    patience: int | None = 10
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # bf16 autocast on CUDA (the CPU never autocasts). Off unless asked: on an H200 every domain's model trained at
    # 0.73–0.95× its fp32 speed at its own batch size, being too small to be bound by arithmetic (`python -m bench.gpu`)
    bf16: bool = False
    threads: int | None = None
    # AdamW's implementation (`shared.trainer.ADAMW_KEYWORDS` gives each its keyword): torch's own choice ("default":
    # a for-loop over the parameters on the CPU, foreach on CUDA), one multi-tensor pass ("foreach"), or one fused
    # kernel ("fused").
    # They differ in float rounding only; `python -m bench.<domain>` times each beside the domain's setting.
    adamw_kernel: Literal[ADAMW_KERNELS] = "default"
    # torch.compile (inductor) of the training step's forward and backward: fewer, fused kernels, at a one-off
    # compilation per training. Random numbers come from the eager generator (inductor's `fallback_random`), so
    # noise and dropout draw what eager training draws, and the arithmetic differs from eager training's in float
    # rounding only. Validation stays eager. `python -m bench.<domain>` times it beside the domain's setting.
    compile: bool = False
    ema_decay: float | None = pydantic.Field(None, gt=0, lt=1)  # validate and keep an exponential moving average of the weights


class InterpolationParams(StrictParams):
    """The course's latent interpolation ("interpolação no espaço latente"): two items' codes joined by a
    straight line and decoded at `steps` evenly spaced points, so that one sees (and the site's slider
    shows) what the model puts between them. An item is named as its domain names one: a clip file
    (speech, `3_theo_0.wav`) or a sequence id of the prepared alignment (protein, `BLAT_ECOLX/24-286`)."""

    start: str
    end: str
    steps: int = pydantic.Field(9, ge=2, le=33)

    @pydantic.model_validator(mode="after")
    def _two_items(self) -> "InterpolationParams":
        if self.start == self.end:
            raise ValueError("start and end are the same item: name two")
        return self
