"""Replay tables of bad `latente` command lines (issue 16): each must fail as CONVENTIONS.md says.

A case is a command line with `{placeholders}` and the fragments its one `error:` line must name.
`replay` runs it and asserts exit 2, exactly one `error:` line holding every fragment, no
traceback, and that the test's folder is byte for byte as it was: no partial output, no temporary
file left behind, no existing output clobbered (`{existing}` holds b"precious" in every case).

Placeholders every table may use (the per-domain tests add their own inputs):
  {tmp}       the test's folder             {existing}  an existing output file (b"precious")
  {dir}       an existing empty folder      {file}      an existing file (to stand where a folder goes)
  {missing}   a path that does not exist    {ro}        a folder the command cannot write into
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from conftest import assert_user_error


@dataclass(frozen=True)
class Case:
    args: str  # the command line after `latente`, with {placeholders}
    fragments: tuple[str, ...]  # what the error line must name, with {placeholders}
    outside: bool = False  # run from an empty folder, with an empty project folder: no default path exists


def case(id: str, args: str, *fragments: str, outside: bool = False):
    """One row of a table, as a pytest param named `id`."""
    return pytest.param(Case(args, fragments, outside), id=id)


def _writable(folder: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


@contextlib.contextmanager
def read_only_folder(path: Path):
    """A folder this process cannot write into: mode 0555, and for root (who ignores modes) the
    immutable attribute where chattr is allowed; otherwise the case is skipped."""
    path.mkdir()
    path.chmod(0o555)
    immutable = False
    if _writable(path) and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    try:
        if _writable(path):
            pytest.skip("no way to make a read-only folder here (root without the immutable attribute)")
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o755)


class Env(dict):
    """The placeholders; `{ro}` is made on first use (it needs cleaning up, and may skip the case)."""

    def __init__(self, tmp: Path, stack: contextlib.ExitStack, **extra: object):
        (tmp / "existing.out").write_bytes(b"precious")
        (tmp / "adir").mkdir()
        (tmp / "afile.txt").write_text("a file, not a folder\n")
        super().__init__(tmp=tmp, existing=tmp / "existing.out", dir=tmp / "adir", file=tmp / "afile.txt",
                         missing=tmp / "missing", **extra)
        self._stack = stack

    def __missing__(self, key: str):
        if key == "ro":
            self[key] = self._stack.enter_context(read_only_folder(self["tmp"] / "ro"))
            return self[key]
        raise KeyError(key)


@pytest.fixture
def env_stack():
    with contextlib.ExitStack() as stack:
        yield stack


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under `folder` with its content's digest ('dir' for a folder)."""
    return {p.relative_to(folder).as_posix(): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def fill(template: str, env: Env) -> str:
    return template.format_map(env)


def replay(run: Callable[..., subprocess.CompletedProcess], case: Case, env: Env,
           monkeypatch: pytest.MonkeyPatch | None = None) -> subprocess.CompletedProcess:
    """Run one case; assert the one-line error and that nothing under {tmp} changed."""
    args = [fill(token, env) for token in shlex.split(case.args)]
    fragments = [fill(f, env) for f in case.fragments]
    tmp = env["tmp"]
    before = snapshot(tmp)
    if case.outside:
        from latente.shared import cli as shared_cli

        assert monkeypatch is not None
        monkeypatch.chdir(env["dir"])
        monkeypatch.setattr(shared_cli, "PROJECT_ROOT", tmp / "no_project")
    result = run(*args)
    if os.environ.get("LATENTE_SHOW_ERRORS"):
        print(f"\n{case.args}\n    {result.stderr.strip()}")
    assert_user_error(result, *fragments)
    assert "Usage:" not in result.stderr and "╭" not in result.stderr  # no usage panel
    assert snapshot(tmp) == before, "the command left, changed or removed files"
    assert (tmp / "existing.out").read_bytes() == b"precious"
    return result
