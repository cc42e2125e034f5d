"""Atomic outputs: a failed run never leaves a half-written file or clobbers a result."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from latente.shared.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise UserError(path, "already exists", "pass --force to overwrite it")


@contextlib.contextmanager
def atomic_path(path: str | Path, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only on success."""
    path = Path(path)
    refuse_existing(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _discard(path: Path) -> None:
    """Remove what a swap moved aside, a folder or a file (--force over a file given as a folder's path)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | Path, force: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; swap it in only on success."""
    path = Path(path)
    refuse_existing(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            _discard(old)
            os.replace(path, old)
            os.replace(tmp, path)
            _discard(old)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(path: str | Path, data: bytes, force: bool = True) -> None:
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str, force: bool = True) -> None:
    write_bytes(path, text.encode("utf-8"), force)


def write_json(path: str | Path, obj: Any, force: bool = True) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n", force)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(path, f"not valid JSON ({err})") from None
