"""Bootstrap confidence intervals by resampling patients.

Method (documented contract): the out-of-fold predictions of every CV repeat are kept; each
bootstrap replicate draws patients with replacement (all rows of a drawn patient come along),
computes the metric on every repeat's predictions for those patients and averages over repeats.
The percentile interval of these replicates is reported; where it does not contain the point
estimate (a bootstrap distribution shifted away from it: too few patients or events, most
replicates undefined) no interval is given (NaN) rather than one that excludes its own estimate.
It reflects the sampling of patients
given the fitted models; the point estimate is the mean of the metric over repeats. Because it
ignores the variability of refitting the models, it is too narrow in small cohorts; the reported
AUC / C-index intervals use :mod:`immunodig.evaluation.cv_interval` instead.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def bootstrap_indices(groups, n_boot: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of ``n_boot`` patient-level bootstrap samples (deterministic in ``seed``)."""
    groups = np.asarray(groups).astype(str)
    uniq, inverse = np.unique(groups, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == k) for k in range(len(uniq))]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(uniq), size=len(uniq))
        out.append(np.concatenate([rows_of[k] for k in drawn]))
    return out


def _over_repeats(metric: Callable, y, preds: np.ndarray, idx=None) -> float:
    vals = [metric(y if idx is None else y[idx], p if idx is None else p[idx]) for p in preds]
    return float(np.nanmean(vals)) if not np.all(np.isnan(vals)) else float("nan")


def bootstrap_metric(metric: Callable, y, preds, groups, n_boot: int = 1000, seed: int = 0,
                     alpha: float = 0.05) -> dict:
    """Point estimate (mean over repeats) and percentile CI of ``metric(y, pred)``.

    Parameters
    ----------
    metric : callable
        ``metric(y, pred) -> float``.
    y : array
        Outcome per row (labels or structured survival target).
    preds : array (n_repeats, n) or (n,)
        Out-of-fold predictions of each repeat.
    groups : array
        Patient of each row (resampling unit).
    """
    preds = np.atleast_2d(np.asarray(preds, dtype=float))
    y = np.asarray(y)
    est = _over_repeats(metric, y, preds)
    reps = np.array([_over_repeats(metric, y, preds, i)
                     for i in bootstrap_indices(groups, n_boot, seed)])
    valid = int(np.sum(~np.isnan(reps)))
    lo, hi = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2]) if valid else (np.nan, np.nan)
    out = {"estimate": est, "ci": [float(lo), float(hi)], "n_boot": n_boot,
           "n_boot_valid": valid}
    if not lo <= est <= hi:
        out["ci"] = [float("nan")] * 2
        out["note"] = ("no interval: the estimate is undefined, or the percentile interval "
                       "does not contain it")
    return out


def paired_difference(metric: Callable, y, preds_a, preds_b, groups, n_boot: int = 1000,
                      seed: int = 0, alpha: float = 0.05) -> dict:
    """Difference ``metric(a) - metric(b)`` on the same patients and bootstrap samples.

    Both prediction sets must come from the same splits (same seed and patients), so the
    difference is paired; its CI excluding 0 is evidence that ``a`` differs from ``b``.
    """
    a = np.atleast_2d(np.asarray(preds_a, dtype=float))
    b = np.atleast_2d(np.asarray(preds_b, dtype=float))
    y = np.asarray(y)

    def diff(idx=None) -> float:
        return _over_repeats(metric, y, a, idx) - _over_repeats(metric, y, b, idx)

    reps = np.array([diff(i) for i in bootstrap_indices(groups, n_boot, seed)])
    lo, hi = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2])
    return {"estimate": diff(), "ci": [float(lo), float(hi)], "n_boot": n_boot,
            "p_boot": float(np.clip(2 * min(np.nanmean(reps <= 0), np.nanmean(reps >= 0)),
                                    1 / n_boot, 1.0))}
