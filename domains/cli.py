"""The `latente` command: one sub-command group per domain package that has a `cli` module.

Every domain's cli module is imported to build the command (its help lists them all), so each
keeps its module-level imports light and imports torch, MONAI and the like inside the commands
that compute: `latente --help` then starts in a fraction of torch's import time (bench/startup.py).

`main` runs the app through `latente.shared.cli.run`: every user error, option parsing included,
is one `error:` line and exit status 2 (CONVENTIONS.md), never typer's boxed usage panel.
"""
from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from typing import Optional, Sequence

import typer

import latente.domains
from latente.shared.cli import run

HELP = "Autoencoders doing real work: apply trained latente models to your own files."

app = typer.Typer(
    name="latente",
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("latente")
        except PackageNotFoundError:  # a checkout run without being installed
            number = "0+unknown"
        typer.echo(f"latente {number}")
        raise typer.Exit()


@app.callback(help=HELP)
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="print latente's version and exit"),
) -> None:
    pass


for _module in sorted(pkgutil.iter_modules(latente.domains.__path__), key=lambda m: m.name):
    if _module.ispkg and importlib.util.find_spec(f"latente.domains.{_module.name}.cli") is not None:
        app.add_typer(importlib.import_module(f"latente.domains.{_module.name}.cli").app, name=_module.name)


def main(args: Optional[Sequence[str]] = None) -> None:
    """The `latente` entry point (pyproject's [project.scripts]); `args` default to sys.argv[1:]."""
    run(app, args)


if __name__ == "__main__":
    main()
