"""Every result a stage writes reaches `dvc exp show` and `dvc checkout`: an output that git ignores
must be in DVC's cache, or an experiment commits neither its file nor a copy DVC can read back
(`dvc exp show` then prints `!` for its metrics). Only the trainer's persisted resume state is
kept out of the cache on purpose: it is scratch, not a result."""
from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def stage_outputs() -> list[tuple[str, str, dict]]:
    """(stage, path, options) of every outs/metrics/plots entry, with foreach stages expanded."""
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())
    variables = {k: v for entry in spec.get("vars", []) for k, v in entry.items()}
    found = []
    for name, stage in spec["stages"].items():
        items = variables[stage["foreach"][2:-1]] if "foreach" in stage else [None]
        body = stage.get("do", stage)
        for item in items:
            for kind in ("outs", "metrics", "plots"):
                for entry in body.get(kind, []):
                    path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                    found.append((name if item is None else f"{name}@{item}", path.replace("${item}", str(item)), options or {}))
    return found


def git_ignores(path: str) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0


def test_every_ignored_output_but_resume_state_is_cached():
    outputs = stage_outputs()
    assert any(path == "reports/speech/summary.json" for _, path, _ in outputs)  # the expansion found the domains' metrics
    lost = [f"{stage}: {path}" for stage, path, options in outputs
            if options.get("cache") is False and not options.get("persist") and git_ignores(path)]
    assert lost == []
    uncached = {path for _, path, options in outputs if options.get("cache") is False}
    assert uncached == {f"models/checkpoints/{d}" for d in ("ecg", "protein", "speech", "anomaly", "mri")}
