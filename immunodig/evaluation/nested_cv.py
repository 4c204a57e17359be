"""Repeated, stratified, patient-grouped nested cross-validation.

Outer loop: :func:`immunodig.evaluation.splits.grouped_splits` (patients never straddle train
and test; same seed -> same splits for every model and feature set). Inner loop: for each outer
training set, a grouped stratified K-fold over the training patients picks the hyper-parameters
from the model's small grid (inner score: ROC AUC or Harrell's C); the whole pipeline --
encoding, imputation, scaling, feature selection, model -- is then refitted on the outer training
set and predicts the outer test patients. Nothing is ever fitted on test patients.

All results are **internal validation**: they estimate performance in new patients from the
same source population, not transportability to another hospital.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from immunodig.errors import ValidationError
from immunodig.evaluation import metrics as M
from immunodig.evaluation.bootstrap import bootstrap_metric
from immunodig.evaluation.cv_interval import corrected_cv_interval
from immunodig.evaluation.input_checks import check_outcome_classes
from immunodig.evaluation.splits import grouped_splits, splits_key
from immunodig.models.preprocessing import as_frame
from immunodig.models.registry import build_pipeline, get_model

VALIDATION = "internal (nested cross-validation)"


@dataclass
class CVResult:
    """Out-of-fold predictions and settings of one nested-CV run.

    Attributes
    ----------
    oof : array (n_repeats, n)
        Out-of-fold prediction per repeat and row: probability (classification) or risk score
        (survival, higher = earlier event).
    train_cut : array (n_repeats, n)
        Median prediction over the *training* rows of the fold in which the row was tested: the
        pre-specified risk-group cut (never optimised on outcomes).
    fold_of : array (n_repeats, n)
        Outer fold in which the row was tested.
    oof_surv : array (n_repeats, n, len(eval_times)) or None
        Out-of-fold predicted survival at ``eval_times`` (survival models).
    """

    model: str
    task: str
    ids: np.ndarray
    y: np.ndarray
    oof: np.ndarray
    train_cut: np.ndarray
    fold_of: np.ndarray
    best_params: list[dict]
    splits_key: str
    settings: dict
    feature_names: list[str]
    eval_times: np.ndarray | None = None
    oof_surv: np.ndarray | None = None
    notes: dict = field(default_factory=dict)

    def patient_level(self) -> "CVResult":
        """The same result with one row per patient (itself when ids are already unique).

        A patient's out-of-fold prediction, survival curve and training-fold cut are the
        **mean over its rows** (all its rows are tested in the same fold, so the fold and cut
        are shared); its outcome is the same on every row (checked by
        :func:`nested_cross_validate`). Every metric of :meth:`summary` is computed on this
        view, so a patient with several slides counts once.
        """
        uniq, first, inverse = np.unique(self.ids, return_index=True, return_inverse=True)
        if len(uniq) == len(self.ids):
            return self
        A = np.zeros((len(uniq), len(self.ids)))
        A[inverse, np.arange(len(self.ids))] = 1.0
        A /= A.sum(axis=1, keepdims=True)
        surv = (None if self.oof_surv is None
                else np.einsum("kn,rnt->rkt", A, self.oof_surv))
        notes = {**self.notes, "n_rows": int(len(self.ids)),
                 "row_aggregation": "mean of each patient's out-of-fold predictions"}
        return replace(self, ids=uniq, y=self.y[first], oof=self.oof @ A.T,
                       train_cut=self.train_cut @ A.T, fold_of=self.fold_of[:, first],
                       oof_surv=surv, notes=notes)

    def summary(self, n_boot: int = 1000, seed: int = 0, horizons=None) -> dict:
        """Metrics with 95 % CIs, as a JSON-ready dict, computed per patient
        (:meth:`patient_level`: several rows of one patient count once).

        ``auc`` / ``c_index`` is the metric of the pooled out-of-fold predictions, averaged over
        repeats. ``auc_ci`` / ``c_index_ci`` is the corrected repeated-K-fold interval
        (:mod:`immunodig.evaluation.cv_interval`) around that estimate, which therefore always
        lies inside it; it accounts for refitting the models (the mean over test folds is
        ``auc_fold_mean`` / ``c_index_fold_mean``).
        ``auc_ci_oof_bootstrap`` / ``c_index_ci_oof_bootstrap`` and the other ``*_ci`` keys are
        patient bootstraps of the out-of-fold predictions (models held fixed: too narrow).

        Parameters
        ----------
        n_boot : int
            Bootstrap replicates (patients resampled; see :mod:`immunodig.evaluation.bootstrap`).
        seed : int
            Bootstrap seed.
        horizons : sequence of float, optional
            Times for the time-dependent AUC (default: quartiles of observed event times).
        """
        if len(np.unique(self.ids)) < len(self.ids):
            return self.patient_level().summary(n_boot=n_boot, seed=seed, horizons=horizons)
        out: dict[str, Any] = {
            "validation": VALIDATION, "model": self.model, "task": self.task,
            "n": int(len(np.unique(self.ids))), "n_rows": int(len(self.ids)),
            "splits": {**self.settings, "key": self.splits_key},
            "best_params": self.best_params, "features": self.feature_names, **self.notes,
        }
        boot = {"groups": self.ids, "n_boot": n_boot, "seed": seed}
        if self.task == "classification":
            y = self.y.astype(int)
            out["n_events"] = int(y.sum())
            auc = bootstrap_metric(M.roc_auc, y, self.oof, **boot)
            pr = bootstrap_metric(M.pr_auc, y, self.oof, **boot)
            br = bootstrap_metric(M.brier, y, self.oof, **boot)
            out.update(auc=auc["estimate"], **self._corrected("auc", M.roc_auc, auc["estimate"]),
                       auc_ci_oof_bootstrap=auc["ci"], pr_auc=pr["estimate"],
                       pr_auc_ci=pr["ci"], brier=br["estimate"], brier_ci=br["ci"])
            cal = [M.calibration(y, p) for p in self.oof]
            out["calibration"] = {k: float(np.nanmean([c[k] for c in cal])) for k in cal[0]}
            mean_pred = self.oof.mean(axis=0)
            out["calibration_curve"] = M.calibration_curve(y, mean_pred)
            out["net_benefit"] = M.net_benefit(y, mean_pred)
            return out
        time, event = self.y["time"], self.y["event"]
        out["n_events"] = int(event.sum())
        c = bootstrap_metric(M.harrell_c, self.y, self.oof, **boot)
        tau = float(self.eval_times[-1]) if self.eval_times is not None else None

        def uno(y, r):
            return M.uno_c(y, r, tau=tau)

        u = bootstrap_metric(uno, self.y, self.oof, **boot)
        out.update(c_index=c["estimate"],
                   **self._corrected("c_index", M.harrell_c, c["estimate"]),
                   c_index_ci_oof_bootstrap=c["ci"], uno_c=u["estimate"],
                   uno_c_ci=u["ci"], uno_tau=tau)
        horizons = (np.quantile(time[event], [0.25, 0.5, 0.75]) if horizons is None
                    else np.asarray(horizons, dtype=float))
        td = [M.time_dependent_auc(self.y, p, horizons) for p in self.oof]
        out["td_auc"] = {"times": [float(t) for t in horizons],
                         "auc": np.nanmean([t["auc"] for t in td], axis=0).tolist(),
                         "mean_auc": float(np.nanmean([t["mean_auc"] for t in td]))}
        if self.oof_surv is not None:
            ibs = [M.integrated_brier_score(self.y, s, self.eval_times) for s in self.oof_surv]
            out["integrated_brier"] = float(np.mean(ibs))
            out["ibs_times"] = [float(self.eval_times[0]), float(self.eval_times[-1])]
        from immunodig.evaluation.risk_groups import risk_group_summary, risk_groups

        out["risk_groups"] = risk_group_summary(self)
        out["calibration"] = {"slope": float(np.nanmean(
            [M.cox_calibration_slope(self.y, p) for p in self.oof]))}
        out["calibration_method"] = (
            "slope: Cox regression of the outcome on the out-of-fold risk score, mean over "
            "repeats (ideal 1 for a log relative hazard); at the horizon: mean predicted risk "
            "1 - S(h) against observed 1 - Kaplan-Meier(h)")
        if self.oof_surv is not None:
            at = self._calibration_at_horizons(horizons)
            out["calibration_at_horizons"] = at
            mid = at[len(at) // 2]
            if mid["curve"] is not None:
                out["calibration"].update(horizon=mid["horizon"],
                                          mean_predicted=mid["mean_predicted"],
                                          observed_rate=mid["observed_rate"])
                out["calibration_curve"] = mid["curve"]
        groups = [risk_groups(self, r) for r in range(self.oof.shape[0])]
        rm = {"horizons": [float(h) for h in horizons], "overall": [], "low_risk": [],
              "high_risk": [], "difference_low_minus_high": []}
        for h in horizons:
            rm["overall"].append(M.rmst(self.y, h))
            low = np.mean([M.rmst(self.y[~g], h) for g in groups if (~g).any()])
            high = np.mean([M.rmst(self.y[g], h) for g in groups if g.any()])
            rm["low_risk"].append(float(low))
            rm["high_risk"].append(float(high))
            rm["difference_low_minus_high"].append(float(low - high))
        rm["method"] = ("Kaplan-Meier area up to each horizon; risk groups as in risk_groups, "
                        "mean over repeats")
        out["rmst"] = rm
        return out

    def _calibration_at_horizons(self, horizons) -> list[dict]:
        """Predicted risk by each horizon (mean over repeats of the out-of-fold S(h), linearly
        interpolated on ``eval_times``) against 1 - Kaplan-Meier, overall and per quintile."""
        from immunodig.evaluation.curves import survival_calibration_curve

        grid = self.eval_times
        rows = []
        for h in horizons:
            row = {"horizon": float(h), "mean_predicted": float("nan"),
                   "observed_rate": float("nan"), "curve": None}
            if not grid[0] <= h <= grid[-1]:
                row["note"] = (f"horizon outside the stored survival grid "
                               f"[{grid[0]:.3g}, {grid[-1]:.3g}]")
                rows.append(row)
                continue
            s_h = np.array([[np.interp(h, grid, s) for s in rep] for rep in self.oof_surv])
            s_mean = s_h.mean(axis=0)
            row["mean_predicted"] = float(np.mean(1 - s_mean))
            row["observed_rate"] = float(1 - M._km(self.y["time"], self.y["event"],
                                                   np.array([h]))[0])
            row["curve"] = survival_calibration_curve(self.y, s_mean, h).as_dict()
            rows.append(row)
        return rows

    def _corrected(self, name: str, metric, estimate: float) -> dict:
        """``<name>_ci``, ``<name>_fold_mean`` and ``<name>_ci_method`` of the corrected
        repeated-K-fold interval around ``estimate``."""
        c = corrected_cv_interval(metric, self.y, self.oof, self.fold_of, self.ids,
                                  estimate=estimate)
        method = {"method": "corrected repeated k-fold t interval (Nadeau & Bengio 2003), "
                            "centred on the reported estimate",
                  "n_folds": c["n_folds"], "n_folds_skipped": c["n_folds_skipped"],
                  "fold_sd": c["fold_sd"], "test_train_ratio": c["test_train_ratio"]}
        if "note" in c:
            method["interval_note"] = c["note"]
        if c["n_folds_skipped"]:
            method["note"] = (f"{c['n_folds_skipped']} test fold(s) skipped: {name} undefined "
                              "there (one outcome class or no comparable pairs)")
        return {f"{name}_ci": c["ci"], f"{name}_fold_mean": c["fold_mean"],
                f"{name}_ci_method": method}


def outcome_strata(y: np.ndarray, task: str) -> np.ndarray:
    """Stratification label of each row: the label, or the event indicator (survival)."""
    return (y["event"] if task == "survival" else y).astype(int)


def score_predictions(task: str, y, pred) -> float:
    """Inner-loop score: ROC AUC (classification) or Harrell's C (survival)."""
    return M.roc_auc(y, pred) if task == "classification" else M.harrell_c(y, pred)


def _predict(pipe, X, task: str) -> np.ndarray:
    if task == "classification":
        return pipe.predict_proba(X)[:, 1]
    return pipe.predict(X)


def fold_seed(*parts: int) -> int:
    """Seed of one fit, derived from the run seed and the fold's (repeat, fold) position."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0] % (2**31 - 1))


def default_eval_times(y: np.ndarray) -> np.ndarray:
    """Time grid for survival curves and the integrated Brier score: 15 points from the 10th
    to the 80th percentile of observed event times (inside the follow-up, where the censoring
    distribution is still estimable)."""
    t = y["time"][y["event"]]
    return np.unique(np.quantile(t, np.linspace(0.1, 0.8, 15)))


def _named_factory(model: str, select_k: int | None):
    return lambda **params: build_pipeline(model, select_k=select_k, **params)


def _estimator_factory(estimator):
    return lambda **params: clone(estimator).set_params(**params)


def select_params(X, y, ids, model: str, task: str, grid: list[dict], inner_splits: int,
                  seed: int, select_k: int | None = None, factory=None) -> tuple[dict, float]:
    """Pick hyper-parameters by grouped, stratified K-fold on the given (training) rows.

    ``factory(**params)`` builds the unfitted estimator (default: the named ``model``'s pipeline).
    """
    if len(grid) == 1:
        return grid[0], float("nan")
    try:
        inner = grouped_splits(ids, outcome_strata(y, task), n_splits=inner_splits, n_repeats=1,
                               seed=seed)
    except ValidationError as exc:
        raise ValidationError("inner cross-validation", [{
            "row": None, "column": "outcome",
            "check": "too few patients or events in an outer training set for "
                     f"{inner_splits} inner folds; lower --inner-folds or --folds"}]) from exc
    factory = factory or _named_factory(model, select_k)
    scores = []
    for params in grid:
        fold_scores = []
        for s in inner:
            pipe = factory(**params).fit(X.iloc[s.train], y[s.train])
            fold_scores.append(score_predictions(task, y[s.test],
                                                 _predict(pipe, X.iloc[s.test], task)))
        scores.append(np.nanmean(fold_scores))
    best = int(np.nanargmax(scores))
    return grid[best], float(scores[best])


def nested_cross_validate(X, y, ids, model: str = "logistic", *, n_splits: int = 5,
                          n_repeats: int = 5, inner_splits: int = 3, seed: int = 0,
                          param_grid: dict | None = None, select_k: int | None = None,
                          eval_times=None, estimator=None) -> CVResult:
    """Run repeated nested CV of a named model and return its out-of-fold predictions.

    Parameters
    ----------
    X : DataFrame (pandas or polars)
        Features only, one row per patient (or per slide: rows sharing ``ids`` stay together).
        Raw values: encoding, imputation, scaling happen inside every fit.
    y : array
        Binary label (classification) or structured survival target
        (:func:`immunodig.models.survival_target`). No missing values.
    ids : array
        Patient identifier per row (grouping unit).
    model : str
        ``logistic``, ``xgboost``, ``cox``, ``xgb-cox`` or ``xgb-aft``.
    n_splits, n_repeats, inner_splits : int
        Outer folds, outer repeats, inner folds.
    seed : int
        Seed of splits and models; same seed -> identical results.
    param_grid : dict, optional
        Overrides the model's default grid (``{}`` = fixed defaults, no inner loop).
    select_k : int, optional
        Keep the top-k features by univariate association, selected inside each fit.
    eval_times : array, optional
        Survival: times at which out-of-fold survival curves are stored.
    estimator : scikit-learn / scikit-survival estimator or Pipeline, optional
        Any unfitted estimator used instead of the named ``model``, under the same splits, inner
        loop and metrics: a classifier with ``predict_proba``, or a survival estimator whose
        ``predict`` is a risk score (higher = earlier event; no survival curves are stored). It
        receives the raw features, so encoding and imputation belong inside it (e.g. a Pipeline
        starting with :func:`immunodig.models.preprocessing.make_preprocessor`). ``param_grid``
        names its parameters (default: none searched); a ``random_state`` left None is set to
        ``seed``; ``model`` is then only its label (default ``estimator:<class name>``).

    Returns
    -------
    CVResult
    """
    if estimator is not None:
        return _cross_validate_estimator(X, y, ids, model, estimator, n_splits=n_splits, n_repeats=n_repeats,
                                         inner_splits=inner_splits, seed=seed, param_grid=param_grid)
    spec = get_model(model)
    X = as_frame(X).reset_index(drop=True)
    y = np.asarray(y)
    ids = np.asarray(ids).astype(str)
    if not (len(X) == len(y) == len(ids)):
        raise ValidationError("nested_cross_validate", [{
            "row": None, "column": None, "check": "X, y and ids differ in length"}])
    if spec.task == "survival" and y.dtype.names is None:
        raise ValidationError("nested_cross_validate", [{
            "row": None, "column": "outcome",
            "check": f"model {model!r} needs a survival target (time, event)"}])
    if spec.task == "classification" and y.dtype.names is not None:
        raise ValidationError("nested_cross_validate", [{
            "row": None, "column": "outcome", "check": f"model {model!r} needs a binary label"}])
    if spec.task == "classification":
        bad = ~np.isin(y.astype(float), (0.0, 1.0))
        if bad.any():
            raise ValidationError("nested_cross_validate", [{
                "row": None, "column": "label",
                "check": f"{int(bad.sum())} label(s) missing or not 0/1: drop unlabelled "
                         "patients first (evaluate_table does and counts them)"}])
        y = y.astype(int)
    check_outcome_classes(y, "nested_cross_validate")
    check_one_outcome_per_patient(y, ids)
    grid = list(ParameterGrid(spec.param_grid if param_grid is None else param_grid))
    if "model__random_state" in build_pipeline(model).get_params():
        grid = [{**g, "model__random_state": seed} for g in grid]
    splits = grouped_splits(ids, outcome_strata(y, spec.task), n_splits, n_repeats, seed)
    n = len(y)
    oof = np.full((n_repeats, n), np.nan)
    cut = np.full((n_repeats, n), np.nan)
    fold_of = np.full((n_repeats, n), -1, dtype=int)
    if spec.task == "survival":
        eval_times = default_eval_times(y) if eval_times is None else np.asarray(eval_times)
        oof_surv = np.full((n_repeats, n, len(eval_times)), np.nan)
    else:
        eval_times = oof_surv = None
    best_params = []
    for s in splits:
        Xtr, ytr = X.iloc[s.train], y[s.train]
        params, inner_score = select_params(Xtr, ytr, ids[s.train], model, spec.task, grid,
                                            inner_splits, fold_seed(seed, s.repeat, s.fold),
                                            select_k)
        pipe = build_pipeline(model, select_k=select_k, **params).fit(Xtr, ytr)
        oof[s.repeat, s.test] = _predict(pipe, X.iloc[s.test], spec.task)
        cut[s.repeat, s.test] = np.median(_predict(pipe, Xtr, spec.task))
        fold_of[s.repeat, s.test] = s.fold
        if oof_surv is not None:
            oof_surv[s.repeat, s.test] = _survival_curves(pipe, X.iloc[s.test], eval_times)
        best_params.append({"repeat": s.repeat, "fold": s.fold,
                            "params": {k: _jsonable(v) for k, v in params.items()},
                            "inner_score": None if np.isnan(inner_score) else inner_score})
    settings = {"scheme": "repeated stratified patient-grouped nested CV",
                "n_splits": n_splits, "n_repeats": n_repeats, "inner_splits": inner_splits,
                "seed": seed, "select_k": select_k,
                "param_grid": {k: [_jsonable(v) for v in vs]
                               for k, vs in (spec.param_grid if param_grid is None
                                             else param_grid).items()}}
    return CVResult(model=model, task=spec.task, ids=ids, y=y, oof=oof, train_cut=cut,
                    fold_of=fold_of, best_params=best_params, splits_key=splits_key(ids, splits),
                    settings=settings, feature_names=[str(c) for c in X.columns],
                    eval_times=eval_times, oof_surv=oof_surv)


def _cross_validate_estimator(X, y, ids, model: str, estimator, *, n_splits: int, n_repeats: int,
                              inner_splits: int, seed: int, param_grid: dict | None) -> CVResult:
    """:func:`nested_cross_validate` of an arbitrary estimator (same splits and inner loop)."""
    X = as_frame(X).reset_index(drop=True)
    y = np.asarray(y)
    ids = np.asarray(ids).astype(str)
    task = "survival" if y.dtype.names else "classification"
    if task == "classification":
        if not hasattr(estimator, "predict_proba"):
            raise ValidationError("nested_cross_validate", [{
                "row": None, "column": None, "check": f"estimator {type(estimator).__name__} has no predict_proba "
                                                      "(a binary outcome needs probabilities)"}])
        y = y.astype(int)
    check_outcome_classes(y, "nested_cross_validate")
    check_one_outcome_per_patient(y, ids)
    label = model if model != "logistic" else f"estimator:{type(estimator).__name__}"
    grid = list(ParameterGrid(param_grid or {}))
    seeds = {k: seed for k, v in estimator.get_params().items()
             if (k == "random_state" or k.endswith("__random_state")) and v is None}
    grid = [{**seeds, **g} for g in grid]
    factory = _estimator_factory(estimator)
    splits = grouped_splits(ids, outcome_strata(y, task), n_splits, n_repeats, seed)
    oof = np.full((n_repeats, len(y)), np.nan)
    cut = np.full_like(oof, np.nan)
    fold_of = np.full((n_repeats, len(y)), -1, dtype=int)
    best_params = []
    for s in splits:
        Xtr, ytr = X.iloc[s.train], y[s.train]
        params, inner_score = select_params(Xtr, ytr, ids[s.train], label, task, grid, inner_splits,
                                            fold_seed(seed, s.repeat, s.fold), factory=factory)
        pipe = factory(**params).fit(Xtr, ytr)
        oof[s.repeat, s.test] = _predict(pipe, X.iloc[s.test], task)
        cut[s.repeat, s.test] = np.median(_predict(pipe, Xtr, task))
        fold_of[s.repeat, s.test] = s.fold
        best_params.append({"repeat": s.repeat, "fold": s.fold,
                            "params": {k: _jsonable(v) for k, v in params.items()},
                            "inner_score": None if np.isnan(inner_score) else inner_score})
    settings = {"scheme": "repeated stratified patient-grouped nested CV", "n_splits": n_splits,
                "n_repeats": n_repeats, "inner_splits": inner_splits, "seed": seed, "select_k": None,
                "param_grid": {k: [_jsonable(v) for v in vs] for k, vs in (param_grid or {}).items()},
                "estimator": repr(estimator)}
    return CVResult(model=label, task=task, ids=ids, y=y, oof=oof, train_cut=cut, fold_of=fold_of,
                    best_params=best_params, splits_key=splits_key(ids, splits), settings=settings,
                    feature_names=[str(c) for c in X.columns])


def check_one_outcome_per_patient(y: np.ndarray, ids: np.ndarray) -> None:
    """Rows of one patient (e.g. slides) must carry the same outcome."""
    cols = {"time": y["time"], "event": y["event"]} if y.dtype.names else {"label": y}
    frame = pd.DataFrame({**cols, "id": ids})
    varies = frame.groupby("id").nunique().gt(1)
    bad = [c for c in cols if varies[c].any()]
    if bad:
        raise ValidationError("nested_cross_validate", [{
            "row": None, "column": c,
            "check": f"{int(varies[c].sum())} patient(s) with different outcomes on their rows; "
                     "a patient has one outcome"} for c in bad])


def _survival_curves(pipe, X, times) -> np.ndarray:
    Xt = pipe[:-1].transform(X)
    return pipe[-1].predict_survival_function(Xt, times)


def _jsonable(v):
    return v.item() if isinstance(v, np.generic) else v


def fit_final_model(X, y, ids, model: str, *, seed: int = 0, inner_splits: int = 5,
                    param_grid: dict | None = None, select_k: int | None = None):
    """Fit a named model on all patients, hyper-parameters chosen by grouped K-fold CV.

    The returned pipeline is the one to save and apply to new patients; its expected
    performance is the nested-CV estimate of the same procedure, not its fit on these data.

    Returns
    -------
    (pipeline, params) : fitted sklearn Pipeline and the chosen parameters
    """
    spec = get_model(model)
    X = as_frame(X).reset_index(drop=True)
    y = np.asarray(y)
    ids = np.asarray(ids).astype(str)
    check_outcome_classes(y, "fit_final_model")
    grid = list(ParameterGrid(spec.param_grid if param_grid is None else param_grid))
    if "model__random_state" in build_pipeline(model).get_params():
        grid = [{**g, "model__random_state": seed} for g in grid]
    params, _ = select_params(X, y, ids, model, spec.task, grid, inner_splits, seed, select_k)
    return build_pipeline(model, select_k=select_k, **params).fit(X, y), params
