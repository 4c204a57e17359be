"""External (or temporal) validation: a model fitted on cohort A, scored on cohort B.

The saved pipeline is applied unchanged (no refitting, no recalibration) to the patients of
B; several rows of one patient are averaged (as in the cross-validation summaries). Intervals are
percentile bootstraps over B's patients with the model held fixed, which is the right
uncertainty here: the question is how this fitted model performs in B.

Calibration in B:

- binary: slope and intercept of logistic recalibration (:func:`metrics.calibration`);
- survival: the Cox calibration slope of the risk score (:func:`metrics.cox_calibration_slope`),
  calibration-in-the-large as observed / expected events (expected = sum of each patient's
  predicted cumulative hazard at their own follow-up time, :func:`metrics.observed_expected`),
  and at each horizon the mean predicted risk against ``1 - KM(h)`` of B.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunodig.evaluation import metrics as M
from immunodig.evaluation.bootstrap import bootstrap_metric
from immunodig.evaluation.curves import survival_calibration_curve
from immunodig.evaluation.tabular import Outcome, prepare_table

VALIDATION_EXTERNAL = "external (fitted model applied unchanged to a cohort it never saw)"


def _per_patient(y, pred, ids, surv=None):
    frame = pd.DataFrame({"id": ids, "row": np.arange(len(ids))})
    first = frame.groupby("id", sort=True)["row"].first().to_numpy()
    codes = pd.factorize(pd.Series(ids), sort=True)[0]
    counts = np.bincount(codes)
    mean = np.bincount(codes, weights=pred) / counts
    if surv is not None:
        surv = np.stack([np.bincount(codes, weights=surv[:, k]) / counts
                         for k in range(surv.shape[1])], axis=1)
    return y[first], mean, surv


def _surv_at_own_time_and_horizons(pipe, X, time: np.ndarray, horizons: np.ndarray,
                                   chunk: int = 512) -> np.ndarray:
    """Predicted S at each patient's own follow-up time (column 0) and at each horizon."""
    times = np.unique(np.concatenate([time, horizons]))
    Xt = pipe[:-1].transform(X)
    own_idx = np.searchsorted(times, time)
    h_idx = np.searchsorted(times, horizons)
    out = np.empty((len(time), 1 + len(horizons)))
    for start in range(0, len(time), chunk):
        rows = slice(start, start + chunk)
        surv = pipe[-1].predict_survival_function(Xt.iloc[rows], times)
        out[rows, 0] = surv[np.arange(surv.shape[0]), own_idx[rows]]
        out[rows, 1:] = surv[:, h_idx]
    return out


def external_validation(pipe, meta: dict, df: pd.DataFrame, id_col: str, outcome: Outcome, *,
                        n_boot: int = 1000, seed: int = 0, horizons=None,
                        source: str = "table") -> dict:
    """Score a fitted pipeline (``load_model`` output) on a new cohort's table.

    Returns a JSON-ready dict with ``auc`` / ``auc_ci`` or ``c_index`` / ``c_index_ci`` and
    ``calibration``; ``n`` patients, ``n_events`` patients with an event.
    """
    from immunodig.evaluation.nested_cv import check_one_outcome_per_patient

    X, y, ids, notes = prepare_table(df, id_col, outcome, list(meta["features"]), source,
                                     drop_uninformative=False)  # the model's own columns
    check_one_outcome_per_patient(y, ids)
    boot = {"n_boot": n_boot, "seed": seed}
    out = {"validation": VALIDATION_EXTERNAL, "model": meta.get("model"),
           "task": meta.get("task"), "fitted_on": meta.get("source") or meta.get("outcome"),
           "fitted_n": meta.get("n_patients"), "source": source,
           "n_rows": int(len(ids)), **notes}
    if meta["task"] == "classification":
        y, p, _ = _per_patient(y, pipe.predict_proba(X)[:, 1], ids)
        pid = np.arange(len(y))
        auc = bootstrap_metric(M.roc_auc, y, p, pid, **boot)
        br = bootstrap_metric(M.brier, y, p, pid, **boot)
        slope = bootstrap_metric(lambda a, b: M.calibration(a, b)["slope"], y, p, pid, **boot)
        out.update(n=int(len(y)), n_events=int(y.sum()), auc=auc["estimate"], auc_ci=auc["ci"],
                   brier=br["estimate"], brier_ci=br["ci"], calibration=M.calibration(y, p),
                   calibration_slope_ci=slope["ci"], calibration_curve=M.calibration_curve(y, p))
        return out
    risk = pipe.predict(X)
    horizons = (np.quantile(y["time"][y["event"]], [0.25, 0.5, 0.75]) if horizons is None
                else np.asarray(horizons, dtype=float))
    stacked = _surv_at_own_time_and_horizons(pipe, X, y["time"], horizons)
    y, risk, stacked = _per_patient(y, risk, ids, stacked)
    own, at_h = stacked[:, 0], stacked[:, 1:]
    pid = np.arange(len(y))
    c = bootstrap_metric(M.harrell_c, y, risk, pid, **boot)
    slope = bootstrap_metric(M.cox_calibration_slope, y, risk, pid, **boot)
    H = -np.log(np.clip(own, 1e-300, 1.0))
    oe = bootstrap_metric(lambda yy, hh: M.observed_expected(yy, hh), y, H, pid, **boot)
    at = []
    for k, h in enumerate(horizons):
        at.append({"horizon": float(h), "mean_predicted": float(np.mean(1 - at_h[:, k])),
                   "observed_rate": float(1 - M._km(y["time"], y["event"], np.array([h]))[0]),
                   "curve": survival_calibration_curve(y, at_h[:, k], h).as_dict()})
    out.update(n=int(len(y)), n_events=int(y["event"].sum()), c_index=c["estimate"],
               c_index_ci=c["ci"], uno_c=M.uno_c(y, risk, tau=float(horizons[-1])),
               uno_tau=float(horizons[-1]),
               calibration={"slope": slope["estimate"], "slope_ci": slope["ci"],
                            "o_e_ratio": oe["estimate"], "o_e_ratio_ci": oe["ci"],
                            "intercept": float(np.log(oe["estimate"]))},
               calibration_method=("slope: Cox regression of B's outcome on the risk score; "
                                   "o_e_ratio: observed / expected events (expected: sum of "
                                   "predicted cumulative hazards at own follow-up); intercept: "
                                   "log(O/E), calibration-in-the-large"),
               calibration_at_horizons=at,
               ci_method=f"percentile bootstrap over B's patients, {n_boot} replicates")
    return out
