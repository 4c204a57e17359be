"""Nested-CV evaluation of any patient table a statistician brings (CSV or Parquet).

The table holds one row per patient (or several rows per patient, e.g. per slide: rows sharing
the identifier are kept together by the splits), an outcome and covariates. Categorical columns
are one-hot encoded and missing values imputed inside every CV fit
(:mod:`immunodig.models.preprocessing`). Rows with a missing outcome are dropped and counted.
Columns that describe the outcome or happen after baseline (``best_response``, PFS/OS times and
events, ``primary_resistance``) are never used as covariates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from immunodig.errors import ValidationError
from immunodig.evaluation import input_checks
from immunodig.evaluation.input_checks import check_numeric_text, check_outcome_classes, repeated_patients
from immunodig.evaluation.nested_cv import CVResult, nested_cross_validate
from immunodig.models.registry import get_model
from immunodig.models.survival import survival_target

#: Columns that are outcomes or post-baseline; never covariates (immortal-time / leakage).
OUTCOME_COLUMNS: frozenset[str] = frozenset({
    "best_response", "pfs_months", "pfs_event", "os_months", "os_event", "primary_resistance",
})


@dataclass
class Outcome:
    """Which columns hold the outcome: ``label`` for resistance, ``time``+``event`` for PFS."""

    label: str | None = None
    time: str | None = None
    event: str | None = None

    def columns(self) -> list[str]:
        return [c for c in (self.label, self.time, self.event) if c is not None]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into pandas (via polars)."""
    import polars as pl

    path = Path(path)
    if not path.exists():
        raise ValidationError(str(path), [{"row": None, "column": None,
                                           "check": "file not found"}])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df = pl.read_csv(path, infer_schema_length=10000, null_values=["", "NA", "NaN"])
    elif suffix in (".parquet", ".pq"):
        df = pl.read_parquet(path)
    else:
        raise ValidationError(str(path), [{"row": None, "column": None,
                                           "check": "expected a .csv or .parquet file"}])
    return df.to_pandas()


def _binary(series: pd.Series, source: str, column: str) -> np.ndarray:
    values = (series.astype(int) if pd.api.types.is_bool_dtype(series)
              else pd.to_numeric(series, errors="coerce"))
    bad = np.flatnonzero(~values.isin([0, 1]))
    if len(bad):
        raise ValidationError(source, [{"row": int(r) + 1, "column": column,
                                        "check": "outcome must be 0/1"} for r in bad])
    return values.to_numpy(int)


def prepare_table(df: pd.DataFrame, id_col: str, outcome: Outcome,
                  covariates: list[str] | None = None, source: str = "table", *,
                  drop_uninformative: bool = True):
    """Split a table into features, target and ids, dropping rows with a missing outcome.

    The checks of :mod:`immunodig.evaluation.input_checks` run here: an outcome with one class
    (no events) and text in a numeric column are refused; constant or all-missing covariates
    are left out (``drop_uninformative``; off for a fitted model's columns) and several rows
    of one patient are reported, both with a named warning and in ``notes``.

    Returns
    -------
    X : DataFrame, y : array, ids : array, notes : dict
        ``notes`` counts dropped rows and names excluded outcome-like columns, left-out
        ``uninformative_features`` and ``n_patients_with_several_rows`` / ``n_identical_rows``.
    """
    needed = [id_col, *outcome.columns(), *(covariates or [])]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValidationError(source, [{"row": None, "column": c, "check": "column not found"}
                                       for c in missing])
    if df[id_col].isna().any():
        raise ValidationError(source, [{"row": int(r) + 1, "column": id_col,
                                        "check": "missing patient identifier"}
                                       for r in np.flatnonzero(df[id_col].isna())])
    keep = df[outcome.columns()].notna().all(axis=1).to_numpy()
    notes = {"n_dropped_missing_outcome": int((~keep).sum())}
    df = df.loc[keep].reset_index(drop=True)
    if outcome.label is not None:
        y = _binary(df[outcome.label], source, outcome.label)
    else:
        y = survival_target(pd.to_numeric(df[outcome.time], errors="coerce"),
                            _binary(df[outcome.event], source, outcome.event))
    if covariates is None:
        used = set(outcome.columns()) | {id_col}
        excluded = sorted(c for c in df.columns if c in OUTCOME_COLUMNS and c not in used)
        covariates = [c for c in df.columns if c not in used and c not in OUTCOME_COLUMNS]
        if excluded:
            notes["excluded_outcome_columns"] = excluded
    else:
        leaking = [c for c in covariates if c in OUTCOME_COLUMNS]
        if leaking:
            raise ValidationError(source, [{
                "row": None, "column": c,
                "check": "outcome / post-baseline column cannot be a covariate"} for c in leaking])
    if not covariates:
        raise ValidationError(source, [{"row": None, "column": None,
                                        "check": "no covariate columns left"}])
    check_outcome_classes(y, source, outcome.label or outcome.event)
    X = df[covariates]
    check_numeric_text(X, source)
    if drop_uninformative:
        X, dropped = input_checks.drop_uninformative(X, source)
        if dropped:
            notes["uninformative_features"] = dropped
    ids = df[id_col].astype(str).to_numpy()
    notes.update(repeated_patients(X, ids, source))
    return X, y, ids, notes


def evaluate_table(df: pd.DataFrame, id_col: str, outcome: Outcome, model: str,
                   covariates: list[str] | None = None, *, n_splits: int = 5,
                   n_repeats: int = 5, seed: int = 0, n_boot: int = 1000,
                   permutations: int = 0, source: str = "table", horizons=None,
                   **cv_kwargs) -> tuple[dict, CVResult]:
    """Run nested CV of ``model`` on a table and return (JSON-ready summary, CVResult).

    ``permutations > 0`` adds a permutation test of "no signal" (each permutation reruns the
    nested CV with one repeat; see :func:`immunodig.evaluation.permutation_test`).
    ``horizons`` are the survival times of the time-dependent AUC, calibration and RMST.
    """
    spec = get_model(model)
    if (spec.task == "classification") != (outcome.label is not None):
        raise ValidationError(source, [{
            "row": None, "column": None,
            "check": f"model {model!r} is a {spec.task} model: give "
                     + ("--label" if spec.task == "classification" else "--time and --event")}])
    X, y, ids, notes = prepare_table(df, id_col, outcome, covariates, source)
    result = nested_cross_validate(X, y, ids, model, n_splits=n_splits, n_repeats=n_repeats,
                                   seed=seed, **cv_kwargs)
    result.notes.update(notes)
    summary = result.summary(n_boot=n_boot, seed=seed, horizons=horizons)
    if permutations:
        from immunodig.evaluation.permutation import permutation_test

        perm = permutation_test(X, y, ids, model, permutations, seed=seed, n_splits=n_splits,
                                n_repeats=1, **cv_kwargs)
        summary["permutation_test"] = {"p": perm["p"], "n_permutations": permutations,
                                       "null_mean": float(np.mean(perm["null"])),
                                       "null_95th": float(np.quantile(perm["null"], 0.95)),
                                       "repeats_per_permutation": 1}
    return summary, result
