"""``patient_dataset`` exported for R and other tools: one file plus a data dictionary.

The table is the view as stored (one row per patient). Beside it, ``<out>.columns.csv`` lists
every column with its unit and definition (the feature catalogue's, or the clinical schema's
description for the clinical and outcome columns), so ``read.csv`` / ``arrow::read_parquet`` users
get the meaning without the store. Parquet files also carry each description in the column's
field metadata (``description``).
"""

from __future__ import annotations

from pathlib import Path

from immunodig.errors import ConfigError
from immunodig.io import atomic_path
from immunodig.store.query import query

#: Supported output formats, by file suffix.
FORMATS: tuple[str, ...] = (".parquet", ".csv")

_COMMENTS_SQL = """
select column_name as "column", coalesce(comment, '') as comment
from duckdb_columns() where table_name = 'patient_dataset' order by column_index
"""


def export_patient_dataset(store_path: str | Path, out: str | Path) -> tuple[Path, Path, int]:
    """Write ``patient_dataset`` to ``out`` (.parquet or .csv) and its data dictionary.

    Returns
    -------
    (table path, dictionary path, number of patients)
    """
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ConfigError(f"{out.name}: export to {' or '.join(FORMATS)}")
    table = query(store_path, "select * from patient_dataset order by patient_id")
    columns = query(store_path, _COMMENTS_SQL)
    described = dict(zip(columns["column"], columns["comment"]))
    dictionary = columns.select(
        "column",
        unit=columns["comment"].str.extract(r"^\[([^\]]*)\]", 1).fill_null(""),
        description=columns["comment"].str.replace(r"^\[[^\]]*\] ", ""))
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".csv":
            table.write_csv(tmp)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            arrow = table.to_arrow()
            fields = [f.with_metadata({"description": described.get(f.name, "")})
                      for f in arrow.schema]
            pq.write_table(arrow.cast(pa.schema(fields)), tmp, compression="zstd")
    dict_path = out.with_name(out.stem + ".columns.csv")
    with atomic_path(dict_path) as tmp:
        dictionary.write_csv(tmp)
    return out, dict_path, table.height
