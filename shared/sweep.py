"""Bayesian hyperparameter search the DVC way: every trial is a DVC experiment.

`python -m latente.shared.sweep <name>` reads `sweeps.<name>` from params.yaml. Optuna's TPE
sampler proposes values for the keys of `space`; each trial runs
`dvc exp run --temp -n <name>-<k> -S key=value ... <target>`, so `dvc exp show` lists it with
its params and metrics and `dvc exp apply <name>-<k>` restores it; nothing trains outside DVC.
The objective is one key of a metrics file the target writes, as `dvc exp show` names its columns:
a flat key of `reports/<domain>/summary.json` (`model/accuracy`), or a nested one joined by dots, as
in the train stage's DVCLive `reports/<domain>/training/metrics.json` (`val.loss`); it is read back
from the experiment through DVC.

The search's record is `sweeps/<name>.json`, committed to git: its trials (params, state,
objective) and the best one, rewritten as each trial starts and ends. A record is a result
the project keeps, unlike the pipeline's outputs, which `dvc repro` rebuilds: a search costs
hours, and its experiments live only in the git refs of the repository that ran them. A
stopped search, in this clone or another, resumes from the record (the trial that was running
counts as failed); `trials` bounds the whole search and `minutes` each invocation (a running
trial finishes). The first trial runs params.yaml's own values of the searched keys, where the space
holds them, so that every record says whether the search beat what the project ships (a record
without them gets them as its next trial). Every spec problem (a key params.yaml does not have, an
empty or inverted range, a metric the target does not write) stops with one `error:` line before
any trial starts.
"""
from __future__ import annotations

import argparse
import functools
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal, Optional

import pydantic
import yaml

from latente.shared.errors import UserError, exit_on_user_error
from latente.shared.io import read_json, write_json
from latente.shared.params import PARAMS_FILE, StrictParams, first_problem, load_params, validate

SECTION = "sweeps"
RECORDS = Path("sweeps")  # committed: sweeps/<name>.json
COMPLETE, RUNNING, FAIL = "COMPLETE", "RUNNING", "FAIL"  # Optuna's names of a trial's states
BARE = re.compile(r"[A-Za-z0-9_.+/|@%-]+")  # characters Hydra reads the same unquoted


class Range(StrictParams):
    """One swept key: a list of `choice` values, or a `low`–`high` range (log-uniform with `log`,
    whole numbers with `integer`)."""

    choice: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> "Range":
        if self.choice is not None:
            if not self.choice:
                raise ValueError("choice is empty: list at least one value")
            if self.low is not None or self.high is not None or self.log or self.integer:
                raise ValueError("give either choice or low/high, not both")
        elif self.low is None or self.high is None:
            raise ValueError("give choice, or both low and high")
        elif not self.low < self.high:
            raise ValueError(f"empty range: low {self.low:g} is not below high {self.high:g}")
        elif self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    def distribution(self) -> Any:
        """Optuna's distribution of the key: what the sampler draws from, and what a recorded value is checked against."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choice is not None:
            return CategoricalDistribution(list(self.choice))
        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def holds(self, value: Any) -> bool:
        if self.choice is not None:
            return value in self.choice
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high


class Objective(StrictParams):
    file: str
    metric: str
    direction: Literal["maximize", "minimize"]


class SweepSpec(StrictParams):
    """`fixed` sets keys in every trial; `drop` removes keys from every trial's params (`-S ~key`, Hydra's deletion),
    e.g. the models a validation protocol does not need (a mapping cannot be set to fewer entries: `-S` merges)."""

    target: str
    objective: Objective
    space: dict[str, Range]
    fixed: dict[str, Any] = {}
    drop: list[str] = []
    trials: int = pydantic.Field(ge=1)
    minutes: float = pydantic.Field(gt=0)
    seed: int = 0

    @pydantic.field_validator("space")
    @classmethod
    def _something_to_search(cls, value: dict[str, Range]) -> dict[str, Range]:
        if not value:
            raise ValueError("name at least one key to search")
        return value


class Trial(pydantic.BaseModel):
    experiment: str
    params: dict[str, Any]
    state: Literal["COMPLETE", "RUNNING", "FAIL"]
    value: Optional[float] = pydantic.Field(allow_inf_nan=False)  # the site's JSON has no NaN

    @pydantic.model_validator(mode="after")
    def _complete_has_value(self) -> "Trial":
        if (self.state == COMPLETE) != (self.value is not None):
            raise ValueError(f"a {COMPLETE} trial needs a value, and only a {COMPLETE} trial has one")
        return self


class Best(pydantic.BaseModel):
    experiment: str
    params: dict[str, Any]
    value: float = pydantic.Field(allow_inf_nan=False)


class Record(pydantic.BaseModel):
    """sweeps/<name>.json: the spec's target, objective, fixed and dropped keys, then every trial in order."""

    target: str
    objective: Objective
    fixed: dict[str, Any]
    drop: list[str]
    trials: list[Trial]
    best: Optional[Best]


def record_file(name: str) -> Path:
    return RECORDS / f"{name}.json"


def read_record(path: Path, spec: SweepSpec, name: str) -> Record:
    """A record, checked to be a search of this spec: its trials are resumed, and drawn on the spec's axes."""
    try:
        record = Record.model_validate(read_json(path))
    except pydantic.ValidationError as err:
        loc, problem = first_problem(err)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        raise UserError(f"{path}: {where}" if where else path,
                        f"{problem} (not the record that `python -m latente.shared.sweep` writes)") from None
    hint = f"the search ran with another spec of {SECTION}.{name}: move {path} away to start a new search"
    for key in ("target", "objective", "fixed", "drop"):
        if getattr(record, key) != getattr(spec, key):
            raise UserError(f"{path}: {key}", f"differs from {PARAMS_FILE} {SECTION}.{name}.{key}", hint)
    searched = [(f"trials[{index}]", trial.params) for index, trial in enumerate(record.trials)]
    for where, params in searched + ([("best", record.best.params)] if record.best else []):
        if set(params) != set(spec.space):
            raise UserError(f"{path}: {where}.params", f"has the keys {', '.join(sorted(params))}, not the searched "
                            f"{', '.join(sorted(spec.space))}", hint)
        for key, value in params.items():
            if not spec.space[key].holds(value):
                raise UserError(f"{path}: {where}.params.{key}", f"{value!r} is outside the searched space", hint)
    return record


def has_key(params: dict[str, Any], dotted: str) -> bool:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def shipped_values(spec: SweepSpec, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Each searched key's value in params.yaml: the default the search is measured against."""
    for key in spec.space:
        if not has_key(params, key):
            raise UserError(f"{where}.space.{key}", f"{PARAMS_FILE} has no such key", "sweep only keys params.yaml lists")
    return {key: functools.reduce(lambda node, part: node[part], key.split("."), params) for key in spec.space}


def metric_names(metrics: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A metrics file's values by the names `dvc exp show` gives them: nested keys joined by dots."""
    named: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            named |= metric_names(value, f"{prefix}{key}.")
        else:
            named[f"{prefix}{key}"] = value
    return named


def check_spec(spec: SweepSpec, params: dict[str, Any], name: str, root: Path) -> None:
    """Everything that can be wrong before the first trial: keys, overlap, target, objective."""
    where = f"{PARAMS_FILE}: {SECTION}.{name}"
    for group in ("space", "fixed", "drop"):
        for key in getattr(spec, group):
            if not has_key(params, key):
                raise UserError(f"{where}.{group}.{key}", f"{PARAMS_FILE} has no such key", "sweep only keys params.yaml lists")
    both = sorted(set(spec.space) & set(spec.fixed))
    if both:
        raise UserError(f"{where}.fixed.{both[0]}", "is also in space")
    for dropped in spec.drop:
        under = [key for key in [*spec.space, *spec.fixed] if f"{key}.".startswith(f"{dropped}.") or f"{dropped}.".startswith(f"{key}.")]
        if under:
            raise UserError(f"{where}.drop.{dropped}", f"overlaps {under[0]}, which the sweep sets", "drop only keys no trial sets")
    listed = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=root, capture_output=True, text=True)
    if listed.returncode != 0:
        raise UserError(root.resolve(), "not a DVC project", "run the sweep from the repository root")
    if spec.target not in listed.stdout.split():
        raise UserError(f"{where}.target", f"dvc.yaml has no stage {spec.target!r}", "name one that `dvc stage list` shows")
    metrics_file = root / spec.objective.file
    if not metrics_file.is_file():
        raise UserError(f"{where}.objective.file", f"{spec.objective.file} not found",
                        f"run `dvc repro {spec.target}` once, so that the metric names can be checked")
    known = metric_names(read_json(metrics_file))
    if spec.objective.metric not in known:
        close = [k for k in known if spec.objective.metric.split("/")[-1] in k][:3]
        raise UserError(f"{where}.objective.metric", f"{spec.objective.file} has no metric {spec.objective.metric!r}",
                        f"it has e.g. {', '.join(close or list(known)[:3])}")


def load_spec(name: str, root: Path) -> SweepSpec:
    params = load_params(root / PARAMS_FILE)
    sweeps = params.get(SECTION) or {}
    if name not in sweeps:
        raise UserError(f"{PARAMS_FILE}: {SECTION}.{name}", "no such sweep", f"params.yaml lists {', '.join(sweeps) or 'none'}")
    spec = validate(SweepSpec, sweeps[name], f"{SECTION}.{name}")
    check_spec(spec, params, name, root)
    return spec


def yaml_value(value: Any) -> str:
    """A value as `dvc exp run -S key=value` reads it back (Hydra's override grammar, then YAML into
    params.yaml): null, booleans in lower case, lists in flow style, floats with a dot in the mantissa
    (YAML 1.1 reads `1e-05` as a string), and a string bare only where it can be nothing else: one
    that would read as a number, boolean or null (`'100'`, a record) or holds other characters is
    quoted, its quotes escaped as Hydra escapes them."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return f"[{','.join(yaml_value(v) for v in value)}]"
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}{e}{exponent}" if e else text
    if isinstance(value, str) and not (BARE.fullmatch(value) and yaml.safe_load(value) == value and not _number(value)):
        return "'" + value.replace("'", "\\'") + "'"
    return str(value)


def _number(text: str) -> bool:
    """Whether Hydra would read `text` as a number (YAML 1.1 keeps `1e-5` a string; Hydra does not)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def experiment_rev(name: str, root: Path) -> str:
    """The commit of experiment `name` on the current baseline (DVC keeps it under
    refs/exps/<baseline[:2]>/<baseline[2:]>/<name>; an older sweep's namesake sits on another)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)

    baseline = git("rev-parse", "HEAD").stdout.strip()
    found = git("rev-parse", "--verify", "--quiet", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}")
    if found.returncode != 0:
        raise UserError(name, "DVC recorded no experiment of that name on the current commit")
    return found.stdout.strip()


def objective_value(spec: SweepSpec, experiment: str, root: Path) -> float:
    """The objective as DVC stored it with the experiment (the metrics file is in DVC's cache)."""
    import dvc.api

    metrics = dvc.api.metrics_show(spec.objective.file, repo=str(root), rev=experiment_rev(experiment, root))
    return float(metric_names(metrics)[spec.objective.metric])


def run_trial(spec: SweepSpec, experiment: str, values: dict[str, Any], root: Path) -> bool:
    settings = [f"-S~{key}" for key in spec.drop] + [f"-S{key}={yaml_value(value)}" for key, value in {**spec.fixed, **values}.items()]
    print(f"{experiment}: {' '.join(s[2:] for s in settings)}", file=sys.stderr, flush=True)
    return subprocess.run(["dvc", "exp", "run", "--temp", "-n", experiment, *settings, spec.target], cwd=root).returncode == 0


def sweep(name: str, root: Path = Path("."), trials: int | None = None, minutes: float | None = None) -> Record:
    """Run (or resume) the search; its record, `sweeps/<name>.json`, is rewritten as each trial starts and ends."""
    import optuna

    spec = load_spec(name, root)
    trials = trials or spec.trials
    budget = 60.0 * (minutes or spec.minutes)
    path = root / record_file(name)
    done = read_record(path, spec, name).trials if path.is_file() else []
    distributions = {key: space.distribution() for key, space in spec.space.items()}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # seeded by the trials already recorded, so that a resumed search does not replay the suggestions it started with
    # (the sampler's random stream restarts with the process); a search run without a stop is seeded by `seed` alone
    study = optuna.create_study(direction=spec.objective.direction, sampler=optuna.samplers.TPESampler(seed=spec.seed + len(done)))
    for trial in done:  # a trial still running when the last invocation stopped has failed
        study.add_trial(optuna.trial.create_trial(
            params=trial.params, distributions=distributions, value=trial.value, user_attrs={"experiment": trial.experiment},
            state=optuna.trial.TrialState[FAIL if trial.state == RUNNING else trial.state]))
    shipped = shipped_values(spec, load_params(root / PARAMS_FILE), f"{PARAMS_FILE}: {SECTION}.{name}")
    run_shipped = all(spec.space[key].holds(value) for key, value in shipped.items()) and all(t.params != shipped for t in done)
    started = time.monotonic()
    while len(study.trials) < trials and time.monotonic() - started < budget:
        if run_shipped:  # queued just before the ask that takes it, so that it never counts as a trial before it runs
            study.enqueue_trial(shipped)
            run_shipped = False
        trial = study.ask(distributions)
        experiment = f"{name}-{trial.number}"
        trial.set_user_attr("experiment", experiment)
        write_json(path, summarise(study, spec).model_dump(mode="json"))  # the trial is RUNNING in the record until it ends
        value = objective_value(spec, experiment, root) if run_trial(spec, experiment, trial.params, root) else None
        if value is None or not math.isfinite(value):
            print(f"{experiment}: the experiment failed (objective {value}); the search goes on", file=sys.stderr)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
        write_json(path, summarise(study, spec).model_dump(mode="json"))
    return summarise(study, spec)


def summarise(study: Any, spec: SweepSpec) -> Record:
    rows = [Trial(experiment=t.user_attrs["experiment"], params=t.params, state=t.state.name, value=t.value) for t in study.trials]
    finished = [row for row in rows if row.state == COMPLETE]
    top = (max if spec.objective.direction == "maximize" else min)(finished, key=lambda row: row.value) if finished else None
    best = None if top is None else Best(experiment=top.experiment, params=top.params, value=top.value)
    return Record(target=spec.target, objective=spec.objective, fixed=spec.fixed, drop=spec.drop, trials=rows, best=best)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m latente.shared.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help=f"a sweep of the `{SECTION}` section of params.yaml")
    parser.add_argument("--trials", type=int, help="trials in the whole search (default: the spec's)")
    parser.add_argument("--minutes", type=float, help="stop starting trials after this long (default: the spec's)")
    args = parser.parse_args(argv)
    if args.trials is not None and args.trials < 1:
        raise UserError("--trials", "must be at least 1")
    if args.minutes is not None and not args.minutes > 0:
        raise UserError("--minutes", "must be > 0")
    record = sweep(args.name, Path("."), args.trials, args.minutes)
    best = record.best
    if best is None:
        print(f"{args.name}: no trial finished", file=sys.stderr)
        return
    print(f"best: {best.experiment} {record.objective.metric} = {best.value:.4g} ({best.params}); "
          f"restore it with `dvc exp apply {best.experiment}`; the record is {record_file(args.name)}, to commit")


if __name__ == "__main__":
    main()
