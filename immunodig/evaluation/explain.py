"""Explanations of fitted pipelines: SHAP values, permutation importance, Cox hazard ratios.

Explanations describe what a model fitted on the whole cohort uses; they are not evidence of
performance (that is the nested CV) and, with 100-200 patients, they are unstable: prefer
features whose direction agrees across methods and CV folds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunodig.errors import ConfigError
from immunodig.evaluation import metrics as M
from immunodig.models.preprocessing import as_frame


def shap_values(pipeline, X) -> pd.DataFrame:
    """Exact TreeSHAP contributions (log-odds or log-hazard scale) of an XGBoost pipeline.

    Uses xgboost's own ``pred_contribs``; columns are the encoded features plus ``bias``; each
    row sums to the model margin.
    """
    import xgboost as xgb

    model = pipeline[-1]
    if not hasattr(model, "booster_"):
        raise ConfigError("SHAP values need an XGBoost model (xgboost, xgb-cox, xgb-aft)")
    Xt = pipeline[:-1].transform(as_frame(X))
    contribs = model.booster_.predict(xgb.DMatrix(np.asarray(Xt, dtype=float)),
                                      pred_contribs=True)
    return pd.DataFrame(contribs, columns=[*map(str, Xt.columns), "bias"])


def permutation_importance(pipeline, X, y, n_repeats: int = 10, seed: int = 0) -> pd.DataFrame:
    """Drop in AUC (label) or Harrell's C (survival) when one input column is permuted.

    Columns are permuted as given (a categorical column moves as a whole). Computed on the data
    passed in: on the training data it shows what the model relies on, not what generalises.
    """
    X = as_frame(X).reset_index(drop=True)
    y = np.asarray(y)
    survival = y.dtype.names is not None

    def score(frame) -> float:
        if survival:
            return M.harrell_c(y, pipeline.predict(frame))
        return M.roc_auc(y, pipeline.predict_proba(frame)[:, 1])

    base = score(X)
    rng = np.random.default_rng(seed)
    rows = []
    for col in X.columns:
        drops = []
        for _ in range(n_repeats):
            Xp = X.copy()
            Xp[col] = X[col].to_numpy()[rng.permutation(len(X))]
            drops.append(base - score(Xp))
        rows.append({"feature": str(col), "importance_mean": float(np.mean(drops)),
                     "importance_sd": float(np.std(drops, ddof=1)) if n_repeats > 1 else 0.0})
    return (pd.DataFrame(rows).sort_values("importance_mean", ascending=False)
            .reset_index(drop=True))


def cox_hazard_ratios(pipeline) -> pd.DataFrame:
    """Hazard ratios with 95 % CIs of a fitted (penalised) ``cox`` prediction pipeline.

    Per SD of each numeric feature, per one-hot level (no reference level), including the
    missing-value indicators, shrunk by the penalty, with intervals from the penalised
    information matrix: a description of the prediction model, **not inference**. Hazard
    ratios to report (reference-coded, per unit, unpenalised, with the proportional-hazards
    test) come from :func:`immunodig.evaluation.inference.cox_inference` (``cli.py fit
    --model cox --json``).
    """
    model = pipeline[-1]
    if not hasattr(model, "hazard_ratios"):
        raise ConfigError("hazard ratios need the 'cox' model")
    return model.hazard_ratios()
