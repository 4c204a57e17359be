"""The Typer application; each command group registers itself from its own module.

Heavy libraries are imported inside commands so ``--help`` stays instant.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from immunodig.errors import BuildInterrupted, ImmunodigError

app = typer.Typer(
    name="immunodig",
    help="H&E morphology, DuckDB feature store and small-cohort models (dMMR/MSI CRC).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



def _print_version(value: bool) -> None:
    if value:
        from immunodig import __version__

        typer.echo(f"immunodig {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """H&E morphology, DuckDB feature store and small-cohort models (dMMR/MSI CRC)."""


#: Modules under immunodig.cli that define ``register(app)``.
COMMAND_MODULES: tuple[str, ...] = (
    "synth_cmds",
    "build_cmds",
    "store_cmds",
    "tissue_cmds",
    "nuclei_cmds",
    "structures_cmds",
    "model_cmds",
    "report_cmds",
    "demo_cmds",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"immunodig.cli.{_name}").register(app)


def main() -> None:
    """Entry point: run the app, turning ImmunodigError into a clean message and exit code 2
    (an interrupted build: its message and 128 + the signal number, 143 for SIGTERM)."""
    try:
        app()
    except ImmunodigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except BuildInterrupted as exc:  # SIGTERM / Ctrl-C in a build: workers stopped, run marked
        typer.echo(f"interrupted: {exc}", err=True)
        sys.exit(128 + exc.signum)
