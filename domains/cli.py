"""The `latente` command: one sub-command group per domain."""
from __future__ import annotations

import importlib

import typer

from shared.errors import exit_on_user_error

DOMAINS = ("ecg",)

app = typer.Typer(
    name="latente",
    help="Autoencoders doing real work: apply trained latente models to your own files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _name in DOMAINS:
    app.add_typer(importlib.import_module(f"domains.{_name}.cli").app, name=_name)


@exit_on_user_error
def main() -> None:
    app()


if __name__ == "__main__":
    main()
