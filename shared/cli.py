"""The command-line vocabulary every `latente <domain>` command uses, and the entry point that runs them.

Why one module: the five domains grew their own options and their own checks, so the same mistake
read differently from domain to domain (`--force/--no-force` here, `--force` there; `--model`
optional here, required there; a folder where a file was expected gave a traceback in one domain
and a message in another; an unwritable output was found only after minutes of work). Every
command now builds its options and checks its paths with the helpers below, so that:

- a user error is one line, `error: <file or option>: <what is wrong> [— how to fix]`, exit 2
  (CONVENTIONS.md), whether a check here, a domain's own check or the option parser finds it;
- every check that can be made before the work is made before the work: numbers are checked while
  the command line is parsed, and inputs, outputs and the model folder at the top of the command,
  before a model is loaded or a volume denoised, so nothing partial is written and no existing
  output is clobbered;
- a default path (`models/ecg/A`, `params.yaml`) works from any folder: it is looked up in the
  current folder, then in the latente project folder, and the error says where it looked.

Only the command modules and `latente.domains.cli` import this module: no DVC stage may (a stage's
code is its DVC deps, tests/shared/test_dvc_deps.py). It stays import-light (no torch, no numpy),
because `latente --help` imports every domain's command module.
"""
from __future__ import annotations

import errno
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import typer

from latente.shared.errors import EXIT_USER_ERROR, UserError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The latente project folder (the repository root: `shared/` is `latente.shared`), where the DVC
pipeline writes `models/` and where `params.yaml` lives."""

SEED_MAX = 2**32 - 1
"""Largest `--seed`: NumPy's generators take seeds in [0, 2**32)."""

EPOCHS_MAX = 100_000
"""Largest `--epochs`: far above any profile in params.yaml (hundreds), yet a typo such as
`--epochs 10000000` is refused instead of running for days."""


# --- numbers: checked while the command line is parsed -------------------------------------------------------------

def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def range_text(low: float | None, high: float | None, *, whole: bool, open_low: bool = False,
               open_high: bool = False) -> str:
    """'a whole number from 2 to 16', 'a number above 0 and below 1', 'a number of at least 0 and below 1'."""
    kind = "a whole number" if whole else "a number"
    low_part = None if low is None else f"{'above' if open_low else 'of at least'} {_number_text(low)}"
    high_part = None if high is None else f"{'below' if open_high else 'of at most'} {_number_text(high)}"
    if low_part and high_part:
        if not open_low and not open_high:
            return f"{kind} from {_number_text(low)} to {_number_text(high)}"
        return f"{kind} {low_part} and {high_part.replace('of at most', 'at most')}"
    return f"{kind} {low_part or high_part}" if (low_part or high_part) else kind


def whole_number(option: str, low: int | None, high: int | None, why: str = "") -> Callable[[Any], int]:
    """A parser for typer's `parser=`: text → int in [low, high], else a one-line UserError naming the option.

    Why a parser, not typer's `min=`/`max=`: those report through the option parser's boxed usage
    panel with pydantic's wording; this names the option, the value and the allowed range on one line.
    It also runs on the option's default (which must therefore lie in the range).
    """
    allowed = range_text(low, high, whole=True) + (f" ({why})" if why else "")

    def parse(value: Any) -> int:
        if isinstance(value, bool):
            raise UserError(option, f"{value!r} is not a whole number", f"use {allowed}")
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            try:
                number = int(text.replace("_", ""), 10)
            except ValueError:
                raise UserError(option, f"{text!r} is not a whole number", f"use {allowed}") from None
        if (low is not None and number < low) or (high is not None and number > high):
            raise UserError(option, f"{number} is out of range", f"use {allowed}")
        return number

    return parse


def real_number(option: str, low: float | None, high: float | None, *, open_low: bool = False,
                open_high: bool = False, why: str = "") -> Callable[[Any], float]:
    """A parser: text → a finite float in the range (each end open or closed), else a one-line UserError.

    NaN and ±inf are refused always: `float("nan")` parses, and every comparison with NaN is false,
    so a NaN would slip through a plain range check and poison the computation downstream.
    """
    allowed = range_text(low, high, whole=False, open_low=open_low, open_high=open_high) + (f" ({why})" if why else "")

    def parse(value: Any) -> float:
        text = str(value).strip()
        try:
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float(text)
        except ValueError:
            raise UserError(option, f"{text!r} is not a number", f"use {allowed}") from None
        if not math.isfinite(number):
            raise UserError(option, f"{text} is not a finite number", f"use {allowed}")
        if low is not None and (number <= low if open_low else number < low):
            raise UserError(option, f"{_number_text(number)} is out of range", f"use {allowed}")
        if high is not None and (number >= high if open_high else number > high):
            raise UserError(option, f"{_number_text(number)} is out of range", f"use {allowed}")
        return number

    return parse


def int_option(default: Optional[int], option: str, *aliases: str, low: int | None, high: int | None,
               help: str, why: str = "") -> Any:
    """A typer option holding a whole number in [low, high]; the range is part of its help."""
    return typer.Option(default, option, *aliases, parser=whole_number(option, low, high, why), metavar="N",
                        help=f"{help} ({range_text(low, high, whole=True)})")


def float_option(default: Optional[float], option: str, *aliases: str, low: float | None, high: float | None,
                 open_low: bool = False, open_high: bool = False, help: str, why: str = "") -> Any:
    """A typer option holding a finite number in the range; the range is part of its help."""
    return typer.Option(default, option, *aliases, metavar="X",
                        parser=real_number(option, low, high, open_low=open_low, open_high=open_high, why=why),
                        help=f"{help} ({range_text(low, high, whole=False, open_low=open_low, open_high=open_high)})")


def seed_option(help: str = "random seed") -> Any:
    """`--seed N`, 0 ≤ N < 2**32 in every domain (NumPy's generators refuse negative seeds with a traceback)."""
    return int_option(0, "--seed", low=0, high=SEED_MAX, help=help)


def epochs_option(help: str = "override the maximum number of epochs") -> Any:
    """`--epochs N` (optional), 1 ≤ N ≤ EPOCHS_MAX."""
    return int_option(None, "--epochs", low=1, high=EPOCHS_MAX, help=help)


def force_option(what: str) -> Any:
    """The one `--force` flag: plain `--force` (no `--no-force`: not forcing is the default), same words everywhere."""
    return typer.Option(False, "--force", help=f"overwrite {what} if it already exists")


def json_option() -> Any:
    """`--json`: print only the results JSON (CONVENTIONS.md's shape) on stdout."""
    return typer.Option(False, "--json", help="print only the results JSON on stdout")


def model_option(default: str | Path | None, help: str) -> Any:
    """`--model FOLDER`. With a default (the folder the domain's train stage writes), the option may be
    left out from any folder: `model_folder` looks the default up in the current folder, then in the
    latente project folder. The parsed value is None when the option is not given."""
    where = (f" (default: {Path(default).as_posix()}, looked up in the current folder, then in the latente project folder)"
             if default else "")  # parentheses: typer's rich help reads [...] as markup
    return typer.Option(None if default else ..., "--model", metavar="FOLDER", show_default=False, help=help + where)


# --- paths: checked at the top of a command, before any work ------------------------------------------------------

def project_path(default: str | Path, option: str, hint: str) -> Path:
    """A default path: as given when it exists from the current folder, else in the latente project folder.

    Defaults such as `models/ecg/A` or `params.yaml` are relative to the repository root, where DVC
    writes them, so they used to work only when the command ran from there.
    """
    default = Path(default)
    if default.is_absolute() or default.exists():
        return default
    if (PROJECT_ROOT / default).exists():
        return PROJECT_ROOT / default
    raise UserError(option, f"the default {default.as_posix()} is neither in the current folder ({Path.cwd()}) "
                            f"nor in the latente project folder ({PROJECT_ROOT})", hint)


def model_folder(value: Path | None, default: str | Path | None, domain: str) -> Path:
    """The model folder to load: the given one, or the default looked up by `project_path`.

    A given path that is a file is refused here (the loader would say "not found"); a missing
    one is left to `load_model`, which says so and how to train one.
    """
    if value is None:
        assert default is not None, "a --model without a default is required by the option parser"
        return project_path(default, "--model", f"pass --model FOLDER, or train the model with `dvc repro train@{domain}`")
    if value.exists() and not value.is_dir():
        raise UserError(value, "is a file, not a model folder", "--model takes the folder that holds config.json and model.safetensors")
    return value


def _a(what: str) -> str:
    return f"{'an' if what[:1] in 'aeiou' else 'a'} {what}"


def input_file(path: Path, option: str, what: str = "file") -> Path:
    """An input that must be an existing file: a folder or a missing path is a one-line error, not a traceback."""
    if path.is_dir():
        raise UserError(path, f"is a folder, not {_a(what)}", f"{option} takes {_a(what)}")
    if not path.exists():
        raise UserError(path, f"{what} not found")
    if not path.is_file():
        raise UserError(path, f"is not a regular {what}", f"{option} takes {_a(what)}")
    return path


def input_folder(path: Path, option: str, what: str = "folder") -> Path:
    """An input that must be an existing folder: a file says so (not "folder not found")."""
    if path.exists() and not path.is_dir():
        raise UserError(path, f"is a file, not {_a(what)}", f"{option} takes {_a(what)}")
    if not path.is_dir():
        raise UserError(path, f"{what} not found")
    return path


def _nearest_existing(path: Path) -> Path:
    """The path itself or its closest ancestor that exists (what `mkdir -p` would build on)."""
    here = path
    while not os.path.lexists(here) and here != here.parent:
        here = here.parent
    return here


def _check_can_create_in(path: Path, option: str) -> None:
    """`path` can be created: its closest existing ancestor is a folder we can write into.

    The outputs are written atomically (a temporary file beside the target, then a rename), so
    what must be writable is the folder, whatever the permissions of an existing target. The check
    creates and removes a temporary file there, so permission bits, ACLs, read-only mounts and
    immutable folders are judged by the system itself, exactly as the real write will be
    (`os.access` only models them, and is known to be wrong on network file systems).
    """
    folder = _nearest_existing(path.parent if str(path.parent) else Path("."))
    if not folder.is_dir():
        raise UserError(folder, "is a file, not a folder", f"{option} must be a path inside a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".latente-write-check-", dir=folder)
    except OSError as err:
        raise UserError(folder, f"folder is not writable ({err.strerror or err})",
                        f"choose another place for {option}, or make the folder writable") from None
    os.close(fd)
    os.unlink(probe)


def output_file(path: Path, force: bool, option: str) -> Path:
    """An output file, checked before any work: not a folder, not clobbered without `--force`, in a writable folder."""
    if path.is_dir():
        raise UserError(path, "is a folder", f"{option} is the file to write: give a file name, e.g. {path / 'out'}")
    if os.path.lexists(path) and not force:
        raise UserError(path, "already exists", "pass --force to overwrite it")
    _check_can_create_in(path, option)
    return path


def output_folder(path: Path, force: bool, option: str) -> Path:
    """An output folder (a model folder), checked before any work, like `output_file`."""
    if os.path.lexists(path) and not path.is_dir():
        raise UserError(path, "is a file, not a folder", f"{option} is the folder to write: give a new folder name")
    if path.exists() and not force:
        raise UserError(path, "already exists", "pass --force to overwrite it")
    _check_can_create_in(path, option)
    return path


# --- the entry point -----------------------------------------------------------------------------------------------

_OS_USER_ERRNOS = {errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ENOSPC, errno.EROFS,
                   errno.EDQUOT, errno.ENAMETOOLONG, errno.EEXIST}
"""OS errors that say something about the user's paths or disk, not about latente: a file that cannot
be written or read for these reasons is a user error (one line), whichever module hit it."""


def _param_name(param: Any) -> str:
    """'--bits' for an option (its long name), 'RECORD' for an argument."""
    opts = [o for o in (getattr(param, "opts", None) or []) if isinstance(o, str)]
    if getattr(param, "param_type_name", "") == "argument" or not opts:
        name = getattr(param, "human_readable_name", None) or getattr(param, "name", None) or "argument"
        return str(name).upper()
    longs = [o for o in opts if o.startswith("--")]
    return max(longs or opts, key=len)


def _sentence(text: str) -> str:
    """One line, starting lower-case, without a final period (the `error:` line's style)."""
    text = " ".join(str(text).split()).rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def usage_error_line(err: Exception) -> str:
    """The `error:` line of an option-parsing error: which option or argument, what is wrong, where help is."""
    from typer._click import exceptions as click_errors  # typer vendors click; light, already imported by typer

    ctx = getattr(err, "ctx", None)
    command = ctx.command_path if ctx is not None else "latente"
    hint = f"see `{command} --help`" if ctx is not None else None
    if isinstance(err, click_errors.MissingParameter):
        where = _param_name(err.param) if err.param is not None else command
        kind = getattr(err.param, "param_type_name", "option")
        problem = f"this {kind} is required" if kind in ("option", "argument") else "is required"
    elif isinstance(err, click_errors.BadParameter):
        where = _param_name(err.param) if err.param is not None else (str(err.param_hint) if err.param_hint else command)
        problem = _sentence(err.message)
    elif isinstance(err, click_errors.NoSuchOption):
        where, problem = err.option_name, "no such option"
        if err.possibilities:
            hint = f"did you mean {', '.join(sorted(err.possibilities))}?" + (f" ({hint})" if hint else "")
    elif isinstance(err, click_errors.BadOptionUsage):
        where, problem = err.option_name, _sentence(err.message)
        if problem.startswith("option ") and problem.endswith("requires an argument"):
            problem = "needs a value"
    else:
        where, problem = command, _sentence(getattr(err, "message", None) or str(err))
    return UserError(where, problem, hint).line()


def _os_error_line(err: OSError) -> str | None:
    if err.errno not in _OS_USER_ERRNOS or not err.filename:
        return None
    return UserError(err.filename, (err.strerror or str(err)).lower()).line()


def one_line(text: str) -> str:
    """A message on one line: the parsers' own texts (YAML's, pydantic's) quote the input over several lines."""
    return " ".join(text.split())


def run(app: typer.Typer, args: Optional[Sequence[str]] = None, prog_name: str = "latente") -> None:
    """Run a typer app so that every user error, option parsing included, is one `error:` line and exit 2.

    The app runs with `standalone_mode=False`: typer then raises the parser's errors instead of
    printing its multi-line boxed usage panel, and they are written here as one line naming the
    option. `--help` still prints the help and exits 0; no arguments at all print the help and exit
    2 (as before). A `UserError` from a command, a parser or a check prints its line, folded onto one
    line, and exits 2.
    OS errors about the user's paths (permission, read-only, a folder where a file goes, disk full)
    become one line too; any other exception is a bug and keeps its traceback.
    """
    from typer._click import exceptions as click_errors

    try:
        code = app(args=list(args) if args is not None else None, prog_name=prog_name, standalone_mode=False)
    except UserError as err:
        print(one_line(err.line()), file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except click_errors.NoArgsIsHelpError as err:
        text = err.format_message()  # the help; typer's rich output has printed it already
        if text.strip():
            print(text)
        raise SystemExit(EXIT_USER_ERROR) from None
    except click_errors.UsageError as err:
        print(usage_error_line(err), file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except click_errors.ClickException as err:
        print(UserError(prog_name, _sentence(err.format_message())).line(), file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as err:
        line = _os_error_line(err)
        if line is None:
            raise
        print(line, file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        raise SystemExit(code)
