"""Store commands: ``query``, ``import-clinical``, ``import-genomic``, ``import-multiplex``, ``check-store``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


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


def _report(result) -> None:
    again = " (same file imported before; rows rewritten identically)" if result.already_imported else ""
    typer.echo(f"{result.kind}: {result.rows} row(s) for {result.n_patients} patient(s) stored, "
               f"import {result.import_id}{again}")


def register(app: typer.Typer) -> None:
    """Add the store commands to ``app``."""

    @app.command("query")
    def query_cmd(
        sql: str = typer.Argument(..., help="One SQL query; refer to values as $name."),
        store: Path = typer.Option(..., "--store", help="The .duckdb store."),
        fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table, csv or json."),
        param: list[str] = typer.Option(None, "--param", help="Bound value NAME=VALUE for $NAME (repeatable)."),
        max_rows: int = typer.Option(100, "--max-rows", help="Rows shown by --format table (-1: all)."),
    ) -> None:
        """Run a read-only query (no writes, no access to other files)."""
        import polars as pl

        from immunodig.store import query

        df = query(store, sql, _params(param))
        if fmt is OutputFormat.csv:
            typer.echo(df.write_csv(), nl=False)
        elif fmt is OutputFormat.json:
            typer.echo(df.write_json())
        else:
            with pl.Config(tbl_rows=max_rows, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
                typer.echo(str(df))

    @app.command("import-clinical")
    def import_clinical_cmd(
        file: Path = typer.Argument(..., help="Clinical table: .csv, .xlsx or .parquet."),
        store: Path = typer.Option(..., "--store", help="The .duckdb store (created if missing)."),
        id_column: str = typer.Option(None, "--id-column", help="Column of raw hospital IDs to pseudonymise."),
        key_file: Path = typer.Option(None, "--key-file", help="Pseudonymisation key (else $IMMUNODIG_PSEUDONYM_KEY)."),
        window: float = typer.Option(6.0, "--resistance-window-months", help="Progression within this many months = primary resistance."),
    ) -> None:
        """Validate and import the clinical table (nothing is written unless all of it is valid)."""
        from immunodig.clinical import ResistanceRule, import_clinical

        _report(import_clinical(file, store, id_column=id_column, key_file=key_file,
                                rule=ResistanceRule(window_months=window)))

    @app.command("import-genomic")
    def import_genomic_cmd(
        file: Path = typer.Argument(..., help="Genomic table, long (patient_id, feature, value) or wide."),
        store: Path = typer.Option(..., "--store", help="The .duckdb store."),
        id_column: str = typer.Option(None, "--id-column", help="Column of raw hospital IDs to pseudonymise."),
        key_file: Path = typer.Option(None, "--key-file", help="Pseudonymisation key (else $IMMUNODIG_PSEUDONYM_KEY)."),
    ) -> None:
        """Validate and import genomic features (e.g. TMB, KRAS mutated)."""
        from immunodig.clinical import import_genomic

        _report(import_genomic(file, store, id_column=id_column, key_file=key_file))

    @app.command("import-multiplex")
    def import_multiplex_cmd(
        file: Path = typer.Argument(..., help="Table patient_id, marker, compartment, density_per_mm2."),
        store: Path = typer.Option(..., "--store", help="The .duckdb store."),
        id_column: str = typer.Option(None, "--id-column", help="Column of raw hospital IDs to pseudonymise."),
        key_file: Path = typer.Option(None, "--key-file", help="Pseudonymisation key (else $IMMUNODIG_PSEUDONYM_KEY)."),
    ) -> None:
        """Validate and import multiplex / IHC cell densities."""
        from immunodig.clinical import import_multiplex

        _report(import_multiplex(file, store, id_column=id_column, key_file=key_file))

    @app.command("check-store")
    def check_store_cmd(store: Path = typer.Option(..., "--store", help="The .duckdb store.")) -> None:
        """Run the consistency checks of sql/checks/; exit 1 if any finds violations."""
        from immunodig.store import Store

        with Store.open(store, read_only=True) as opened:
            results = opened.run_checks()
        failing = {name: df for name, df in results.items() if df.height}
        for name, df in results.items():
            typer.echo(f"{'FAIL' if df.height else 'ok  '} {name}: {df.height} row(s)")
        if failing:
            raise typer.Exit(1)
