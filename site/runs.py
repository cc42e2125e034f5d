"""What the site says about a run: code revision, the params DVC recorded, dates, the previous run."""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import yaml

from latente.shared.params import PARAMS_FILE


@dataclass(frozen=True)
class Revision:
    commit: Optional[str]  # short hash of HEAD; None outside git or before the first commit
    dirty: bool  # tracked files differ from HEAD (e.g. `dvc exp run -S ...` changed params.yaml)
    subject: str = ""
    date: str = ""


def _git(root: Path, *args: str) -> Optional[str]:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision(root: Path) -> Revision:
    """HEAD, and whether a tracked file other than dvc.lock and README.md differs from it.

    README.md is left out because publish itself rewrites its results block; dvc.lock is left out of the dirty check because the publish stage runs inside the very
    `dvc repro` that is rewriting it: by the time publish runs, DVC has already recorded the
    stages before it in dvc.lock, so counting it would call every reproduced run dirty. The
    lock only records what the run produced; the code and params that decide the results
    (params.yaml after `dvc exp run -S ...`, any source file) still mark the tree dirty.
    """
    head = _git(root, "log", "-1", "--format=%h%x00%s%x00%cI")
    if not head:
        return Revision(None, False)
    commit, subject, date = head.split("\x00")
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)dvc.lock", ":(exclude)README.md"))
    return Revision(commit, dirty, subject, date)


def file_date(path: Path) -> str:
    """When a report file was written, in UTC."""
    stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def now() -> str:
    return datetime.now(tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def recorded_params(root: Path, domain: str) -> tuple[dict[str, Any], str]:
    """The params each `<stage>@<domain>` ran with, from dvc.lock; else the current params.yaml.

    Returns ({stage: section}, source) with source "dvc.lock" or "params.yaml".
    """
    lock = root / "dvc.lock"
    stages: dict[str, Any] = {}
    if lock.is_file():
        data = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
        for name, stage in (data.get("stages") or {}).items():
            stage_name, _, item = name.partition("@")
            if item == domain:
                for key, value in ((stage.get("params") or {}).get(PARAMS_FILE) or {}).items():
                    stages[key.split(".", 1)[1] if key.startswith(f"{domain}.") else key] = value
    if stages:
        return stages, "dvc.lock"
    params = root / PARAMS_FILE
    section = (yaml.safe_load(params.read_text(encoding="utf-8")) or {}).get(domain, {}) if params.is_file() else {}
    return dict(section or {}), PARAMS_FILE


def flat_params(params: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """[("train.trainer.epochs", 30), ...]: nested params as dotted keys (lists stay whole)."""
    rows: list[tuple[str, Any]] = []
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            rows += flat_params(value, name)
        else:
            rows.append((name, value))
    return rows


@dataclass(frozen=True)
class Previous:
    summary: Optional[dict[str, Any]]  # the summary file at HEAD, or None
    reason: str  # why there is none (empty when there is one)


def previous_summary(root: Path, target: str) -> Previous:
    """The summary metrics of the last committed run, read through DVC at HEAD.

    The summary is a cached DVC output, so DVC finds HEAD's version from dvc.lock and the
    local cache even though reports/ is git-ignored.
    """
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        return Previous(dvc.api.metrics_show(target, repo=str(root), rev="HEAD"), "")
    except (FileNotFoundError, DvcException) as err:
        return Previous(None, f"{type(err).__name__}: {err}")
