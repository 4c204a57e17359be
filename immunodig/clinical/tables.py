"""Reading CSV, XLSX and Parquet tables as text cells, ready for validation.

Every cell becomes a stripped string or missing (``NA``), whatever the format stored, so the
same checks (and the same error messages) apply to all formats. Column names are stripped and
lower-cased.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from immunodig.errors import ValidationError

#: Cell texts read as missing.
MISSING = ("", "na", "n/a", "nan", "null", "none", "missing", ".")

SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".parquet")


def _cell_text(value: object) -> object:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return pd.NA
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return pd.NA if text.lower() in MISSING else text


def _separator(path: Path, suffix: str) -> str:
    """Tab for .tsv/.txt; for .csv a semicolon when the header has semicolons and no comma."""
    if suffix != ".csv":
        return "\t"
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline()
    return ";" if ";" in header and "," not in header else ","


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table as text cells with a 0-based RangeIndex (data row ``i`` is row ``i + 1``).

    Parameters
    ----------
    path : str or Path
        ``.csv`` (comma or semicolon), ``.tsv``/``.txt`` (tab), ``.xlsx`` (first sheet) or
        ``.parquet``.

    Raises
    ------
    ValidationError
        The file is missing, of another format, unreadable, empty, has only a header (no data
        rows), or has duplicate columns.
    """
    path = Path(path)
    source = path.name

    def fail(check: str) -> ValidationError:
        return ValidationError(source, [{"row": None, "column": None, "check": check}])

    if not path.is_file():
        raise fail(f"file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            frame = pd.read_csv(path, dtype=str, sep=_separator(path, suffix), keep_default_na=False,
                                skipinitialspace=True, encoding="utf-8-sig")
        elif suffix == ".xlsx":
            frame = pd.read_excel(path, dtype=object, engine="openpyxl", keep_default_na=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise fail(f"unsupported file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    except ValidationError:
        raise
    except UnicodeDecodeError as exc:
        raise fail(f"not UTF-8 text (byte {exc.start}); save the file as UTF-8 CSV") from exc
    except Exception as exc:  # the readers raise many types; none is more useful here
        raise fail(f"cannot be read as {suffix[1:]}: {type(exc).__name__}") from exc
    if frame.shape[1] == 0:
        raise fail("no columns")
    columns = [str(c).strip().lower() for c in frame.columns]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise ValidationError(source, [{"row": None, "column": c, "check": "duplicate column"} for c in duplicated])
    frame.columns = columns
    if frame.shape[0] == 0:
        raise fail("no data rows (only a header): nothing to import; export the table with its rows")
    frame = frame.reset_index(drop=True)
    return frame.apply(lambda col: col.map(_cell_text)).astype(object)
