"""Checks on a modelling table before anything is fitted.

Each problem becomes a :class:`~immunodig.errors.ValidationError` naming the table, column and
rows (never a cell value) or, when the table can still be used as documented, a named
:class:`~immunodig.errors.InputWarning`:

- an outcome with one class only (no events, or every patient an event for a binary label):
  error, nothing can be estimated;
- text in a numeric column (most filled cells are numbers, some are not, e.g. ``n.d.``): error,
  so that a typo is not silently turned into a one-hot category;
- covariates that are constant or entirely missing: left out, with
  :class:`~immunodig.errors.UninformativeFeatureWarning`; error when no covariate is left;
- several rows with one patient identifier: kept together and scored as one patient, with
  :class:`~immunodig.errors.RepeatedPatientWarning` (identical rows are counted apart: they are
  usually a copy-paste error).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from immunodig.errors import RepeatedPatientWarning, UninformativeFeatureWarning, ValidationError

#: Share of a text column's filled cells that must parse as numbers for it to count as numeric.
NUMERIC_SHARE = 0.5


def check_outcome_classes(y: np.ndarray, source: str, column: str = "outcome") -> None:
    """Refuse a binary label with one class, or a survival target without an event."""
    y = np.asarray(y)
    if len(y) == 0:
        raise ValidationError(source, [{"row": None, "column": column,
                                        "check": "no rows with an outcome"}])
    if y.dtype.names:
        if not y["event"].astype(bool).any():
            raise ValidationError(source, [{"row": None, "column": column, "check": (
                f"no events: all {len(y)} rows are censored; a survival model needs events")}])
        return
    classes = np.unique(y.astype(int))
    if len(classes) < 2:
        what = "no events (every label is 0)" if classes[0] == 0 else "every label is 1"
        raise ValidationError(source, [{"row": None, "column": column, "check": (
            f"{what} in {len(y)} rows; a model needs patients of both outcomes")}])


def check_numeric_text(X: pd.DataFrame, source: str) -> None:
    """Refuse text cells in columns that are otherwise numbers (1-based rows named)."""
    problems = []
    for column in X.columns:
        values = X[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        filled = values.notna()
        parsed = pd.to_numeric(values.where(filled), errors="coerce")
        is_number = parsed.notna()
        if filled.sum() and is_number.sum() > NUMERIC_SHARE * filled.sum() and (filled & ~is_number).any():
            problems += [{"row": int(r) + 1, "column": str(column), "check": (
                "text in a numeric column: give a number, or leave the cell empty for missing")}
                for r in np.flatnonzero((filled & ~is_number).to_numpy())]
    if problems:
        raise ValidationError(source, problems)


def drop_uninformative(X: pd.DataFrame, source: str) -> tuple[pd.DataFrame, list[str]]:
    """Leave out constant and all-missing covariates (warned); refuse when none is left."""
    dropped = [str(c) for c in X.columns if X[c].nunique(dropna=True) <= 1]
    if len(dropped) == X.shape[1]:
        raise ValidationError(source, [{"row": None, "column": c, "check": (
            "constant or entirely missing: no covariate varies, nothing can be learnt")}
            for c in dropped])
    if dropped:
        warnings.warn(f"{source}: {len(dropped)} covariate(s) constant or entirely missing, "
                      f"left out of the model: {', '.join(dropped)}",
                      UninformativeFeatureWarning, stacklevel=3)
    return X.drop(columns=dropped), dropped


def repeated_patients(X: pd.DataFrame, ids: np.ndarray, source: str) -> dict:
    """Count patients with several rows (warned) and fully identical rows; return the notes."""
    ids = pd.Series(np.asarray(ids).astype(str))
    counts = ids.value_counts()
    several = int((counts > 1).sum())
    if not several:
        return {}
    identical = int(pd.concat([ids.rename("_id"), X.reset_index(drop=True)], axis=1)
                    .duplicated().sum())
    message = (f"{source}: {several} patient(s) have several rows ({len(ids)} rows, "
               f"{len(counts)} patients); each patient is scored once, as the mean of its rows")
    if identical:
        message += f"; {identical} row(s) repeat another row exactly (copy-paste?)"
    warnings.warn(message, RepeatedPatientWarning, stacklevel=3)
    return {"n_patients_with_several_rows": several, "n_identical_rows": identical}
