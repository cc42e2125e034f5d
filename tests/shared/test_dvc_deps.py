"""Every DVC stage depends on exactly the code it runs (the import closure of its stage module), and keeps every result.

DVC reruns a stage when one of its deps changes, so a missing module lets a stale result stand,
and a whole folder (`shared`) makes a docstring edit retrain every domain. The closure is read
statically (AST), following every `latente.*` import, also those inside functions, since a stage
function's lazy imports run too.
"""
from __future__ import annotations

import ast
import importlib
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"shared", "site", "domains", "pipelines"}  # the folders the `latente` namespace maps


def module_file(module: str) -> Path | None:
    """`latente.shared.io` → shared/io.py (or the package's __init__.py); None outside latente."""
    parts = module.split(".")
    if parts[0] != "latente" or len(parts) < 2 or parts[1] not in PACKAGES:
        return None
    base = REPO.joinpath(*parts[1:])
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def imported_modules(path: Path) -> set[str]:
    """Every `latente.*` module a file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {n for n in names if n.startswith("latente.")}


def closure(*modules: str) -> set[str]:
    """Repo-relative files of the modules and everything they import, with the packages they sit in."""
    files: set[Path] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for i in range(2, len(parts) + 1):  # importing a.b.c runs a.b's __init__ too
            path = module_file(".".join(parts[:i]))
            if path is not None and path not in files:
                files.add(path)
                todo.extend(imported_modules(path))
    return {p.relative_to(REPO).as_posix() for p in files}


def stage_code(pipeline: str, stage: str) -> set[str]:
    stages = {s.name: s for s in importlib.import_module(f"latente.pipelines.{pipeline}").STAGES}
    return closure(f"latente.pipelines.{pipeline}", stages[stage].module)


def dvc_file() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())


DOMAINS = dvc_file()["vars"][0]["domains"]
STAGE_NAMES = ("fetch", "prepare", "train", "evaluate")


def listed_code(stage: str, domain: str) -> set[str]:
    """The .py deps of `stage@domain`: the foreach template's, with `${item}` filled in."""
    deps = dvc_file()["stages"][stage]["do"]["deps"]
    return {d.replace("${item}", domain) for d in deps if d.endswith(".py")}


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_stage_deps_cover_its_import_closure(domain, stage):
    missing = stage_code(domain, stage) - listed_code(stage, domain)
    assert not missing, f"{stage}@{domain} runs {sorted(missing)} but does not depend on it"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_listed_dep_is_run_by_some_domain(stage):
    """One foreach template serves five domains, so it lists the union of their closures, and nothing more."""
    template = {d for d in dvc_file()["stages"][stage]["do"]["deps"] if d.endswith(".py")}
    used = set()
    for domain in DOMAINS:
        used |= {d.replace(domain, "${item}") if d in (f"pipelines/{domain}.py",) or d.startswith(f"domains/{domain}/") else d
                 for d in stage_code(domain, stage)}
    assert template <= used, f"{stage}: deps no domain runs: {sorted(template - used)}"


def test_publish_deps_are_its_import_closure():
    deps = {d for d in dvc_file()["stages"]["publish"]["deps"] if d.endswith(".py")}
    assert deps == closure("latente.pipelines.publish")


def test_publish_depends_on_every_file_the_site_is_built_from():
    """The templates, scripts and strings beside site/*.py: a changed template must rebuild the site as a changed module does."""
    deps = set(dvc_file()["stages"]["publish"]["deps"])
    files = [path.relative_to(REPO).as_posix() for path in (REPO / "site").rglob("*")
             if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts]
    assert "site/templates/domain.html" in files  # the walk found them
    assert [f for f in files if not any(f == dep or f.startswith(dep + "/") for dep in deps)] == []


def test_no_stage_depends_on_a_whole_code_folder():
    for name, stage in dvc_file()["stages"].items():
        for dep in stage.get("do", stage)["deps"]:
            assert dep.rstrip("/") not in {"shared", "site", "pipelines", "domains", "domains/${item}"}, (name, dep)


def stage_outputs() -> list[tuple[str, str, dict]]:
    """(stage, path, options) of every outs/metrics/plots entry, foreach templates filled in per domain."""
    found = []
    for name, stage in dvc_file()["stages"].items():
        body, items = (stage["do"], DOMAINS) if "foreach" in stage else (stage, [None])
        for item in items:
            for kind in ("outs", "metrics", "plots"):
                for entry in body.get(kind, []):
                    path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                    found.append((name if item is None else f"{name}@{item}", path.replace("${item}", str(item)), options or {}))
    return found


def test_every_ignored_output_but_resume_state_is_cached():
    """An output that git ignores must be in DVC's cache, or an experiment keeps neither its file nor a
    copy DVC can read back (`dvc exp show` prints `!` for its metrics). Only the trainer's persisted
    resume state stays out of the cache on purpose: it is scratch, not a result."""
    outputs = stage_outputs()
    assert any(path == "reports/speech/summary.json" for _, path, _ in outputs)  # the expansion found the domains' metrics
    ignored = lambda path: subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO).returncode == 0  # noqa: E731
    lost = [f"{stage}: {path}" for stage, path, options in outputs if options.get("cache") is False and not options.get("persist") and ignored(path)]
    assert lost == []
    uncached = {path for _, path, options in outputs if options.get("cache") is False}
    assert uncached == {f"models/checkpoints/{d}" for d in DOMAINS}
