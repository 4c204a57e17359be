"""Named models: the pipeline each name builds and its small default hyper-parameter grid.

Every pipeline is ``prep`` (encoding, imputation, scaling) -> ``select`` (optional top-k feature
selection) -> ``model``, so that everything fitted from data is refitted inside each CV fold.
Grids are deliberately small: with 100-200 patients an inner loop cannot tell many settings apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from sklearn.pipeline import Pipeline

from immunodig.errors import ConfigError
from immunodig.models.classifiers import XGBResistanceClassifier, penalised_logistic
from immunodig.models.preprocessing import TopKSelector, make_preprocessor
from immunodig.models.survival import CoxPHSurvival, XGBSurvival

Task = Literal["classification", "survival"]


@dataclass(frozen=True)
class ModelSpec:
    """One named model.

    Parameters
    ----------
    name : str
        Command-line name (``logistic``, ``xgboost``, ``cox``, ``xgb-cox``, ``xgb-aft``).
    task : {"classification", "survival"}
        Outcome type it models.
    make : callable
        Returns a fresh final estimator.
    scale : bool
        Whether numeric features are standardised before it.
    param_grid : dict
        Inner-loop grid, keys as pipeline parameters (``model__C``).
    description : str
        One line for help texts and reports.
    """

    name: str
    task: Task
    make: Callable[[], Any]
    scale: bool
    param_grid: dict[str, list] = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelSpec] = {
    "logistic": ModelSpec(
        "logistic", "classification", penalised_logistic, True,
        {"model__C": [0.05, 0.3, 1.0]},
        "ridge-penalised logistic regression on standardised features"),
    "xgboost": ModelSpec(
        "xgboost", "classification", XGBResistanceClassifier, False,
        {"model__max_depth": [1, 2], "model__n_estimators": [50, 150]},
        "XGBoost, balanced class weights with prior-shift recalibration"),
    "cox": ModelSpec(
        "cox", "survival", CoxPHSurvival, True,
        {"model__penalizer": [0.03, 0.3, 1.0]},
        "ridge-penalised Cox proportional hazards (lifelines)"),
    "xgb-cox": ModelSpec(
        "xgb-cox", "survival", lambda: XGBSurvival(objective="survival:cox"), False,
        {"model__max_depth": [1, 2], "model__n_estimators": [50, 150]},
        "XGBoost survival:cox"),
    "xgb-aft": ModelSpec(
        "xgb-aft", "survival", lambda: XGBSurvival(objective="survival:aft"), False,
        {"model__max_depth": [1, 2], "model__n_estimators": [50, 150]},
        "XGBoost survival:aft (normal log-time errors)"),
}


def get_model(name: str) -> ModelSpec:
    """Return the spec of a named model; unknown names raise ``ConfigError`` listing the known."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name]


def build_pipeline(name: str, select_k: int | None = None, **params: Any) -> Pipeline:
    """Return an unfitted pipeline ``prep -> select -> model`` for a named model.

    Parameters
    ----------
    name : str
        Key of :data:`MODELS`.
    select_k : int or None
        Keep the top-k features by univariate association, fitted inside each fit.
    **params
        Pipeline parameters, e.g. ``model__C=0.1``.
    """
    spec = get_model(name)
    pipe = Pipeline([
        ("prep", make_preprocessor(scale=spec.scale)),
        ("select", TopKSelector(k=select_k)),
        ("model", spec.make()),
    ])
    return pipe.set_params(**params) if params else pipe
