"""Survival models for progression-free survival: penalised Cox (lifelines), XGBoost Cox and AFT.

Targets follow scikit-survival's convention: a structured array with fields ``event`` (bool) and
``time`` (float), built by :func:`survival_target`. Every model's ``predict`` returns a *risk
score*: higher means earlier progression, so the same C-index code serves all of them.
``predict_survival_function(X, times)`` returns S(t) per patient (rows) and time (columns).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from immunodig.errors import ValidationError

SURV_DTYPE = np.dtype([("event", "?"), ("time", "<f8")])


def survival_target(time, event) -> np.ndarray:
    """Return the structured survival target (fields ``event``, ``time``).

    Parameters
    ----------
    time : array-like of float
        Follow-up time (months for PFS), must be finite and >= 0.
    event : array-like of {0, 1, bool}
        1 = progression/death observed, 0 = censored.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event)
    problems = []
    if time.shape != event.shape:
        problems.append({"row": None, "column": "time/event", "check": "different lengths"})
    bad_t = np.flatnonzero(~np.isfinite(time) | (time < 0))
    if len(bad_t):
        problems.append({"row": None, "column": "time",
                         "check": f"{len(bad_t)} value(s) missing or negative"})
    bad_e = np.flatnonzero(~np.isin(event.astype(float), (0.0, 1.0)))
    if len(bad_e):
        problems.append({"row": None, "column": "event",
                         "check": f"{len(bad_e)} value(s) not 0/1"})
    if problems:
        raise ValidationError("survival target", problems)
    y = np.empty(len(time), dtype=SURV_DTYPE)
    y["event"] = event.astype(float) == 1
    y["time"] = time
    return y


def _split_target(y) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    if y.dtype.names is None or not {"event", "time"} <= set(y.dtype.names):
        raise ValidationError("survival target", [{
            "row": None, "column": None,
            "check": "expected a structured array with fields event, time "
                     "(use immunodig.models.survival_target)"}])
    return y["time"].astype(float), y["event"].astype(bool)


def breslow_cumulative_hazard(time: np.ndarray, event: np.ndarray, risk: np.ndarray):
    """Breslow estimate of the baseline cumulative hazard.

    Parameters
    ----------
    time, event : arrays
        Training follow-up.
    risk : array
        Linear predictor (log relative hazard) of the training patients.

    Returns
    -------
    (event_times, cumulative_hazard) : tuple of arrays
    """
    order = np.argsort(time, kind="stable")
    t, e, r = time[order], event[order], np.exp(risk[order] - risk.max())
    at_risk = np.cumsum(r[::-1])[::-1]
    uniq = np.unique(t[e])
    first = np.searchsorted(t, uniq, side="left")
    deaths = np.array([e[t == u].sum() for u in uniq], dtype=float)
    h = deaths / at_risk[first]
    return uniq, np.cumsum(h) * np.exp(-risk.max())


def breslow_survival(train_time: np.ndarray, train_event: np.ndarray, train_risk: np.ndarray,
                     risk: np.ndarray, times) -> np.ndarray:
    """Survival curves ``S(t | r) = exp(-H0(t) exp(r))`` with a Breslow baseline ``H0``.

    Parameters
    ----------
    train_time, train_event, train_risk : arrays
        Training follow-up and the model's log relative hazard on the training rows.
    risk : array
        Log relative hazard of the rows to predict.
    times : array
        Times at which to evaluate the curves.

    Returns
    -------
    array (len(risk), len(times))
    """
    base_t, base_h = breslow_cumulative_hazard(np.asarray(train_time, dtype=float),
                                               np.asarray(train_event, dtype=bool),
                                               np.asarray(train_risk, dtype=float))
    h0 = _step(np.asarray(times, dtype=float), base_t, base_h)[None, :]
    return np.exp(-h0 * np.exp(np.asarray(risk, dtype=float))[:, None])


def _step(x_at: np.ndarray, steps_x: np.ndarray, steps_y: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(steps_x, x_at, side="right") - 1
    return np.where(idx >= 0, steps_y[np.clip(idx, 0, None)], 0.0)


def _independent_columns(X: pd.DataFrame, tol: float = 1e-8) -> list:
    """Columns of ``X`` in order, skipping any in the span of a constant and the earlier ones."""
    basis = np.ones((len(X), 1)) / np.sqrt(len(X))
    kept = []
    for c in X.columns:
        v = X[c].to_numpy(float)
        v = v / max(np.linalg.norm(v), 1e-300)
        residual = v - basis @ (basis.T @ v)
        norm = np.linalg.norm(residual)
        if norm > tol:
            basis = np.column_stack([basis, residual / norm])
            kept.append(c)
    return kept


class CoxPHSurvival(BaseEstimator):
    """Penalised Cox proportional-hazards model: a thin wrapper around lifelines' CoxPHFitter.

    The lifelines fitter stays available as ``lifelines_`` (summary, plots, assumption checks);
    this class only adds the scikit-learn calling convention used by the evaluation code.
    Columns with zero variance in the training data are dropped (coefficient 0) because a
    one-hot level absent from a CV fold would otherwise stop the fit. Without a penalty
    (``penalizer=0``) columns that are linear combinations of earlier ones (the last one-hot
    level of a category, which with the others sums to the baseline) are dropped too.

    With a penalty, lifelines' separation diagnostics ("the column ... completely determines
    whether a subject dies", printed dozens of times by a nested CV) describe what the penalty
    is there for; they are kept in ``fit_warnings_`` instead of being printed. Without a
    penalty they are warnings as usual.

    This is the *prediction* model. Its hazard ratios (:meth:`hazard_ratios`) are per SD,
    penalised and one per category level: descriptive only. For inference (reference-coded,
    per-unit, unpenalised, with the proportional-hazards test) use
    :func:`immunodig.evaluation.inference.cox_inference`.

    Parameters
    ----------
    penalizer : float
        Penalty strength (lifelines' ``penalizer``); features should be standardised.
    l1_ratio : float
        Elastic-net mix, 0 = ridge.
    alpha : float
        1 - confidence level of the reported hazard-ratio intervals.
    """

    def __init__(self, penalizer: float = 0.1, l1_ratio: float = 0.0, alpha: float = 0.05) -> None:
        self.penalizer = penalizer
        self.l1_ratio = l1_ratio
        self.alpha = alpha

    def fit(self, X, y):
        """Fit on feature frame/array ``X`` and structured target ``y``; returns ``self``."""
        from lifelines import CoxPHFitter
        from lifelines.exceptions import ConvergenceWarning

        time, event = _split_target(y)
        X = self._frame(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        std = X.std(axis=0, ddof=0).to_numpy()
        kept = list(X.columns[std > 0])
        self.kept_columns_ = (_independent_columns(X[kept]) if self.penalizer == 0 else kept)
        df = X[self.kept_columns_].copy()
        df["__time"] = time
        df["__event"] = event.astype(int)
        self.lifelines_ = CoxPHFitter(penalizer=self.penalizer, l1_ratio=self.l1_ratio,
                                      alpha=self.alpha)
        with warnings.catch_warnings(record=self.penalizer > 0) as caught:
            if self.penalizer > 0:
                warnings.simplefilter("always", ConvergenceWarning)
            self.lifelines_.fit(df, duration_col="__time", event_col="__event")
        self.fit_warnings_ = []
        for w in caught or ():
            if issubclass(w.category, ConvergenceWarning):
                self.fit_warnings_.append(str(w.message).strip().splitlines()[0])
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return self

    @staticmethod
    def _frame(X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X.rename(columns=str)
        X = np.asarray(X, dtype=float)
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])

    def _kept(self, X) -> pd.DataFrame:
        check_is_fitted(self, "lifelines_")
        X = self._frame(X)
        if list(X.columns) != list(self.feature_names_in_):
            X.columns = self.feature_names_in_
        return X[self.kept_columns_]

    def predict(self, X) -> np.ndarray:
        """Risk score: the log partial hazard (higher = earlier event)."""
        return self.lifelines_.predict_log_partial_hazard(self._kept(X)).to_numpy(float)

    def predict_survival_function(self, X, times) -> np.ndarray:
        """S(t) for each row of ``X`` (rows) at each of ``times`` (columns)."""
        sf = self.lifelines_.predict_survival_function(self._kept(X), times=np.asarray(times))
        return sf.to_numpy(float).T

    def hazard_ratios(self) -> pd.DataFrame:
        """Hazard ratio per model column (standardised feature, one-hot level, missing
        indicator) with its (1 - alpha) interval.

        With a penalty the ratios are shrunk and the intervals come from the penalised
        information matrix: they are **not inference**, read them as descriptive. Reported
        hazard ratios come from :func:`immunodig.evaluation.inference.cox_inference`.
        """
        check_is_fitted(self, "lifelines_")
        s = self.lifelines_.summary
        lo = [c for c in s.columns if c.startswith("exp(coef) lower")][0]
        hi = [c for c in s.columns if c.startswith("exp(coef) upper")][0]
        out = pd.DataFrame({"feature": s.index.astype(str), "hazard_ratio": s["exp(coef)"],
                            "ci_low": s[lo], "ci_high": s[hi], "p": s["p"]})
        return out.reset_index(drop=True)


class XGBSurvival(BaseEstimator):
    """XGBoost survival model: ``survival:cox`` (proportional hazards) or ``survival:aft``.

    Parameters
    ----------
    objective : {"survival:cox", "survival:aft"}
        Cox partial likelihood, or accelerated failure time with interval-censored labels.
    n_estimators, max_depth, learning_rate, subsample, colsample_bytree, min_child_weight,
    reg_lambda : xgboost hyper-parameters (shallow, regularised defaults).
    aft_distribution : {"normal", "logistic", "extreme"}
        Error distribution of log-time for AFT.
    aft_sigma : float
        Scale of that distribution.
    random_state, n_jobs : int
        Seed and threads.

    Notes
    -----
    Follow-up times of 0 are moved to a tiny positive value (xgboost encodes censoring by sign).
    Survival curves: Cox uses a Breslow baseline from the training data; AFT uses the fitted
    parametric distribution.
    """

    def __init__(self, objective: str = "survival:cox", n_estimators: int = 150,
                 max_depth: int = 2, learning_rate: float = 0.05, subsample: float = 0.8,
                 colsample_bytree: float = 0.8, min_child_weight: float = 2.0,
                 reg_lambda: float = 5.0, aft_distribution: str = "normal",
                 aft_sigma: float = 1.0, random_state: int = 0, n_jobs: int = 1) -> None:
        self.objective = objective
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.aft_distribution = aft_distribution
        self.aft_sigma = aft_sigma
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Fit on numeric ``X`` and structured target ``y``; returns ``self``."""
        import xgboost as xgb

        if self.objective not in ("survival:cox", "survival:aft"):
            raise ValueError("objective must be 'survival:cox' or 'survival:aft'")
        time, event = _split_target(y)
        time = np.maximum(time, 1e-6)
        X = np.asarray(X, dtype=float)
        self.n_features_in_ = X.shape[1]
        params = {
            "objective": self.objective, "eta": self.learning_rate, "max_depth": self.max_depth,
            "subsample": self.subsample, "colsample_bytree": self.colsample_bytree,
            "min_child_weight": self.min_child_weight, "lambda": self.reg_lambda,
            "seed": self.random_state, "nthread": self.n_jobs,
        }
        if self.objective == "survival:cox":
            dtrain = xgb.DMatrix(X, label=np.where(event, time, -time))
        else:
            params.update(aft_loss_distribution=self.aft_distribution,
                          aft_loss_distribution_scale=self.aft_sigma)
            dtrain = xgb.DMatrix(X)
            dtrain.set_float_info("label_lower_bound", time)
            dtrain.set_float_info("label_upper_bound", np.where(event, time, np.inf))
        self.booster_ = xgb.train(params, dtrain, num_boost_round=self.n_estimators)
        if self.objective == "survival:cox":
            self.baseline_times_, self.baseline_cumhaz_ = breslow_cumulative_hazard(
                time, event, self._margin(X))
        return self

    def _margin(self, X) -> np.ndarray:
        import xgboost as xgb

        check_is_fitted(self, "booster_")
        return self.booster_.predict(xgb.DMatrix(np.asarray(X, dtype=float)),
                                     output_margin=True).astype(float)

    def predict(self, X) -> np.ndarray:
        """Risk score: log relative hazard (Cox) or minus predicted log-time (AFT)."""
        m = self._margin(X)
        return m if self.objective == "survival:cox" else -m

    def predict_time(self, X) -> np.ndarray:
        """AFT only: predicted median survival time (for the normal/logistic distributions)."""
        if self.objective != "survival:aft":
            raise ValueError("predict_time is defined for survival:aft only")
        return np.exp(self._margin(X))

    def predict_survival_function(self, X, times) -> np.ndarray:
        """S(t) for each row of ``X`` (rows) at each of ``times`` (columns)."""
        m = self._margin(X)[:, None]
        times = np.asarray(times, dtype=float)[None, :]
        if self.objective == "survival:cox":
            h0 = _step(times[0], self.baseline_times_, self.baseline_cumhaz_)[None, :]
            return np.exp(-h0 * np.exp(m))
        z = (np.log(np.maximum(times, 1e-12)) - m) / self.aft_sigma
        if self.aft_distribution == "normal":
            return stats.norm.sf(z)
        if self.aft_distribution == "logistic":
            return 1.0 / (1.0 + np.exp(z))
        return np.exp(-np.exp(z))  # extreme value (Weibull in time)
