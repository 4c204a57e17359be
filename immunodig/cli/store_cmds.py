"""Store commands: ``query``, ``import-clinical``, ``import-genomic``, ``import-multiplex``, ``check-store``."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from immunodig.errors import ConfigError

#: A first line that is an option name (``--stor``), not a ``-- comment``.
_OPTION_LIKE = re.compile(r"^--?[A-Za-z][A-Za-z0-9-]*$")


class OutputFormat(str, Enum):
    """Output formats of ``query``."""

    table = "table"
    csv = "csv"
    json = "json"


def _params(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise typer.BadParameter(f"--param expects NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def _sql_text(sql: str | None, file: Path | None) -> str:
    """The SQL of ``query``: the argument, ``@FILE`` (the file's text) or ``--file FILE``."""
    if (sql is None) == (file is None):
        raise ConfigError("give the SQL either as the argument or with --file FILE (not both)")
    if sql is not None and sql.startswith("@"):
        file = Path(sql[1:])
    elif sql is not None:
        first = sql.strip().splitlines()[0] if sql.strip() else ""
        if _OPTION_LIKE.match(first):
            raise ConfigError(f"no such option: {first} (see query --help); a SQL file is run "
                              "with --file FILE")
        return sql
    if not file.is_file():
        raise ConfigError(f"SQL file not found: {file}")
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"SQL file {file} cannot be read as UTF-8 text: {exc}") from exc


def _report(result) -> None:
    again = " (same file imported before; rows rewritten identically)" if result.already_imported else ""
    typer.echo(f"{result.kind}: {result.rows} row(s) for {result.n_patients} patient(s) stored, "
               f"import {result.import_id}{again}")


def register(app: typer.Typer) -> None:
    """Add the store commands to ``app``."""

    # ignore_unknown_options: SQL that starts with a ``-- comment`` reaches the argument
    # instead of being read as an option (option-like first lines are refused in _sql_text).
    @app.command("query", context_settings={"ignore_unknown_options": True})
    def query_cmd(
        store: Annotated[Path, typer.Option(help="The .duckdb store.")],
        sql: Annotated[Optional[str], typer.Argument(
            help="One SELECT / WITH query, or @FILE; refer to values as $name.")] = None,
        file: Annotated[Optional[Path], typer.Option(
            help="Read the query from this .sql file (comments allowed), e.g. "
                 "docs/queries/01_cohort_overview.sql.")] = None,
        fmt: Annotated[OutputFormat, typer.Option("--format", help="table, csv or json.")] = OutputFormat.table,
        param: Annotated[Optional[list[str]], typer.Option(
            help="Bound value NAME=VALUE for $NAME (repeatable).")] = None,
        max_rows: Annotated[int, typer.Option(help="Rows shown by --format table (-1: all).")] = 100,
    ) -> None:
        """Run exactly one read-only SELECT (no writes, no other statements, no access to other
        files), given as the argument, as @FILE or with --file FILE."""
        import polars as pl

        from immunodig.store import query

        df = query(store, _sql_text(sql, file), _params(param))
        if fmt is OutputFormat.csv:
            typer.echo(df.write_csv(), nl=False)
        elif fmt is OutputFormat.json:
            typer.echo(df.write_json())
        else:
            with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
                typer.echo(str(df))

    @app.command("import-clinical")
    def import_clinical_cmd(
        file: Annotated[Path, typer.Argument(help="Clinical table: .csv, .xlsx or .parquet.")],
        store: Annotated[Path, typer.Option(help="The .duckdb store (created if missing).")],
        id_column: Annotated[Optional[str], typer.Option(
            help="Column of raw hospital IDs to pseudonymise.")] = None,
        key_file: Annotated[Optional[Path], typer.Option(
            help="Pseudonymisation key (else $IMMUNODIG_PSEUDONYM_KEY).")] = None,
        window: Annotated[float, typer.Option(
            "--resistance-window-months",
            help="Progression within this many months = primary resistance.")] = 6.0,
    ) -> None:
        """Validate and import the clinical table (nothing is written unless all of it is valid)."""
        from immunodig.clinical import ResistanceRule, import_clinical

        _report(import_clinical(file, store, id_column=id_column, key_file=key_file,
                                rule=ResistanceRule(window_months=window)))

    @app.command("import-genomic")
    def import_genomic_cmd(
        file: Annotated[Path, typer.Argument(
            help="Genomic table, long (patient_id, feature, value) or wide.")],
        store: Annotated[Path, typer.Option(help="The .duckdb store.")],
        id_column: Annotated[Optional[str], typer.Option(
            help="Column of raw hospital IDs to pseudonymise.")] = None,
        key_file: Annotated[Optional[Path], typer.Option(
            help="Pseudonymisation key (else $IMMUNODIG_PSEUDONYM_KEY).")] = None,
    ) -> None:
        """Validate and import genomic features (e.g. TMB, KRAS mutated)."""
        from immunodig.clinical import import_genomic

        _report(import_genomic(file, store, id_column=id_column, key_file=key_file))

    @app.command("import-multiplex")
    def import_multiplex_cmd(
        file: Annotated[Path, typer.Argument(
            help="Table patient_id, marker, compartment, density_per_mm2.")],
        store: Annotated[Path, typer.Option(help="The .duckdb store.")],
        id_column: Annotated[Optional[str], typer.Option(
            help="Column of raw hospital IDs to pseudonymise.")] = None,
        key_file: Annotated[Optional[Path], typer.Option(
            help="Pseudonymisation key (else $IMMUNODIG_PSEUDONYM_KEY).")] = None,
    ) -> None:
        """Validate and import multiplex / IHC cell densities."""
        from immunodig.clinical import import_multiplex

        _report(import_multiplex(file, store, id_column=id_column, key_file=key_file))

    @app.command("check-store")
    def check_store_cmd(store: Annotated[Path, typer.Option(help="The .duckdb store.")]) -> None:
        """Run the consistency checks of sql/checks/; exit 1 if any finds violations."""
        from immunodig.store import Store

        with Store.open(store, read_only=True) as opened:
            results = opened.run_checks()
        failing = {name: df for name, df in results.items() if df.height}
        for name, df in results.items():
            typer.echo(f"{'FAIL' if df.height else 'ok  '} {name}: {df.height} row(s)")
        if failing:
            raise typer.Exit(1)

    @app.command("export-dataset")
    def export_dataset_cmd(
        store: Annotated[Path, typer.Option(help="The .duckdb store.")],
        out: Annotated[Path, typer.Option(help="File to write: .parquet or .csv.")],
    ) -> None:
        """Export patient_dataset (one row per patient) with a data dictionary for R users."""
        from immunodig.store.export import export_patient_dataset

        table, dictionary, n = export_patient_dataset(store, out)
        typer.echo(f"{n} patients -> {table}; column units and definitions -> {dictionary}")
