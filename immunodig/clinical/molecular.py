"""Import of genomic features and multiplex / IHC densities (long tables per patient).

Both follow the clinical import: identifier columns refused, raw IDs pseudonymised with the
cohort key, every problem reported at once, one transaction. A new value replaces the stored one
for the same key (``patient_id, feature`` or ``patient_id, marker, compartment``); other keys
are kept, so several files (mutations, TMB, ...) can be imported one after the other.

Genomic input is long (``patient_id, feature, value``) or wide (``patient_id`` plus one column per
feature, empty cell = not measured). Feature names are normalised to lower snake case
(``KRAS mutated`` -> ``kras_mutated``); binary calls (wt/mut, neg/pos, no/yes, false/true,
absent/present) are stored as 0/1.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from immunodig.clinical.identifiers import normalise_column
from immunodig.clinical.importer import ImportResult, _records, load_table, open_store, record_import
from immunodig.clinical.schema import BINARY_WORDS, GENOMIC, MULTIPLEX, check_columns, validate
from immunodig.errors import ValidationError
from immunodig.provenance import file_sha256
from immunodig.store import Store


def _binary_to_number(series: pd.Series) -> pd.Series:
    return series.map(lambda v: v if pd.isna(v) else BINARY_WORDS.get(str(v).strip().lower(), v))


def _wide_to_long(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate a wide genomic table in place (row numbers stay meaningful) and melt it."""
    features = [c for c in frame.columns if c != "patient_id"]
    if not features:
        raise ValidationError(source, [{"row": None, "column": None, "check": "no feature columns"}])
    names = {c: normalise_column(c) for c in features}
    clashes = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if clashes:
        raise ValidationError(
            source, [{"row": None, "column": n, "check": "two columns normalise to this feature name"} for n in clashes]
        )
    problems: list[dict] = []
    long_rows = []
    for column in features:
        values = _binary_to_number(frame[column])
        parsed = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & parsed.isna()
        problems += [
            {
                "row": int(i) + 1,
                "column": column,
                "check": "must be a number or a binary call (wt/mut, neg/pos, no/yes)",
            }
            for i in frame.index[bad]
        ]
        keep = values.notna() & ~bad
        long_rows.append(
            pd.DataFrame(
                {
                    "patient_id": frame.loc[keep, "patient_id"],
                    "feature": names[column],
                    "value": values[keep],
                    "_row": frame.index[keep],
                }
            )
        )
    ids = frame["patient_id"]
    problems += [{"row": int(i) + 1, "column": "patient_id", "check": "missing value"} for i in frame.index[ids.isna()]]
    problems += [
        {"row": int(i) + 1, "column": "patient_id", "check": "duplicate value"}
        for i in frame.index[ids.notna() & ids.duplicated(keep=False)]
    ]
    long = pd.concat(long_rows, ignore_index=True)
    try:
        validate(long.drop(columns="_row").reset_index(drop=True), GENOMIC, source)
    except ValidationError as exc:
        # map long-table rows back to wide rows and columns
        back = {i + 1: (int(r) + 1, c) for i, (r, c) in enumerate(zip(long["_row"], long["feature"]))}
        for p in exc.problems:
            row, col = back.get(p["row"], (None, None))
            problems.append({"row": row, "column": col if p["column"] == "value" else p["column"], "check": p["check"]})
    if problems:
        raise ValidationError(source, sorted(problems, key=lambda p: (p["row"] or 0, str(p["column"]))))
    return long.drop(columns="_row").reset_index(drop=True)


def import_genomic(
    path: str | Path,
    store: Store | str | Path,
    *,
    id_column: str | None = None,
    key: bytes | str | None = None,
    key_file: str | Path | None = None,
) -> ImportResult:
    """Validate genomic features (long or wide) and store them in one transaction.

    Parameters
    ----------
    path : str or Path
        CSV, XLSX or Parquet.
    store : Store or path
        Open read-write Store, or its path.
    id_column, key, key_file : optional
        As in :func:`immunodig.clinical.import_clinical`.

    Raises
    ------
    ValidationError, IdentifierColumnError, PseudonymKeyError
    """
    path = Path(path)
    frame = load_table(path, id_column, key, key_file)
    if {"feature", "value"} <= set(frame.columns):
        check_columns(frame, GENOMIC, path.name)
        frame = frame.assign(
            feature=frame["feature"].map(lambda v: v if pd.isna(v) else normalise_column(v)),
            value=_binary_to_number(frame["value"]),
        )
        typed = validate(frame, GENOMIC, path.name)
    elif "patient_id" not in frame.columns:
        raise ValidationError(path.name, [{"row": None, "column": "patient_id", "check": "required column missing"}])
    else:
        typed = validate(_wide_to_long(frame, path.name), GENOMIC, path.name)
    return _write(path, store, "genomic", typed, ("patient_id", "feature"), ("value",), id_column is not None)


def import_multiplex(
    path: str | Path,
    store: Store | str | Path,
    *,
    id_column: str | None = None,
    key: bytes | str | None = None,
    key_file: str | Path | None = None,
) -> ImportResult:
    """Validate multiplex / IHC densities (``patient_id, marker, compartment, density_per_mm2``).

    Raises
    ------
    ValidationError, IdentifierColumnError, PseudonymKeyError
    """
    path = Path(path)
    frame = load_table(path, id_column, key, key_file)
    check_columns(frame, MULTIPLEX, path.name)
    typed = validate(frame, MULTIPLEX, path.name)
    return _write(
        path,
        store,
        "multiplex",
        typed,
        ("patient_id", "marker", "compartment"),
        ("density_per_mm2",),
        id_column is not None,
    )


def _write(
    path: Path,
    store,
    kind: str,
    typed: pd.DataFrame,
    keys: tuple[str, ...],
    values: tuple[str, ...],
    pseudonymised: bool,
) -> ImportResult:
    """Replace rows with the same keys, in one transaction, and record the import."""
    if typed.empty:
        raise ValidationError(
            path.name, [{"row": None, "column": None, "check": ("no values to import (every cell is empty)")}]
        )
    columns = ", ".join((*keys, *values))
    match = " and ".join(f"t.{k} = i.{k}" for k in keys)
    sha = file_sha256(path)
    incoming = _records(typed[[*keys, *values]])
    with open_store(store) as opened, opened.transaction() as con:
        iid, seen = record_import(con, kind, path, sha, len(typed), {"pseudonymised": pseudonymised})
        con.register("_incoming_rows", incoming)
        try:
            con.execute(
                "insert into patients (patient_id) select distinct patient_id from _incoming_rows "
                "on conflict do nothing"
            )
            con.execute(f"delete from {kind} t where exists (select 1 from _incoming_rows i where {match})")
            con.execute(
                f"insert into {kind} ({columns}, import_id) select {columns}, $i from _incoming_rows", {"i": iid}
            )
        finally:
            con.unregister("_incoming_rows")
    return ImportResult(kind, iid, len(typed), int(typed["patient_id"].nunique()), seen)
