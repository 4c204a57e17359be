"""Kaplan-Meier curves of predicted risk groups, defined on out-of-fold predictions only.

The cut is pre-specified: a test patient is "high risk" when its out-of-fold risk exceeds the
median risk the same fitted model gave its *training* patients. The cut is never searched over
outcomes (an optimised cut-point makes even noise look prognostic; see the tests).
"""

from __future__ import annotations

import numpy as np


def risk_groups(result, repeat: int = 0) -> np.ndarray:
    """Boolean high-risk indicator per row for one CV repeat."""
    return result.oof[repeat] > result.train_cut[repeat]


def logrank(y, high: np.ndarray) -> dict:
    """Two-group log-rank test of a structured survival target (``high`` = group 1).

    Returns the chi-square statistic (1 df) and its p-value.
    """
    from scipy.stats import chi2

    t, e = y["time"].astype(float), y["event"].astype(bool)
    high = np.asarray(high, dtype=bool)
    if high.all() or (~high).all():
        return {"p": float("nan"), "statistic": float("nan")}
    times = np.unique(t[e])
    order = np.sort(t)
    n = len(t) - np.searchsorted(order, times, side="left")
    n1 = high.sum() - np.searchsorted(np.sort(t[high]), times, side="left")
    d = np.array([np.sum(e & (t == u)) for u in times], dtype=float)
    d1 = np.array([np.sum(e & high & (t == u)) for u in times], dtype=float)
    expected = d * n1 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.where(n > 1, d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1), 0.0)
    stat = float(np.sum(d1 - expected) ** 2 / np.sum(var))
    return {"p": float(chi2.sf(stat, 1)), "statistic": stat}


def risk_group_summary(result) -> dict:
    """Group sizes, events and log-rank p for every repeat, plus the median p over repeats."""
    per_repeat = []
    for r in range(result.oof.shape[0]):
        high = risk_groups(result, r)
        lr = logrank(result.y, high)
        per_repeat.append({"repeat": r, "n_high": int(high.sum()), "n_low": int((~high).sum()),
                           "events_high": int(result.y["event"][high].sum()),
                           "events_low": int(result.y["event"][~high].sum()), "logrank_p": lr["p"]})
    return {"cut": "median of training-fold risk (pre-specified)",
            "median_logrank_p": float(np.nanmedian([p["logrank_p"] for p in per_repeat])),
            "per_repeat": per_repeat}


def km_curves(result, repeat: int = 0) -> dict:
    """Kaplan-Meier estimates of the low- and high-risk groups of one repeat.

    Returns ``{"low": DataFrame, "high": DataFrame, "logrank_p": float}``; each frame has
    ``time, survival, ci_low, ci_high``.
    """
    import pandas as pd

    km = risk_group_km(result, repeat)
    out = {g.name.split()[0]: pd.DataFrame({"time": g.time, "survival": g.survival,
                                           "ci_low": g.ci_low, "ci_high": g.ci_high})
           for g in km.groups}
    out["logrank_p"] = logrank(result.y, risk_groups(result, repeat))["p"]
    return out


def risk_group_km(result, repeat: int = 0):
    """Kaplan-Meier curves of the low and high out-of-fold risk groups (a ``KMResult``)."""
    from immunodig.evaluation.curves import km_by_group

    high = risk_groups(result, repeat)
    group = np.where(high, "high predicted risk", "low predicted risk")
    return km_by_group(result.y["time"], result.y["event"], group,
                       order=["low predicted risk", "high predicted risk"])
