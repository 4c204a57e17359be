"""pandera schemas of the imported tables and the translation of their failures.

Validation runs in two lazy pandera passes so that every problem of a file is reported at once:
first every numeric column is checked to parse as a number, then the parsed table is checked for
ranges, vocabularies, uniqueness and internal consistency. Failures become
:class:`~immunodig.errors.ValidationError` problems ``{row, column, check}`` with 1-based data row
numbers (the header is not counted) and never the failing value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from immunodig.clinical.always_validate import always_validate
from immunodig.errors import ValidationError
from immunodig.vocab import CLINICAL_CATEGORIES

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pandera.pandas as pa
    from pandera import Check

PATIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
FEATURE_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
MARKER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9+\-_/.]{0,31}$"

#: Text that spreadsheets use for binary genomic calls, read as 0 / 1.
BINARY_WORDS: dict[str, str] = {
    "wt": "0", "wild-type": "0", "wildtype": "0", "wild_type": "0", "mut": "1", "mutated": "1",
    "mutant": "1", "neg": "0", "negative": "0", "pos": "1", "positive": "1", "no": "0",
    "yes": "1", "false": "0", "true": "1", "absent": "0", "present": "1",
}

#: Compartments of multiplex / IHC densities.
COMPARTMENTS: tuple[str, ...] = ("tumour", "stroma", "invasive_margin", "tissue")

_BUILTIN_CHECKS = {
    "not_nullable": "missing value",
    "field_uniqueness": "duplicate value",
    "multiple_fields_uniqueness": "duplicate row for the same key",
    "column_in_dataframe": "required column missing",
}


@dataclass(frozen=True)
class TableSchema:
    """Columns, parsing rules and pandera schema of one importable table.

    Parameters
    ----------
    name : str
        Kind of table (``clinical``, ``genomic``, ``multiplex``).
    columns : tuple of str
        Required columns, in store order.
    numeric : tuple of str
        Columns parsed as numbers before the value checks.
    vocab : dict
        Column -> allowed words; matching is case-insensitive and canonicalises spelling.
    schema : pandera.DataFrameSchema
        Checks on the parsed table.
    row_checks : dict
        Error text of each table-level (row-wise) check -> the columns it concerns.
    """

    name: str
    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    vocab: Mapping[str, tuple[str, ...]]
    schema: pa.DataFrameSchema
    row_checks: Mapping[str, str] = field(default_factory=dict)


def _row_check(fn: Callable[[pd.DataFrame], pd.Series], error: str) -> Check:
    return Check(fn, error=error, name=error)


def _finite_nonnegative(error: str) -> Check:
    return Check(lambda s: np.isfinite(s) & (s >= 0), error=error)


def _clinical() -> TableSchema:
    vocab = CLINICAL_CATEGORIES
    binary = Check.isin([0, 1], error="must be 0 or 1")
    time = _finite_nonnegative("must be a number of months >= 0")
    row_checks = {
        "pfs_months exceeds os_months": "pfs_months, os_months",
        "os_event = 1 (death) requires pfs_event = 1": "os_event, pfs_event",
        "best_response PD requires pfs_event = 1": "best_response, pfs_event",
        "pfs_months and pfs_event must both be given or both be missing": "pfs_months, pfs_event",
        "os_months and os_event must both be given or both be missing": "os_months, os_event",
    }
    fns = [
        lambda df: ~(df["pfs_months"] > df["os_months"]),
        lambda df: ~((df["os_event"] == 1) & (df["pfs_event"] == 0)),
        lambda df: ~((df["best_response"] == "PD") & (df["pfs_event"] == 0)),
        lambda df: df["pfs_months"].isna() == df["pfs_event"].isna(),
        lambda df: df["os_months"].isna() == df["os_event"].isna(),
    ]
    schema = pa.DataFrameSchema(
        {
            "patient_id": pa.Column(str, Check.str_matches(PATIENT_ID_PATTERN, error=(
                "must be a pseudonym of letters, digits, '_', '-' or '.' (at most 64); pass raw "
                "hospital IDs with --id-column")), unique=True),
            "age_years": pa.Column(float, Check.in_range(18, 100, error="must lie in 18-100 years"), nullable=True),
            **{c: pa.Column(str, Check.isin(list(w), error=f"must be one of {'|'.join(w)}"), nullable=True)
               for c, w in vocab.items()},
            "lynch": pa.Column(float, binary, nullable=True),
            "ecog": pa.Column(float, Check.isin([0, 1, 2, 3, 4], error="must be an integer 0-4"), nullable=True),
            "treatment_line": pa.Column(float, Check(lambda s: (s >= 1) & (s == np.round(s)),
                                                     error="must be an integer >= 1"), nullable=True),
            "pfs_months": pa.Column(float, time, nullable=True),
            "pfs_event": pa.Column(float, binary, nullable=True),
            "os_months": pa.Column(float, time, nullable=True),
            "os_event": pa.Column(float, binary, nullable=True),
        },
        checks=[_row_check(fn, error) for fn, error in zip(fns, row_checks)],
        strict=False,
    )
    columns = ("patient_id", "age_years", "sex", "primary_side", "ras_status", "braf_status",
               "lynch", "ecog", "ici_regimen", "treatment_line", "best_response", "pfs_months",
               "pfs_event", "os_months", "os_event")
    numeric = ("age_years", "lynch", "ecog", "treatment_line", "pfs_months", "pfs_event",
               "os_months", "os_event")
    return TableSchema("clinical", columns, numeric, vocab, schema, row_checks)


def _genomic() -> TableSchema:
    schema = pa.DataFrameSchema(
        {
            "patient_id": pa.Column(str, Check.str_matches(PATIENT_ID_PATTERN, error="must be a pseudonym")),
            "feature": pa.Column(str, Check.str_matches(FEATURE_PATTERN, error=(
                "must be a lower-case name of letters, digits and '_'"))),
            "value": pa.Column(float, Check(np.isfinite, error="must be finite")),
        },
        unique=["patient_id", "feature"],
        strict=False,
    )
    return TableSchema("genomic", ("patient_id", "feature", "value"), ("value",), {}, schema)


def _multiplex() -> TableSchema:
    schema = pa.DataFrameSchema(
        {
            "patient_id": pa.Column(str, Check.str_matches(PATIENT_ID_PATTERN, error="must be a pseudonym")),
            "marker": pa.Column(str, Check.str_matches(MARKER_PATTERN, error=(
                "must be a marker name such as CD8, FOXP3 or PD-L1"))),
            "compartment": pa.Column(str, Check.isin(list(COMPARTMENTS), error=(
                f"must be one of {'|'.join(COMPARTMENTS)}"))),
            "density_per_mm2": pa.Column(float, _finite_nonnegative("must be a density >= 0 per mm2")),
        },
        unique=["patient_id", "marker", "compartment"],
        strict=False,
    )
    return TableSchema("multiplex", ("patient_id", "marker", "compartment", "density_per_mm2"),
                       ("density_per_mm2",), {"compartment": COMPARTMENTS}, schema)


CLINICAL = _clinical()
GENOMIC = _genomic()
MULTIPLEX = _multiplex()


def _parses(series: pd.Series) -> pd.Series:
    return series.isna() | pd.to_numeric(series, errors="coerce").notna()


def _canonical(series: pd.Series, words: Iterable[str]) -> pd.Series:
    lookup = {w.lower(): w for w in words}
    return series.map(lambda v: v if pd.isna(v) else lookup.get(str(v).lower(), v))


def _problems(schema: pa.DataFrameSchema, frame: pd.DataFrame, row_checks: Mapping[str, str]) -> list[dict]:
    try:
        with always_validate():
            schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return []
    problems = []
    for column, check, index in zip(cases["column"], cases["check"], cases["index"]):
        check = str(check)
        text = _BUILTIN_CHECKS.get(check, "wrong type" if check.startswith("dtype(") else check)
        if check in row_checks:
            column = row_checks[check]
        elif check == "multiple_fields_uniqueness":
            column = ", ".join(schema.unique)
        if check == "column_in_dataframe":
            index = None
        row = None if index is None or pd.isna(index) else int(index) + 1
        problems.append({"row": row, "column": None if column is None else str(column), "check": text})
    return problems


def check_columns(frame: pd.DataFrame, table: TableSchema, source: str, allowed_extra: Iterable[str] = ()) -> None:
    """Raise ValidationError for missing required or unknown columns (table-level problems)."""
    extra = set(allowed_extra)
    problems = [{"row": None, "column": c, "check": "required column missing"}
                for c in table.columns if c not in frame.columns]
    problems += [{"row": None, "column": c, "check": (
                     f"unknown column; a {table.name} table has exactly: {', '.join(table.columns)}")}
                 for c in frame.columns if c not in table.columns and c not in extra]
    if problems:
        raise ValidationError(source, problems)


def validate(frame: pd.DataFrame, table: TableSchema, source: str) -> pd.DataFrame:
    """Parse and validate a text table; return it typed, or raise with every problem found.

    Parameters
    ----------
    frame : pandas.DataFrame
        Text cells from :func:`immunodig.clinical.tables.read_table` (0-based RangeIndex).
    table : TableSchema
        :data:`CLINICAL`, :data:`GENOMIC` or :data:`MULTIPLEX`.
    source : str
        File name for the message.

    Raises
    ------
    ValidationError
        Problems with 1-based row numbers and column names, no cell values.
    """
    numeric = [c for c in table.numeric if c in frame.columns]
    parse_schema = pa.DataFrameSchema(
        {c: pa.Column(object, Check(_parses, error="must be a number"), nullable=True) for c in numeric}
    )
    problems = _problems(parse_schema, frame, {})
    typed = frame.copy()
    for column in numeric:
        typed[column] = pd.to_numeric(typed[column], errors="coerce").astype(float)
    for column, words in table.vocab.items():
        if column in typed.columns:
            typed[column] = _canonical(typed[column], words)
    seen = {(p["row"], p["column"]) for p in problems}
    problems += [p for p in _problems(table.schema, typed, table.row_checks)
                 if (p["row"], p["column"]) not in seen]
    if problems:
        unique = {(p["row"], p["column"], p["check"]): p for p in problems}
        ordered = sorted(unique.values(), key=lambda p: (p["row"] or 0, p["column"] or "", p["check"]))
        raise ValidationError(source, ordered)
    return typed
