"""The sweeps of params.yaml (`latente.shared.sweep`) as a domain's sweeps page shows them.

A sweep belongs to the domain after the `@` of its target (`evaluate@speech` → speech). Its spec
is read from params.yaml with the sweep's own schema; its trials from its committed record,
`sweeps/<name>.json` (a dep of publish), checked against the spec as a resumed search checks it;
a sweep with no record yet gets the command that makes one. The defaults beside the best trial
are the searched keys' values in params.yaml when the site is built.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from latente.shared.errors import UserError
from latente.shared.params import PARAMS_FILE, load_params, validate
from latente.shared.sweep import COMPLETE, SECTION, Record, SweepSpec, Trial, read_record, record_file, shipped_values


@dataclass
class SweepView:
    name: str
    spec: SweepSpec
    defaults: dict[str, Any]  # each searched key's value in params.yaml
    record_file: str  # sweeps/<name>.json, as shown
    record: Optional[Record]  # None until the search has run

    @property
    def complete(self) -> list[Trial]:
        """The trials with a value: the lines of the plot."""
        return [trial for trial in self.record.trials if trial.state == COMPLETE] if self.record else []

    def ran_defaults(self, trial: Trial) -> bool:
        """Whether `trial` ran today's defaults (a search runs them first, or next when resumed); the trials table marks it."""
        return trial.params == self.defaults

    @property
    def default_trial(self) -> Optional[Trial]:
        """The finished trial that ran today's defaults, if any: the value the best is measured against."""
        return next((trial for trial in self.complete if self.ran_defaults(trial)), None)


def load_sweeps(root: Path, domain: str) -> list[SweepView]:
    """The sweeps of `root/params.yaml` whose target is a stage of `domain`, with their records where the search has run.

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
        defaults = shipped_values(spec, params, f"{PARAMS_FILE}: {SECTION}.{name}")
        relative = record_file(name)
        record = read_record(root / relative, spec, name) if (root / relative).is_file() else None
        views.append(SweepView(name, spec, defaults, relative.as_posix(), record))
    return views


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
