"""The Bayesian sweep over DVC experiments: spec errors stop before any trial, and a real search in a
throw-away DVC project records every trial as an experiment that `dvc exp show` lists, resumes, and
picks the best by the metric DVC stored."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from latente.shared.params import PARAMS_FILE, load_params, validate
from latente.shared.sweep import (COMPLETE, RECORDS, SECTION, SweepSpec, has_key, load_spec, main, metric_names, objective_value,
                                  read_record, yaml_value)

# A toy project: one stage whose score is −(x − 3)², so every trial's value can be checked by hand.
# It also writes a DVCLive-shaped training log, whose nested `val.loss` is (x − 3)².
STAGE = {"cmd": "python score.py", "deps": ["score.py"], "params": ["toy"],
         "metrics": ["reports/toy/summary.json"], "plots": ["reports/toy/training"]}
SCORE = """import json, os, yaml
x = yaml.safe_load(open("params.yaml"))["toy"]["train"]["x"]
os.makedirs("reports/toy/training", exist_ok=True)
json.dump({"model/score": -(x - 3.0) ** 2}, open("reports/toy/summary.json", "w"))
json.dump({"step": 2, "val": {"loss": (x - 3.0) ** 2}}, open("reports/toy/training/metrics.json", "w"))
"""
SPEC = {"target": "evaluate", "objective": {"file": "reports/toy/summary.json", "metric": "model/score", "direction": "maximize"},
        "space": {"toy.train.x": {"low": 0.0, "high": 6.0}}, "fixed": {"toy.train.epochs": 2}, "drop": ["toy.report"], "trials": 3,
        "minutes": 10}
TOY_PARAMS = {"toy": {"train": {"x": 1.0, "epochs": 5}, "report": {"figures": True}}}


def run(cmd: list[str], root: Path, env: dict | None = None) -> str:
    done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def project(root: Path, spec: dict, name: str = "toy") -> Path:
    """A DVC project (no git needed to check a spec) with the toy stage and its last metrics."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump({**TOY_PARAMS, "sweeps": {name: spec}}))
    (root / "score.py").write_text(SCORE)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": STAGE}}))
    (root / "reports/toy").mkdir(parents=True, exist_ok=True)
    (root / "reports/toy/summary.json").write_text(json.dumps({"model/score": -4.0}))
    run(["dvc", "init", "-q", "--no-scm"], root, {**os.environ, "DVC_NO_ANALYTICS": "1"})
    return root


def error_line(root: Path, capsys, *args: str) -> str:
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["toy", *args])
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


BAD_SPECS = [  # (what changes in the spec, words of the one error line)
    ({"space": {"toy.train.xx": {"low": 0, "high": 1}}}, ["sweeps.toy.space.toy.train.xx", "no such key"]),
    ({"fixed": {"toy.eval.x": 1}}, ["sweeps.toy.fixed.toy.eval.x", "no such key"]),
    ({"space": {"toy.train.x": {"choice": []}}}, ["sweeps.toy.space.toy.train.x", "choice is empty"]),
    ({"space": {"toy.train.x": {"low": 2, "high": 2}}}, ["sweeps.toy.space.toy.train.x", "empty range"]),
    ({"space": {"toy.train.x": {"low": 0, "high": 2, "log": True}}}, ["log range needs low > 0"]),
    ({"space": {"toy.train.x": {"low": 0}}}, ["give choice, or both low and high"]),
    ({"space": {}}, ["sweeps.toy.space", "at least one key"]),
    ({"fixed": {"toy.train.x": 1}}, ["sweeps.toy.fixed.toy.train.x", "also in space"]),
    ({"drop": ["toy.reprot"]}, ["sweeps.toy.drop.toy.reprot", "no such key"]),
    ({"drop": ["toy.train"]}, ["sweeps.toy.drop.toy.train", "overlaps toy.train.x"]),
    ({"drop": ["toy.train.epochs"]}, ["sweeps.toy.drop.toy.train.epochs", "overlaps toy.train.epochs, which the sweep sets"]),
    ({"objective": {**SPEC["objective"], "metric": "model/scor"}}, ["objective.metric", "no metric 'model/scor'", "model/score"]),
    ({"objective": {**SPEC["objective"], "file": "reports/toy/other.json"}}, ["objective.file", "not found", "dvc repro evaluate"]),
    ({"objective": {**SPEC["objective"], "direction": "up"}}, ["sweeps.toy.objective.direction"]),
    ({"trials": 0}, ["sweeps.toy.trials"]),
    ({"trails": 3}, ["sweeps.toy.trails", "unknown key"]),
    ({"target": "evaluate@toy"}, ["sweeps.toy.target", "no stage 'evaluate@toy'"]),
]


@pytest.mark.parametrize("change, words", BAD_SPECS, ids=[str(i) for i in range(len(BAD_SPECS))])
def test_a_bad_spec_stops_with_one_line_before_any_trial(tmp_path, capsys, change, words):
    root = project(tmp_path, {**SPEC, **change})
    line = error_line(root, capsys)
    assert all(w in line for w in words), line
    assert not (root / "sweeps").exists()  # nothing started


def test_an_unknown_sweep_a_folder_without_dvc_and_bad_limits_are_one_line(tmp_path, capsys):
    assert "sweeps.toy: no such sweep — params.yaml lists other" in error_line(project(tmp_path / "a", SPEC, name="other"), capsys)
    root = project(tmp_path / "b", SPEC)
    plain = tmp_path / "plain"  # the same files, but no DVC project around them
    plain.mkdir()
    for name in ("params.yaml", "dvc.yaml", "score.py"):
        (plain / name).write_text((root / name).read_text())
    assert "not a DVC project — run the sweep from the repository root" in error_line(plain, capsys)
    assert "--trials: must be at least 1" in error_line(root, capsys, "--trials", "0")
    assert "--minutes: must be > 0" in error_line(root, capsys, "--minutes", "-1")


def test_nested_metrics_are_named_as_dvc_exp_show_names_them(tmp_path):
    """A DVCLive metrics file nests its values: its objective is `val.loss`; flat keys keep their own dots."""
    assert metric_names({"lr": 0.1, "val": {"loss": 2.0, "parts": {"kl": 0.5}}, "model/accuracy/snr_db=10.0": 0.7}) == {
        "lr": 0.1, "val.loss": 2.0, "val.parts.kl": 0.5, "model/accuracy/snr_db=10.0": 0.7}
    nested = {**SPEC, "objective": {"file": "reports/toy/training/metrics.json", "metric": "val.loss", "direction": "minimize"}}
    root = project(tmp_path, nested)
    (root / "reports/toy/training").mkdir()
    (root / "reports/toy/training/metrics.json").write_text(json.dumps({"step": 3, "val": {"loss": 4.0}}))
    assert load_spec("toy", root).objective.metric == "val.loss"


@pytest.mark.parametrize("value", [1e-5, 0.001, 2.5, 1e20, -2.5e-7, True, False, 7, "conv_ae", None, ["jackson", "lucas"], [0.5, 1e-5]])
def test_values_reach_params_yaml_as_the_same_value(value):
    assert yaml.safe_load(yaml_value(value)) == value


STRINGS = ["conv_ae", "3_theo_0.wav", "up|P00807|BLAC_STAAU/22-281", "100", ["102", "104"], "true", "null", "1e-5", "inf", "it's",
           "a: b", "x,y", "[a]", "two words"]


@pytest.mark.parametrize("value", STRINGS, ids=[str(i) for i in range(len(STRINGS))])
def test_strings_reach_params_yaml_as_the_same_strings_through_dvc(tmp_path, value):
    """`-S` is parsed by Hydra's override grammar (DVC's own `apply_overrides`), then written into params.yaml:
    a record name must stay the string it is, whatever it looks like."""
    from dvc.utils.hydra import apply_overrides

    params = tmp_path / PARAMS_FILE
    params.write_text(yaml.safe_dump({"toy": {"key": "before"}}))
    apply_overrides(str(params), [f"toy.key={yaml_value(value)}"])
    assert load_params(params)["toy"]["key"] == value


@pytest.mark.slow  # three `dvc exp run --temp` in a throw-away repository
def test_every_trial_is_a_dvc_experiment_and_the_search_resumes(tmp_path, monkeypatch):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    root = tmp_path / "repo"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump({**TOY_PARAMS, "sweeps": {"toy": SPEC}}))
    (root / "score.py").write_text(SCORE)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": STAGE}}))
    (root / ".gitignore").write_text("/reports/\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        run(cmd, root, env)
    sweep = [sys.executable, "-m", "latente.shared.sweep", "toy"]
    out = run(sweep, root, env)

    trials = json.loads((root / "sweeps/toy.json").read_text())
    assert [t["experiment"] for t in trials["trials"]] == ["toy-0", "toy-1", "toy-2"]
    assert all(t["state"] == "COMPLETE" for t in trials["trials"])
    assert (trials["trials"][0]["params"], trials["trials"][0]["value"]) == ({"toy.train.x": 1.0}, -4.0)  # the defaults first
    for t in trials["trials"]:  # the value is the stage's own, for the x the trial ran with
        assert t["value"] == pytest.approx(-(t["params"]["toy.train.x"] - 3.0) ** 2)
    best = max(trials["trials"], key=lambda t: t["value"])
    assert trials["best"]["experiment"] == best["experiment"]
    assert f"restore it with `dvc exp apply {best['experiment']}`" in out

    shown = json.loads(run(["dvc", "exp", "show", "--json"], root, env))
    experiments = {rev["name"]: rev["data"] for entry in shown for exp in (entry.get("experiments") or []) for rev in exp["revs"]}
    assert set(experiments) == {"toy-0", "toy-1", "toy-2"}
    for t in trials["trials"]:
        data = experiments[t["experiment"]]
        params = data["params"]["params.yaml"]["data"]["toy"]
        assert params == {"train": {"x": pytest.approx(t["params"]["toy.train.x"]), "epochs": 2}}  # fixed values applied, dropped keys gone
        assert data["metrics"]["reports/toy/summary.json"]["data"]["model/score"] == pytest.approx(t["value"])
    assert yaml.safe_load((root / "params.yaml").read_text())["toy"] == TOY_PARAMS["toy"]  # workspace untouched
    nested = SweepSpec.model_validate({**SPEC, "objective": {"file": "reports/toy/training/metrics.json", "metric": "val.loss",
                                                             "direction": "minimize"}})
    monkeypatch.chdir(root)  # DVC reads a metrics path from the working directory, as the sweep runs: from the root
    for t in trials["trials"]:  # a nested objective is read back from the experiment too
        assert objective_value(nested, t["experiment"], root) == pytest.approx(-t["value"])

    run([*sweep, "--trials", "4"], root, env)  # resumes: one more trial, the first three kept
    again = json.loads((root / "sweeps/toy.json").read_text())
    assert [t["experiment"] for t in again["trials"]] == ["toy-0", "toy-1", "toy-2", "toy-3"]
    assert again["trials"][:3] == trials["trials"]
    # a resumed sampler does not replay its first draws: toy-3's x is none of the first three's
    assert again["trials"][3]["params"]["toy.train.x"] not in [t["params"]["toy.train.x"] for t in trials["trials"]]

    # a search stopped during toy-3 left it RUNNING in the record; resumed in a fresh clone of the commit that holds the
    # record (the experiments stay behind), it counts toy-3 as failed and goes on from toy-4, which runs the defaults,
    # changed since (x 5): no recorded trial ran them
    again["trials"][3] |= {"state": "RUNNING", "value": None}
    again["best"] = {key: max(again["trials"][:3], key=lambda t: t["value"])[key] for key in ("experiment", "params", "value")}
    (root / "sweeps/toy.json").write_text(json.dumps(again))
    (root / "params.yaml").write_text(yaml.safe_dump({"toy": {**TOY_PARAMS["toy"], "train": {"x": 5.0, "epochs": 5}}, "sweeps": {"toy": SPEC}}))
    run(["git", "add", "sweeps/toy.json", "params.yaml"], root, env)
    run(["git", "commit", "-qm", "the record"], root, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    (clone / "reports/toy").mkdir(parents=True)
    (clone / "reports/toy/summary.json").write_text((root / "reports/toy/summary.json").read_text())  # the spec check reads it
    run([*sweep, "--trials", "5"], clone, env)
    resumed = json.loads((clone / "sweeps/toy.json").read_text())
    assert [(t["experiment"], t["state"]) for t in resumed["trials"]] == [
        ("toy-0", "COMPLETE"), ("toy-1", "COMPLETE"), ("toy-2", "COMPLETE"), ("toy-3", "FAIL"), ("toy-4", "COMPLETE")]
    assert (resumed["trials"][4]["params"], resumed["trials"][4]["value"]) == ({"toy.train.x": 5.0}, -4.0)
    finished = [t for t in resumed["trials"] if t["state"] == "COMPLETE"]
    assert resumed["best"]["value"] == max(t["value"] for t in finished)


RECORD = {"target": SPEC["target"], "objective": SPEC["objective"], "fixed": SPEC["fixed"], "drop": SPEC["drop"],
          "trials": [{"experiment": "toy-0", "params": {"toy.train.x": 2.0}, "state": "COMPLETE", "value": -1.0}],
          "best": {"experiment": "toy-0", "params": {"toy.train.x": 2.0}, "value": -1.0}}
BAD_RECORDS = [
    ({"fixed": {"toy.train.epochs": 3}}, "sweeps/toy.json: fixed: differs from params.yaml sweeps.toy.fixed"),
    ({"trials": [{**RECORD["trials"][0], "params": {"toy.train.x": 9.0}}]}, "sweeps/toy.json: trials[0].params.toy.train.x: 9.0 is outside"),
    ({"trials": [{**RECORD["trials"][0], "state": "DONE"}]}, "sweeps/toy.json: trials[0].state"),
    ({"trials": [{**RECORD["trials"][0], "value": None}]}, "a COMPLETE trial needs a value"),
]


@pytest.mark.parametrize("change, words", BAD_RECORDS, ids=[str(i) for i in range(len(BAD_RECORDS))])
def test_a_record_of_another_search_stops_the_resume_with_one_line(tmp_path, capsys, change, words):
    root = project(tmp_path, SPEC)
    (root / "sweeps").mkdir()
    (root / "sweeps/toy.json").write_text(json.dumps({**RECORD, **change}))
    line = error_line(root, capsys)
    assert words in line and line.startswith("error: "), line
    assert json.loads((root / "sweeps/toy.json").read_text()) == {**RECORD, **change}  # left as it was


def test_the_sweeps_of_params_yaml_search_their_own_domains_keys(repo_root):
    """The committed specs as the search would read them, short of the metric names (a fresh clone has no reports):
    every key exists, belongs to the target's domain, and the objective is the metrics its target writes: evaluate's
    summary, or train's DVCLive log."""
    params = load_params(repo_root / PARAMS_FILE)
    stages = run(["dvc", "stage", "list", "--name-only"], repo_root).split()
    assert set(params[SECTION]) >= {"ecg", "speech", "anomaly", "protein", "mri"}
    for name, section in params[SECTION].items():
        spec = validate(SweepSpec, section, f"{SECTION}.{name}")
        domain = spec.target.partition("@")[2]
        assert spec.target in stages, name
        written = {"evaluate": f"reports/{domain}/summary.json", "train": f"reports/{domain}/training/metrics.json"}
        assert spec.objective.file == written[spec.target.partition("@")[0]], name
        keys = [*spec.space, *spec.fixed, *spec.drop]
        assert [key for key in keys if not (has_key(params, key) and key.startswith(f"{domain}."))] == [], name


def test_every_committed_record_is_a_search_of_the_spec_params_yaml_has(repo_root):
    """sweeps/<name>.json as publish reads it: a spec change that orphans a record fails here, not in `dvc repro publish`."""
    params = load_params(repo_root / PARAMS_FILE)
    records = sorted((repo_root / RECORDS).glob("*.json"))
    assert records, "no committed record"
    for path in records:
        assert path.stem in params[SECTION], path
        spec = validate(SweepSpec, params[SECTION][path.stem], f"{SECTION}.{path.stem}")
        record = read_record(path, spec, path.stem)
        finished = [trial for trial in record.trials if trial.state == COMPLETE]
        assert [trial.experiment for trial in record.trials] == [f"{path.stem}-{k}" for k in range(len(record.trials))], path
        assert record.best.value == (max if spec.objective.direction == "maximize" else min)(t.value for t in finished), path
