"""The `latente` command: one sub-command group per domain package that has a `cli` module.

Every domain's cli module is imported to build the command (its help lists them all), so each
keeps its module-level imports light and imports torch, MONAI and the like inside the commands
that compute: `latente --help` then starts in a fraction of torch's import time (bench/startup.py).
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import typer

import latente.domains
from latente.shared.errors import exit_on_user_error

app = typer.Typer(
    name="latente",
    help="Autoencoders doing real work: apply trained latente models to your own files.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _module in sorted(pkgutil.iter_modules(latente.domains.__path__), key=lambda m: m.name):
    if _module.ispkg and importlib.util.find_spec(f"latente.domains.{_module.name}.cli") is not None:
        app.add_typer(importlib.import_module(f"latente.domains.{_module.name}.cli").app, name=_module.name)


@exit_on_user_error
def main() -> None:
    app()


if __name__ == "__main__":
    main()
