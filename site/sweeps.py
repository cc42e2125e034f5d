"""The sweeps of params.yaml (`latente.shared.sweep`) as a domain's sweeps page shows them.

A sweep belongs to the domain after the `@` of its target (`evaluate@speech` → speech). Its spec
is read from params.yaml with the sweep's own schema; its trials from
`reports/sweeps/<name>/trials.json`, which the search writes and no DVC stage does, so a fresh
clone has none and the page says how to make it. The defaults beside the best trial are the
searched keys' values in params.yaml when the site is built.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import pydantic

from latente.shared.errors import UserError
from latente.shared.io import read_json
from latente.shared.params import PARAMS_FILE, first_problem, load_params, validate
from latente.shared.sweep import OUTPUT, SECTION, Objective, Range, SweepSpec, has_key

COMPLETE = "COMPLETE"  # Optuna's state of a trial that has a value
TRIALS_FILE = "trials.json"


class Trial(pydantic.BaseModel):
    experiment: str
    params: dict[str, Any]
    state: str
    value: Optional[float] = pydantic.Field(allow_inf_nan=False)  # the page's JSON has no NaN

    @pydantic.model_validator(mode="after")
    def _complete_has_value(self) -> "Trial":
        if self.state == COMPLETE and self.value is None:
            raise ValueError(f"a {COMPLETE} trial needs a value")
        return self


class Best(pydantic.BaseModel):
    experiment: str
    params: dict[str, Any]
    value: float = pydantic.Field(allow_inf_nan=False)


class Trials(pydantic.BaseModel):
    """The shape of trials.json, as `latente.shared.sweep.summarise` writes it."""

    target: str
    objective: Objective
    fixed: dict[str, Any]
    drop: list[str] = []  # absent from the trials.json of searches run before `drop` existed
    trials: list[Trial]
    best: Optional[Best]


@dataclass
class SweepView:
    name: str
    spec: SweepSpec
    defaults: dict[str, Any]  # each searched key's value in params.yaml
    trials_file: str  # reports/sweeps/<name>/trials.json, as shown
    trials: Optional[Trials]  # None until the search has run

    @property
    def complete(self) -> list[Trial]:
        """The trials with a value: the lines of the plot."""
        return [trial for trial in self.trials.trials if trial.state == COMPLETE] if self.trials else []


def load_sweeps(root: Path, domain: str) -> list[SweepView]:
    """The sweeps of `root/params.yaml` whose target is a stage of `domain`, with their trials where the search has run.

    Every spec is validated, whichever domain it is for, so a broken sweeps section stops the build the same way each time.
    """
    params = load_params(root / PARAMS_FILE)
    sweeps = params.get(SECTION) or {}
    if not isinstance(sweeps, dict):
        raise UserError(f"{PARAMS_FILE}: {SECTION}", "must be a mapping of sweep names to specs")
    specs = {name: validate(SweepSpec, section, f"{SECTION}.{name}") for name, section in sweeps.items()}
    views = []
    for name, spec in specs.items():
        if spec.target.partition("@")[2] != domain:
            continue
        defaults = {key: _default(params, key, f"{PARAMS_FILE}: {SECTION}.{name}.space.{key}") for key in spec.space}
        relative = OUTPUT / name / TRIALS_FILE
        trials = _read_trials(root / relative, spec, name) if (root / relative).is_file() else None
        views.append(SweepView(name, spec, defaults, relative.as_posix(), trials))
    return views


def _default(params: dict[str, Any], key: str, where: str) -> Any:
    if not has_key(params, key):
        raise UserError(where, f"{PARAMS_FILE} has no such key", "sweep only keys params.yaml lists")
    return functools.reduce(lambda node, part: node[part], key.split("."), params)


def _read_trials(path: Path, spec: SweepSpec, name: str) -> Trials:
    """trials.json, checked to be a search of this spec: the page draws its trials on the spec's axes."""
    try:
        trials = Trials.model_validate(read_json(path))
    except pydantic.ValidationError as err:
        loc, problem = first_problem(err)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        raise UserError(f"{path}: {where}" if where else path,
                        f"{problem} (not the trials.json that `python -m latente.shared.sweep` writes)") from None
    hint = f"the search ran with another spec of {SECTION}.{name}: remove {path.parent} and run `python -m latente.shared.sweep {name}`"
    for key in ("target", "objective", "fixed", "drop"):
        if getattr(trials, key) != getattr(spec, key):
            raise UserError(f"{path}: {key}", f"differs from {PARAMS_FILE} {SECTION}.{name}.{key}", hint)
    searched = [(f"trials[{index}]", trial.params) for index, trial in enumerate(trials.trials)]
    for where, params in searched + ([("best", trials.best.params)] if trials.best else []):
        if set(params) != set(spec.space):
            raise UserError(f"{path}: {where}.params", f"has the keys {', '.join(sorted(params))}, not the searched "
                            f"{', '.join(sorted(spec.space))}", hint)
        for key, value in params.items():
            if not _searched(spec.space[key], value):
                raise UserError(f"{path}: {where}.params.{key}", f"{value!r} is outside the searched space", hint)
    return trials


def _searched(space: Range, value: Any) -> bool:
    if space.choice is not None:
        return value in space.choice
    return isinstance(value, (int, float)) and not isinstance(value, bool) and space.low <= value <= space.high


def plot_data(sweeps: list[SweepView], number: Callable[[Any], str]) -> dict[str, Any]:
    """window.LATENTE_SWEEPS of a sweeps page: Plotly's decimal and group marks, and per sweep (in page order) the
    dimensions of its parallel-coordinates plot, or None where no trial has finished.

    `number` formats a value as the page's tables do; the tick labels of choices and log ranges are
    its text, and Plotly's own ticks get the same marks.
    """
    separators = number(0.5)[1] + number(1000)[1]  # "0.5" and "1,000" in English: the decimal mark, then the group mark
    return {"separators": separators,
            "plots": [_parallel_coordinates(sweep, number) if sweep.complete else None for sweep in sweeps]}


def _parallel_coordinates(sweep: SweepView, number: Callable[[Any], str]) -> dict[str, Any]:
    """One dimension per searched key (a choice is placed by its index, a log range by log10), then the objective,
    which the lines are coloured by; one line per finished trial."""
    trials = sweep.complete
    dimensions = []
    for key, space in sweep.spec.space.items():
        values = [trial.params[key] for trial in trials]
        if space.choice is not None:
            choices = list(space.choice)
            dimensions.append({"label": key, "values": [choices.index(v) for v in values], "range": [0, len(choices) - 1],
                               "tickvals": list(range(len(choices))), "ticktext": [number(c) for c in choices]})
        elif space.log:
            low, high = math.log10(space.low), math.log10(space.high)
            ticks = sorted({low, high, *range(math.ceil(low), math.floor(high) + 1)})  # the ends and each power of ten
            dimensions.append({"label": key, "values": [math.log10(v) for v in values], "range": [low, high],
                               "tickvals": ticks, "ticktext": [number(10 ** tick) for tick in ticks]})
        else:
            dimensions.append({"label": key, "values": values, "range": [space.low, space.high]})
    dimensions.append({"label": sweep.spec.objective.metric, "values": [trial.value for trial in trials]})
    return {"dimensions": dimensions, "minimize": sweep.spec.objective.direction == "minimize"}
