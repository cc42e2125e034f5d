"""The frame every DVC stage script shares: argv → validated params → domain function."""
from __future__ import annotations

import importlib
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from latente.shared.errors import UserError, exit_on_user_error
from latente.shared.params import PARAMS_FILE, StrictParams, stage_params

STAGE_NAMES = ("fetch", "prepare", "train", "evaluate")


@dataclass(frozen=True)
class DomainPaths:
    """Where each stage of a domain reads and writes, relative to the repo root."""

    domain: str
    root: Path = Path(".")

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw" / self.domain

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared" / self.domain

    @property
    def model(self) -> Path:
        return self.root / "models" / self.domain

    @property
    def checkpoint(self) -> Path:
        return self.root / "models" / "checkpoints" / self.domain

    @property
    def reports(self) -> Path:
        return self.root / "reports" / self.domain

    @property
    def training_log(self) -> Path:
        """DVCLive folder of the train stage (metrics and per-epoch curves)."""
        return self.reports / "training"

    @property
    def metrics(self) -> Path:
        return self.reports / "metrics.json"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    @property
    def figures(self) -> Path:
        return self.reports / "figures"

    @property
    def report(self) -> Path:
        return self.reports / "report.md"


StageFunction = Callable[[Any, DomainPaths], None]


@dataclass(frozen=True)
class Stage:
    """One DVC stage of a domain: the function called `name` in `module`, imported only when it runs.

    Importing lazily keeps `fetch` from importing the training code, so each stage's DVC deps can
    list exactly the modules it runs. The function's `params` annotation is the stage's schema,
    e.g. `def train(params: TrainParams, paths: DomainPaths)`.
    """

    name: str
    module: str

    def function(self) -> StageFunction:
        return getattr(importlib.import_module(self.module), self.name)


def run_stage(domain: str, stages: tuple[Stage, ...], argv: list[str] | None = None) -> None:
    """`python -m latente.pipelines.<domain> <stage>`: validate `<domain>.<stage>` params, then run."""
    argv = sys.argv[1:] if argv is None else argv
    by_name = {stage.name: stage for stage in stages}

    @exit_on_user_error
    def main() -> None:
        if len(argv) != 1 or argv[0] not in by_name:
            raise UserError(f"pipelines/{domain}.py", f"expected one stage name, one of {', '.join(by_name)}")
        func = by_name[argv[0]].function()
        schema: type[StrictParams] = typing.get_type_hints(func)["params"]
        func(stage_params(domain, argv[0], schema, PARAMS_FILE), DomainPaths(domain))

    main()
