"""Import of the clinical table: read, refuse identifiers, pseudonymise, validate, store.

The whole file is validated first; only a fully valid file is written, in one transaction that
replaces the clinical, treatment and outcome rows of the patients it contains (other patients are
kept). Re-importing the same file gives the same rows. Each import is recorded in ``imports``
with the file's SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from immunodig.clinical.identifiers import normalise_column, refuse_identifier_columns
from immunodig.clinical.pseudonym import load_key, pseudonymise
from immunodig.clinical.resistance import ResistanceRule
from immunodig.clinical.schema import CLINICAL, check_columns, validate
from immunodig.clinical.tables import read_table
from immunodig.errors import ValidationError
from immunodig.provenance import file_sha256
from immunodig.store import Store


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote.

    Attributes
    ----------
    kind : str
        ``clinical``, ``genomic`` or ``multiplex``.
    import_id : str
        Key of the ``imports`` row (file hash and options).
    rows : int
        Rows written to the main table.
    n_patients : int
        Distinct patients in the file.
    already_imported : bool
        The same file with the same options had been imported before (rows were rewritten
        identically).
    """

    kind: str
    import_id: str
    rows: int
    n_patients: int
    already_imported: bool


@contextmanager
def open_store(store: Store | str | Path) -> Iterator[Store]:
    """Yield ``store`` if it is an open Store, else open the path read-write for the block."""
    if isinstance(store, Store):
        yield store
    else:
        with Store.open(store) as opened:
            yield opened


def load_table(
    path: str | Path,
    id_column: str | None = None,
    key: bytes | str | None = None,
    key_file: str | Path | None = None,
) -> pd.DataFrame:
    """Read a table, refuse identifier columns and (with ``id_column``) pseudonymise raw IDs.

    Returns the text table with a ``patient_id`` column; raw identifiers are dropped.

    Raises
    ------
    IdentifierColumnError, ValidationError, PseudonymKeyError
    """
    source = Path(path).name
    frame = read_table(path)
    id_col = normalise_column(id_column) if id_column else None
    if id_col is not None and id_col not in frame.columns:
        # normalised match, e.g. --id-column "Hospital ID" for a column "hospital id"
        matches = [c for c in frame.columns if normalise_column(c) == id_col]
        id_col = matches[0] if matches else id_col
    refuse_identifier_columns(frame.columns, source, exempt=id_col)
    if id_col is None:
        return frame
    if id_col not in frame.columns:
        raise ValidationError(
            source, [{"row": None, "column": id_column, "check": "--id-column not found in the file"}]
        )
    if id_col != "patient_id" and "patient_id" in frame.columns:
        raise ValidationError(
            source,
            [
                {
                    "row": None,
                    "column": "patient_id",
                    "check": ("both patient_id and --id-column given; keep only the raw ID column"),
                }
            ],
        )
    key_bytes = load_key(key_file) if key is None else key
    raw = frame[id_col]
    present = raw.notna()
    ids = pd.Series(pd.NA, index=frame.index, dtype=object)
    ids[present] = pseudonymise(raw[present].tolist(), key_bytes)
    frame = frame.drop(columns=[id_col])
    frame.insert(0, "patient_id", ids)
    return frame


def import_id(kind: str, sha256: str, options: dict[str, Any]) -> str:
    """Key of an import: ``i_`` + 16 hex of the kind, file hash and options."""
    payload = json.dumps({"kind": kind, "sha256": sha256, "options": options}, sort_keys=True)
    return "i_" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def _records(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with None for missing, so DuckDB reads NULL."""
    return frame.astype(object).where(frame.notna(), None)


def record_import(con, kind: str, path: Path, sha256: str, rows: int, options: dict[str, Any]) -> tuple[str, bool]:
    """Upsert the ``imports`` row (caller holds the transaction); return (import_id, seen before)."""
    iid = import_id(kind, sha256, options)
    seen = bool(con.execute("select count(*) from imports where import_id = $i", {"i": iid}).fetchall()[0][0])
    con.execute(
        """
        insert into imports (import_id, kind, file_name, sha256, rows, options_json)
        values ($i, $kind, $name, $sha, $rows, $options)
        on conflict (import_id) do update set rows = excluded.rows, imported_at = now()
        """,
        {
            "i": iid,
            "kind": kind,
            "name": path.name,
            "sha": sha256,
            "rows": rows,
            "options": json.dumps(options, sort_keys=True),
        },
    )
    return iid, seen


def import_clinical(
    path: str | Path,
    store: Store | str | Path,
    *,
    id_column: str | None = None,
    key: bytes | str | None = None,
    key_file: str | Path | None = None,
    rule: ResistanceRule | None = None,
) -> ImportResult:
    """Validate a clinical table and store it in one transaction.

    Parameters
    ----------
    path : str or Path
        CSV, XLSX or Parquet with the columns of docs/clinical.md.
    store : Store or path
        Open read-write Store, or the path of one (opened for the call).
    id_column : str, optional
        Column of raw hospital IDs to replace by keyed pseudonyms (then no ``patient_id``).
    key, key_file : optional
        Pseudonymisation key, or the file holding it; default ``$IMMUNODIG_PSEUDONYM_KEY``.
    rule : ResistanceRule, optional
        Derivation of ``primary_resistance``; default 6-month window.

    Returns
    -------
    ImportResult

    Raises
    ------
    ValidationError
        Every problem of the file, by row and column; nothing is written.
    IdentifierColumnError
        Columns that look like direct identifiers.
    PseudonymKeyError
        ``id_column`` without a key.
    """
    path = Path(path)
    rule = rule or ResistanceRule()
    frame = load_table(path, id_column, key, key_file)
    check_columns(frame, CLINICAL, path.name)
    typed = validate(frame, CLINICAL, path.name)
    typed["primary_resistance"] = rule.derive(typed["best_response"], typed["pfs_months"], typed["pfs_event"])
    typed["resistance_rule"] = rule.describe()
    options = {"resistance_rule": rule.describe(), "pseudonymised": id_column is not None}
    sha = file_sha256(path)
    incoming = _records(typed)
    with open_store(store) as opened, opened.transaction() as con:
        iid, seen = record_import(con, "clinical", path, sha, len(typed), options)
        con.register("_incoming_clinical", incoming)
        try:
            con.execute(
                "insert into patients (patient_id) select patient_id from _incoming_clinical on conflict do nothing"
            )
            for table in ("clinical", "treatments", "outcomes"):
                con.execute(f"delete from {table} where patient_id in (select patient_id from _incoming_clinical)")
            con.execute(
                """
                insert into clinical (patient_id, age_years, sex, primary_side, ras_status,
                                      braf_status, lynch, ecog, import_id)
                select patient_id, age_years::double, sex, primary_side, ras_status, braf_status,
                       lynch::smallint, ecog::smallint, $i
                from _incoming_clinical
                """,
                {"i": iid},
            )
            con.execute(
                """
                insert into treatments (patient_id, ici_regimen, treatment_line, import_id)
                select patient_id, ici_regimen, treatment_line::smallint, $i from _incoming_clinical
                """,
                {"i": iid},
            )
            con.execute(
                """
                insert into outcomes (patient_id, best_response, pfs_months, pfs_event, os_months,
                                      os_event, primary_resistance, resistance_rule, import_id)
                select patient_id, best_response, pfs_months::double, pfs_event::smallint,
                       os_months::double, os_event::smallint, primary_resistance::smallint,
                       resistance_rule, $i
                from _incoming_clinical
                """,
                {"i": iid},
            )
        finally:
            con.unregister("_incoming_clinical")
    return ImportResult("clinical", iid, len(typed), int(typed["patient_id"].nunique()), seen)
