"""The patient-level model matrix, read from the store.

One row per patient of the ``outcomes`` table, read from the ``patient_dataset`` view (the one
definition of the patient level; ``sql/views/04_patient_dataset.sql``). Columns: ``patient_id``, the outcome
(``primary_resistance`` or ``pfs_months`` + ``pfs_event``; nulls kept, they are dropped and
counted by the evaluation), then the features of the requested sets:

- ``clinical``: ``age_years, sex, primary_side, ras_status, braf_status, lynch, ecog,
  ici_regimen, treatment_line`` (baseline only: ``best_response`` is an outcome and is never a
  covariate);
- ``morphology``: every feature of the ``patient_dataset`` view whose catalogue ``stage`` is one of
  :data:`immunodig.vocab.MORPHOLOGY_STAGES`, aggregated over the patient's H&E slides as the view
  documents (area-weighted mean by default; see ``docs/features.md``);
- ``genomic``: one column ``gen_<feature>`` per feature of the ``genomic`` table;
- ``multiplex``: one column ``mx_<marker>_<compartment>_per_mm2`` per density of the
  ``multiplex`` table, plus the slide features of catalogue stage ``ihc`` (computed on the
  patient's IHC slides);
- ``combined``: clinical + morphology; ``all``: every set;
- ``prespecified``: the small morphology set of :data:`PRESPECIFIED_FEATURES`, fixed before any
  outcome is seen (the primary analysis of a small cohort: four features, not ~100).

Missing values stay missing (null): imputation is fitted inside cross-validation.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from immunodig.errors import ConfigError, ValidationError
from immunodig.vocab import CLINICAL_CATEGORIES, IHC_STAGES, MORPHOLOGY_STAGES

CLINICAL_COLUMNS: tuple[str, ...] = (
    "age_years", "sex", "primary_side", "ras_status", "braf_status", "lynch", "ecog",
    "ici_regimen", "treatment_line",
)
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "clinical": ("clinical",),
    "morphology": ("morphology",),
    "genomic": ("genomic",),
    "multiplex": ("multiplex",),
    "combined": ("clinical", "morphology"),
    "all": ("clinical", "morphology", "genomic", "multiplex"),
}
#: The pre-specified feature set (``prespecified``): intra-epithelial and invasive-margin TIL
#: density (Immunoscore compartments), tumour-stroma ratio and TLS density, the morphology
#: established for ICI response in dMMR/MSI colorectal cancer; see docs/modelling.md.
PRESPECIFIED_FEATURES: tuple[str, ...] = (
    "til_density_intraepithelial_per_mm2", "til_density_margin_per_mm2", "tsr_stroma_fraction",
    "tls_density_tumour_per_mm2",
)
#: Named lists of columns, resolved like explicit column names.
NAMED_COLUMN_SETS: dict[str, tuple[str, ...]] = {"prespecified": PRESPECIFIED_FEATURES}
#: Catalogue stages whose patient-level features each feature set takes.
STAGES_OF_PART: dict[str, tuple[str, ...]] = {"morphology": MORPHOLOGY_STAGES,
                                              "multiplex": IHC_STAGES}
OUTCOMES: dict[str, tuple[str, ...]] = {
    "resistance": ("primary_resistance",),
    "pfs": ("pfs_months", "pfs_event"),
}
_SAFE = re.compile(r"[^A-Za-z0-9_]+")

#: The patient rows: the ``patient_dataset`` view (the one definition of the patient level)
#: restricted to patients with an ``outcomes`` row.
_DATASET_SQL = """
select * from patient_dataset
where patient_id in (select patient_id from outcomes)
order by patient_id
"""
_CATALOG_SQL = """
select name, stage from feature_catalog
qualify row_number() over (partition by name order by version desc) = 1
"""
_GENOMIC_SQL = "select patient_id, feature, value from genomic"
_MULTIPLEX_SQL = "select patient_id, marker, compartment, density_per_mm2 from multiplex"


def _safe(name: str) -> str:
    return _SAFE.sub("_", name).strip("_").lower()


def _wide(long: pl.DataFrame, prefix: str = "", suffix: str = "") -> pl.DataFrame:
    if long.is_empty():
        return pl.DataFrame({"patient_id": []}, schema={"patient_id": pl.Utf8})
    long = long.with_columns(
        pl.col("feature").map_elements(lambda f: f"{prefix}{_safe(f)}{suffix}",
                                       return_dtype=pl.Utf8),
        pl.col("value").cast(pl.Float64))
    return long.pivot(on="feature", index="patient_id", values="value",
                      aggregate_function="mean").sort("patient_id")


def _stage_columns(dataset: pl.DataFrame, catalog: pl.DataFrame,
                   stages: tuple[str, ...]) -> pl.DataFrame:
    """The catalogued features of ``stages`` among the columns of ``patient_dataset``."""
    names = [n for n, stage in catalog.iter_rows() if stage in stages and n in dataset.columns]
    return dataset.select("patient_id",
                          *(pl.col(n).cast(pl.Float64).alias(_safe(n)) for n in sorted(names)))


def _part(store_path: str | Path, part: str, dataset: pl.DataFrame,
          catalog: pl.DataFrame) -> pl.DataFrame:
    from immunodig.store import query

    if part == "morphology":
        return _stage_columns(dataset, catalog, STAGES_OF_PART[part])
    if part == "genomic":
        return _wide(query(store_path, _GENOMIC_SQL), prefix="gen_")
    if part == "multiplex":
        mx = query(store_path, _MULTIPLEX_SQL).select(
            "patient_id",
            pl.concat_str([pl.col("marker"), pl.col("compartment")], separator="_")
            .alias("feature"),
            pl.col("density_per_mm2").alias("value"))
        ihc = _stage_columns(dataset, catalog, STAGES_OF_PART[part])
        return _wide(mx, prefix="mx_", suffix="_per_mm2").join(ihc, on="patient_id",
                                                             how="full", coalesce=True)
    raise ConfigError(f"unknown feature part {part!r}")


def _resolve(features) -> tuple[list[str], list[str]]:
    """Feature-set names -> (parts, explicit column names)."""
    items = [features] if isinstance(features, str) else list(features)
    parts, columns = [], []
    for item in items:
        if item in FEATURE_SETS:
            parts += [p for p in FEATURE_SETS[item] if p not in parts]
        elif item in NAMED_COLUMN_SETS:
            columns += [c for c in NAMED_COLUMN_SETS[item] if c not in columns]
        else:
            columns.append(item)
    if not parts and not columns:
        raise ConfigError("no features requested; choose sets from "
                          f"{sorted([*FEATURE_SETS, *NAMED_COLUMN_SETS])}")
    return parts, columns


def feature_columns(matrix: pl.DataFrame) -> list[str]:
    """The feature columns of a model matrix (everything but the id and outcome columns)."""
    reserved = {"patient_id", *(c for cols in OUTCOMES.values() for c in cols)}
    return [c for c in matrix.columns if c not in reserved]


def model_matrix(store_path: str | Path, features="combined", outcome: str = "resistance",
                 ) -> pl.DataFrame:
    """Return the patient-level model matrix, validated by a pandera schema.

    Parameters
    ----------
    store_path : str or Path
        The ``.duckdb`` store (opened read-only).
    features : str or list of str
        A set name of :data:`FEATURE_SETS` or :data:`NAMED_COLUMN_SETS`, or a list of set names
        and/or column names
        (a column name needs the set that provides it, e.g. ``["clinical", "gen_tmb"]`` is
        clinical + that one genomic column; a bare column is looked up in all sets).
    outcome : {"resistance", "pfs"}
        Which outcome columns to include.

    Returns
    -------
    polars.DataFrame
        One row per patient with an ``outcomes`` row.

    Examples
    --------
    >>> from immunodig.models import model_matrix
    >>> df = model_matrix("cohort.duckdb", "combined", "pfs")   # doctest: +SKIP
    """
    from immunodig.store import query

    if outcome not in OUTCOMES:
        raise ConfigError(f"unknown outcome {outcome!r}; choose one of {sorted(OUTCOMES)}")
    parts, explicit = _resolve(features)
    dataset = query(store_path, _DATASET_SQL)
    catalog = query(store_path, _CATALOG_SQL)
    frame = dataset.select("patient_id", *OUTCOMES[outcome])
    tables = {"clinical": dataset.select("patient_id", *CLINICAL_COLUMNS)}
    for part in (parts if not explicit else ["morphology", "genomic", "multiplex"]):
        if part != "clinical":
            tables[part] = _part(store_path, part, dataset, catalog)
    columns_of = {p: [c for c in t.columns if c != "patient_id"] for p, t in tables.items()}
    keep = list(dict.fromkeys(c for p in parts for c in columns_of[p]))
    available = {c for cols in columns_of.values() for c in cols}
    missing = [c for c in explicit if c not in available]
    if missing:
        raise ConfigError(f"feature(s) {missing} not in the store; see feature_catalog, "
                          "genomic and multiplex tables for available names")
    keep += [c for c in explicit if c not in keep]
    for table in tables.values():
        cols = [c for c in table.columns if c in keep and c not in frame.columns]
        if cols:
            frame = frame.join(table.select("patient_id", *cols), on="patient_id", how="left")
    return validate_matrix(frame.select("patient_id", *OUTCOMES[outcome], *keep), outcome)


def validate_matrix(frame: pl.DataFrame, outcome: str) -> pl.DataFrame:
    """Validate a model matrix with pandera (whatever ``PANDERA_*`` says: see
    :mod:`immunodig.clinical.always_validate`); raise ``ValidationError`` without cell values."""
    import pandera.polars as pa

    from immunodig.clinical.always_validate import always_validate

    checks: dict[str, pa.Column] = {
        "patient_id": pa.Column(pl.Utf8, nullable=False, unique=True),
    }
    if outcome == "resistance":
        checks["primary_resistance"] = pa.Column(int, pa.Check.isin([0, 1]), nullable=True,
                                                 coerce=True)
    else:
        checks["pfs_months"] = pa.Column(pl.Float64, pa.Check.ge(0), nullable=True, coerce=True)
        checks["pfs_event"] = pa.Column(int, pa.Check.isin([0, 1]), nullable=True, coerce=True)
    for col in feature_columns(frame):
        if col == "best_response":
            raise ConfigError("best_response is an outcome and cannot be a covariate")
        if col in CLINICAL_CATEGORIES:
            checks[col] = pa.Column(pl.Utf8, pa.Check.isin(list(CLINICAL_CATEGORIES[col])),
                                    nullable=True)
        else:
            checks[col] = pa.Column(pl.Float64, nullable=True, coerce=True)
    schema = pa.DataFrameSchema(checks, strict=True)
    try:
        with always_validate():
            return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        problems = [{"row": None, "column": str(r.get("column")), "check": str(r.get("check"))}
                    for r in cases.select("column", "check").unique().to_dicts()]
        raise ValidationError("model matrix", problems) from None
