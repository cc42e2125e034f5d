"""The package layout holds: who may import whom (read from the source, not by importing), and one template per domain."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "site", "domains", "pipelines")
OLD_NAMES = ("shared", "domains", "pipelines")  # importable before everything moved under `latente`
# issue 12, section 3: every domain holds exactly these modules, each for the same job
DOMAIN_MODULES = {"__init__", "params", "sources", "data", "model", "training", "evaluation", "baselines", "metrics", "report", "cli"}


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, module) of every import statement in the file, inside functions too; relative imports are resolved."""
    package = ["latente", *path.relative_to(root).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.append((node.lineno, module))
            # `from latente import domains` or `from latente.domains import ecg` name modules too
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offences(paths: list[Path], forbidden) -> list[str]:
    """`file:line imports module` for every import that `forbidden(path, module)` refuses."""
    return [f"{path.relative_to(REPO)}:{line} imports {module}"
            for path in paths for line, module in imported_modules(path) if forbidden(path, module)]


def test_shared_and_site_import_no_domain_and_no_pipeline():
    bad = offences(python_files("shared", "site"),
                   lambda path, module: is_under(module, "latente.domains") or is_under(module, "latente.pipelines"))
    assert not bad, "\n".join(bad)


def domain_of(path: Path, root: Path = REPO) -> str | None:
    parts = path.relative_to(root / "domains").parts
    return parts[0] if len(parts) > 1 else None


def test_no_domain_imports_another_domain_or_a_pipeline():
    def forbidden(path: Path, module: str) -> bool:
        if is_under(module, "latente.pipelines"):
            return True
        own = domain_of(path)
        parts = module.split(".")
        return own is not None and len(parts) > 2 and parts[:2] == ["latente", "domains"] and parts[2] != own

    bad = offences(python_files("domains"), forbidden)
    assert not bad, "\n".join(bad)


def test_nothing_imports_the_old_plain_package_names():
    bad = offences(python_files(*PACKAGES, "tests", "bench"),
                   lambda path, module: any(is_under(module, name) for name in OLD_NAMES))
    assert not bad, "\n".join(bad)


def test_the_checks_see_every_kind_of_import(tmp_path):
    """The guard's own oracle: a file with each kind of import, in a function too, is read as Python reads it."""
    probe = tmp_path / "domains" / "ecg" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import shared.io\nfrom latente.domains.mri import params\nfrom latente import pipelines\n"
                     "def f():\n    from .data import x\n")
    assert imported_modules(probe, tmp_path) == [
        (1, "shared.io"), (2, "latente.domains.mri"), (2, "latente.domains.mri.params"),
        (3, "latente"), (3, "latente.pipelines"), (5, "latente.domains.ecg.data"), (5, "latente.domains.ecg.data.x")]
    assert domain_of(probe, tmp_path) == "ecg"


@pytest.mark.parametrize("domain", sorted(p.name for p in (REPO / "domains").iterdir() if (p / "__init__.py").is_file()))
def test_every_domain_has_the_same_modules(domain):
    modules = {p.stem for p in (REPO / "domains" / domain).glob("*.py")}
    assert modules == DOMAIN_MODULES, f"domains/{domain}: missing {sorted(DOMAIN_MODULES - modules)}, extra {sorted(modules - DOMAIN_MODULES)}"
