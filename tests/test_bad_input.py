"""The `latente` entry point itself (latente.shared.cli.run): parsing errors are one `error:` line and exit 2,
`--help` and `--version` still answer with exit 0, OS errors about the user's paths become one line.
The per-domain tables are tests/<domain>/test_bad_input.py."""
from __future__ import annotations

import errno
import importlib.metadata
import io
import contextlib

import pytest
import typer

from conftest import assert_user_error
from latente.shared.cli import output_file, range_text, real_number, run, whole_number
from latente.shared.errors import UserError


@pytest.mark.parametrize("args, fragments", [
    (("--nope",), ("--nope", "no such option")),
    (("nosuch",), ("latente", "no such command 'nosuch'")),
    (("ecg", "--nope"), ("--nope", "no such option")),
    (("mri", "denoize"), ("latente mri", "no such command 'denoize'", "denoise")),
    (("--version", "extra"), ()),  # eager: --version answers before the rest is read
])
def test_top_level_parsing_errors(latente, args, fragments):
    result = latente(*args)
    if not fragments:
        assert result.returncode == 0 and result.stdout.startswith("latente ")
        return
    assert_user_error(result, *fragments)
    assert "Usage:" not in result.stderr and "╭" not in result.stderr


def test_version(latente):
    result = latente("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"latente {importlib.metadata.version('latente')}"


@pytest.mark.parametrize("args", [("--help",), ("ecg", "--help"), ("protein", "sample", "--help"), ("anomaly", "score", "--help")])
def test_help_still_exits_0(latente, args):
    result = latente(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout and result.stderr == ""


def test_no_arguments_print_the_help(latente):
    result = latente("ecg")
    assert result.returncode == 2 and "compress" in result.stdout


def test_version_and_a_parsing_error_in_a_real_process(latente_subprocess):
    assert latente_subprocess("--version").stdout.startswith("latente ")
    assert_user_error(latente_subprocess("ecg", "compress", "r", "o.ltc", "--shift", "64"), "--shift", "64 is out of range")


def _toy(error: BaseException) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def go() -> None:
        raise error

    @app.command()
    def other() -> None:
        pass

    return app


def _run(app: typer.Typer, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run(app, list(args))
            code = 0
        except SystemExit as stop:
            code = stop.code
    return code, err.getvalue()


@pytest.mark.parametrize("error, fragments", [
    (PermissionError(errno.EACCES, "Permission denied", "/data/out.csv"), ("/data/out.csv", "permission denied")),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/data"), ("/data", "is a directory")),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/out"), ("/f/out", "not a directory")),
    (OSError(errno.ENOSPC, "No space left on device", "/data/big"), ("/data/big", "no space left")),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"), ("/ro/x", "read-only")),
])
def test_os_errors_about_user_paths_are_one_line(error, fragments):
    code, stderr = _run(_toy(error), "go")
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and all(f in lines[0] for f in fragments), stderr


@pytest.mark.parametrize("error", [RuntimeError("a bug"), OSError(errno.EIO, "I/O error"), FileNotFoundError(2, "x")])
def test_other_exceptions_stay_bugs(error):
    with pytest.raises(type(error)):
        _run(_toy(error), "go")


def test_parsers_and_range_text():
    assert whole_number("--n", 1, 5)("3") == 3 and whole_number("--n", 1, 5)(4) == 4
    assert real_number("--x", 0, 1, open_low=True)(" 0.5 ") == 0.5
    for bad in ("nan", "inf", "-inf", "0", "1.5", "x"):
        with pytest.raises(UserError, match=r"^error: --x: "):
            real_number("--x", 0, 1, open_low=True)(bad)
    assert range_text(2, 16, whole=True) == "a whole number from 2 to 16"
    assert range_text(0, 1, whole=False, open_low=True, open_high=True) == "a number above 0 and below 1"
    assert range_text(1, None, whole=True) == "a whole number of at least 1"


def test_output_check_leaves_nothing_behind(tmp_path):
    output_file(tmp_path / "sub" / "new.csv", force=False, option="--out")  # a missing parent is made at write time
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "x").write_text("keep")
    output_file(tmp_path / "x", force=True, option="--out")
    with pytest.raises(UserError, match="already exists"):
        output_file(tmp_path / "x", force=False, option="--out")
    assert [p.name for p in tmp_path.iterdir()] == ["x"] and (tmp_path / "x").read_text() == "keep"
