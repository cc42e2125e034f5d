"""User errors: one line, exit status 2, no traceback (see CONVENTIONS.md)."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, TypeVar

EXIT_USER_ERROR = 2

F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """A problem with the user's files, params or model folder, not a bug."""

    def __init__(self, where: str | Path, problem: str, hint: str | None = None):
        self.where = str(where)
        self.problem = problem
        self.hint = hint
        super().__init__(self.line())

    def line(self) -> str:
        text = f"error: {self.where}: {self.problem}"
        return f"{text} — {self.hint}" if self.hint else text


def exit_on_user_error(func: F) -> F:
    """Wrap an entry point so a UserError prints its one line and exits 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as err:
            print(err.line(), file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]
