"""Encoding, imputation, scaling and feature selection as scikit-learn transformers.

Everything here is *fitted*: medians, category levels, means and standard deviations, selected
columns. Used inside :func:`immunodig.evaluation.nested_cross_validate` these are learnt from the
inner training data only, so nothing about a test patient leaks into the model.

Missing-value strategy (documented contract):

- numeric columns: median of the training data, plus a 0/1 "was missing" indicator column for
  every column that had missing values in the training data (missingness may itself be
  informative, e.g. an IHC stain not done);
- categorical columns (strings, booleans, categoricals): the missing value becomes its own level
  ``"missing"``; levels are one-hot encoded, levels unseen in training are all-zero at prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import f_classif
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from immunodig.errors import ValidationError

MISSING_LEVEL = "missing"


def as_frame(X) -> pd.DataFrame:
    """Return ``X`` as a pandas DataFrame (accepts polars, pandas or a 2-D array)."""
    if isinstance(X, pd.DataFrame):
        return X
    if hasattr(X, "to_pandas"):  # polars
        return X.to_pandas()
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValidationError("feature matrix", [{"row": None, "column": None,
                                                  "check": f"expected 2-D, got {arr.ndim}-D"}])
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


class _CategoricalToString(BaseEstimator, TransformerMixin):
    """Cast categorical columns to strings with missing as an explicit level."""

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(pd.DataFrame(X).columns, dtype=object)
        return self

    def transform(self, X):
        X = pd.DataFrame(X)
        return X.astype("object").where(X.notna(), MISSING_LEVEL).astype(str)

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_ if input_features is None else np.asarray(input_features,
                                                                                dtype=object)


def _numeric_selector(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns
            if pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])]


def _categorical_selector(X: pd.DataFrame) -> list[str]:
    numeric = set(_numeric_selector(X))
    return [c for c in X.columns if c not in numeric]


def make_preprocessor(scale: bool = True) -> ColumnTransformer:
    """Return the column transformer used by every model.

    Parameters
    ----------
    scale : bool
        Standardise numeric columns (needed by penalised linear and Cox models so that one
        penalty treats every feature alike; trees do not need it).

    Returns
    -------
    sklearn.compose.ColumnTransformer
        Numeric: median imputation + missing indicators (+ standardisation). Categorical:
        explicit ``missing`` level + one-hot encoding (unknown levels ignored).
    """
    numeric_steps = [("impute", SimpleImputer(strategy="median", add_indicator=True,
                                              keep_empty_features=True))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline([
        ("as_str", _CategoricalToString()),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=float)),
    ])
    return ColumnTransformer(
        [("num", Pipeline(numeric_steps), _numeric_selector),
         ("cat", categorical, _categorical_selector)],
        remainder="drop",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


class TopKSelector(BaseEstimator, TransformerMixin):
    """Keep the ``k`` columns most associated with the outcome (fitted on training data only).

    For a binary label the ANOVA F statistic is used; for a survival target (structured array
    with ``event`` and ``time``) the absolute Spearman correlation of the feature with the
    event-time ordering among events.

    Parameters
    ----------
    k : int or None
        Number of columns kept; ``None`` keeps all.
    """

    def __init__(self, k: int | None = None) -> None:
        self.k = k

    def fit(self, X, y):
        X = as_frame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        if self.k is None or self.k >= X.shape[1]:
            self.support_ = np.ones(X.shape[1], dtype=bool)
            return self
        y = np.asarray(y)
        if y.dtype.names:  # survival: association with time among events
            events = y["event"].astype(bool)
            ranks = pd.Series(-y["time"][events]).rank().to_numpy()
            xe = X.to_numpy(float)[events]
            score = np.abs([np.nan_to_num(np.corrcoef(pd.Series(col).rank(), ranks)[0, 1])
                            for col in xe.T])
        else:
            score, _ = f_classif(X.to_numpy(float), y)
            score = np.nan_to_num(score)
        keep = np.argsort(-score, kind="stable")[: self.k]
        self.support_ = np.zeros(X.shape[1], dtype=bool)
        self.support_[keep] = True
        return self

    def transform(self, X):
        X = as_frame(X)
        return X.loc[:, self.support_]

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_[self.support_]


__all__ = ["make_preprocessor", "TopKSelector", "as_frame", "MISSING_LEVEL"]
