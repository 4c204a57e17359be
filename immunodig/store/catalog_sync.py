"""Feature catalogue in the store, and the views whose columns follow it.

``slide_features_wide`` and ``patient_dataset`` have one column per catalogued feature. DuckDB
cannot pivot on a dynamic list inside a view, so both are regenerated from ``feature_catalog``
whenever it changes (and on every read-write open): their files under ``sql/views/`` carry a
``/* feature_columns */`` marker replaced by one filtered aggregate per feature name. Feature names
enter that SQL only after matching :data:`FEATURE_NAME` (an allow-list pattern).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from immunodig.errors import StoreError
from immunodig.store.migrations import sql_dir

#: Allowed feature names: letters, digits and underscores, starting with a letter.
FEATURE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")

_MARKER = "/* feature_columns */"
_AGGREGATIONS = ("area_weighted_mean", "sum", "max", "mean")
#: Columns of patient_dataset that a feature name must not shadow.
_RESERVED = {
    "patient_id", "slide_id", "stain", "run_id", "age_years", "sex", "primary_side", "ras_status",
    "braf_status", "lynch", "ecog", "ici_regimen", "treatment_line", "best_response",
    "pfs_months", "pfs_event", "os_months", "os_event", "primary_resistance", "n_he_slides",
}


def _spec_row(spec: Any) -> dict[str, Any]:
    """Return the catalogue row of a FeatureSpec (or of a dict with the same keys), validated."""
    row = dict(spec.as_row()) if hasattr(spec, "as_row") else dict(spec)
    name = row.get("name")
    if not isinstance(name, str) or not FEATURE_NAME.match(name):
        raise StoreError(f"feature name {name!r}: use letters, digits and '_' (start with a letter)")
    if name.lower() in _RESERVED:
        raise StoreError(f"feature name {name!r} clashes with a column of patient_dataset; rename it")
    if row.get("patient_aggregation", "mean") not in _AGGREGATIONS:
        raise StoreError(f"feature {name}: patient_aggregation must be one of {_AGGREGATIONS}")
    weight = row.get("weight")
    if row.get("patient_aggregation") == "area_weighted_mean" and not (
        isinstance(weight, str) and FEATURE_NAME.match(weight)
    ):
        raise StoreError(f"feature {name}: area_weighted_mean needs a weight feature name")
    inputs = row.get("inputs")
    if isinstance(inputs, (list, tuple)):
        row["inputs"] = ",".join(inputs)
    return row


def sync_feature_catalog(con, specs: Iterable[Any]) -> int:
    """Upsert feature declarations into ``feature_catalog`` and regenerate the wide views.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Read-write connection, not inside a transaction.
    specs : iterable of FeatureSpec or dict
        Typically ``immunodig.features.catalog.catalog().values()``. Rows are keyed by
        ``(name, version)``; declarations of older versions already stored are kept.

    Returns
    -------
    int
        Number of declarations written.
    """
    rows = [_spec_row(spec) for spec in specs]
    con.execute("begin transaction")
    try:
        for row in rows:
            con.execute(
                """
                insert into feature_catalog (name, version, unit, description, stage, inputs,
                                             patient_aggregation, weight, reference)
                values ($name, $version, $unit, $description, $stage, $inputs,
                        $patient_aggregation, $weight, $reference)
                on conflict (name, version) do update set
                    unit = excluded.unit,
                    description = excluded.description,
                    stage = excluded.stage,
                    inputs = excluded.inputs,
                    patient_aggregation = excluded.patient_aggregation,
                    weight = excluded.weight,
                    reference = excluded.reference,
                    synced_at = now()
                """,
                {
                    "name": row["name"],
                    "version": int(row.get("version", 1)),
                    "unit": row.get("unit"),
                    "description": row.get("description"),
                    "stage": row.get("stage"),
                    "inputs": row.get("inputs"),
                    "patient_aggregation": row.get("patient_aggregation", "mean"),
                    "weight": row.get("weight"),
                    "reference": row.get("reference"),
                },
            )
        refresh_views(con)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return len(rows)


def catalogued_names(con) -> list[str]:
    """Return the distinct feature names of ``feature_catalog`` that are safe as column names."""
    names = [r[0] for r in con.execute("select distinct name from feature_catalog order by name").fetchall()]
    return [n for n in names if FEATURE_NAME.match(n) and n.lower() not in _RESERVED]


def feature_columns_sql(names: Iterable[str]) -> str:
    """Return the SQL replacing the feature-columns marker: one filtered ``max`` per name."""
    parts = []
    for name in names:
        if not FEATURE_NAME.match(name):
            raise StoreError(f"feature name {name!r} is not a safe column name")
        parts.append(f",\n    max(value) filter (where feature = '{name}') as \"{name}\"")
    return "".join(parts)


def view_files(views_dir: Path | None = None) -> list[Path]:
    """Return the view definitions in creation order (their ``NN_`` prefix)."""
    return sorted((views_dir or sql_dir() / "views").glob("*.sql"))


def refresh_views(con, views_dir: Path | None = None) -> None:
    """(Re)create every view of ``sql/views``, expanding feature-column markers from the catalogue."""
    columns = feature_columns_sql(catalogued_names(con))
    for path in view_files(views_dir):
        text = path.read_text().replace(_MARKER, columns)
        try:
            con.execute(text)
        except Exception as exc:
            raise StoreError(f"view {path.name} could not be created: {exc}") from exc
    comment_feature_columns(con)


#: Views with one column per catalogued feature, whose columns carry the catalogue's comment.
COMMENTED_VIEWS: tuple[str, ...] = ("slide_features_wide", "patient_dataset")


def comment_feature_columns(con) -> None:
    """Put each feature's unit and definition on its column of the wide views (DuckDB column
    comments: shown by DBeaver, ``duckdb_columns()`` and carried into exports for R users)."""
    rows = con.execute("""
        select name, unit, description from feature_catalog
        qualify row_number() over (partition by name order by version desc) = 1""").fetchall()
    present = {(t, c) for t, c in con.execute(
        "select table_name, column_name from duckdb_columns() where table_name in "
        f"({', '.join(repr(v) for v in COMMENTED_VIEWS)})").fetchall()}
    for name, unit, description in rows:
        for view in COMMENTED_VIEWS:
            if (view, name) in present and FEATURE_NAME.match(name):
                # COMMENT takes no bound parameter: a quoted literal (quotes doubled)
                text = f"[{unit}] {description}".replace("'", "''")
                con.execute(f"comment on column {view}.\"{name}\" is '{text}'")
