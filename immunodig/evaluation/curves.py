"""Curve data, computed once here and drawn by :mod:`immunodig.report`: calibration curves
(binary outcome, or survival at a horizon against Kaplan-Meier) and Kaplan-Meier curves by group.

Calibration bins are quantile groups of the predictions (fewer when predictions tie). For a
binary outcome the observed rate of a bin has a Wilson 95 % interval; for survival the observed
risk by the horizon is ``1 - KM(horizon)`` of the bin with lifelines' (log-log) 95 % interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.errors import ValidationError


@dataclass(frozen=True)
class CalibrationCurve:
    """Binned calibration of predicted probabilities (or risks by a horizon).

    Attributes
    ----------
    mean_predicted, observed : numpy.ndarray
        Mean prediction and observed event rate per bin.
    ci_low, ci_high : numpy.ndarray
        95 % interval of the observed rate per bin.
    counts : numpy.ndarray
        Patients per bin.
    predictions : numpy.ndarray
        All predictions (drawn as a rug).
    horizon : float or None
        Survival: the time the risks refer to.
    """

    mean_predicted: np.ndarray
    observed: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    counts: np.ndarray
    predictions: np.ndarray
    horizon: float | None = None

    def as_dict(self) -> dict:
        """JSON-ready bins (``mean_predicted``, ``observed``, ``ci_low``, ``ci_high``, ``n``)."""
        out = {"mean_predicted": self.mean_predicted.tolist(),
               "observed": self.observed.tolist(), "ci_low": self.ci_low.tolist(),
               "ci_high": self.ci_high.tolist(), "n": [int(c) for c in self.counts]}
        if self.horizon is not None:
            out["horizon"] = float(self.horizon)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "CalibrationCurve":
        """Rebuild from :meth:`as_dict` (a summary's ``calibration_curve``; no rug)."""
        mp = np.asarray(d["mean_predicted"], dtype=float)
        obs = np.asarray(d["observed"], dtype=float)
        return cls(mp, obs, np.asarray(d.get("ci_low", obs), dtype=float),
                   np.asarray(d.get("ci_high", obs), dtype=float),
                   np.asarray(d["n"], dtype=int), np.empty(0), d.get("horizon"))


def wilson_interval(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``k`` successes in ``n`` trials (elementwise)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def quantile_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index (0..) of each prediction in quantile groups; ties share a bin."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))


def calibration_curve_ci(y_true, y_prob, n_bins: int = 5) -> CalibrationCurve:
    """Bin predictions into quantile groups and compare observed with predicted rates.

    Parameters
    ----------
    y_true : array of 0/1
    y_prob : array of float in [0, 1]
    n_bins : int
        Number of quantile bins (fewer when predictions tie).
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    keep = np.isfinite(y) & np.isfinite(p)
    y, p = y[keep], p[keep]
    which = quantile_bins(p, n_bins)
    bins = np.unique(which)
    counts = np.array([(which == b).sum() for b in bins])
    events = np.array([y[which == b].sum() for b in bins])
    mean_pred = np.array([p[which == b].mean() for b in bins])
    low, high = wilson_interval(events, counts)
    return CalibrationCurve(mean_pred, events / counts, low, high, counts, p)


def _km_at(time: np.ndarray, event: np.ndarray, horizon: float) -> tuple[float, float, float]:
    """Kaplan-Meier S(horizon) with lifelines' 95 % interval."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(time, event)
    ci = km.confidence_interval_survival_function_
    k = np.searchsorted(km.survival_function_.index.to_numpy(float), horizon, side="right") - 1
    return (float(km.survival_function_.iloc[k, 0]), float(ci.iloc[k, 0]),
            float(ci.iloc[k, 1]))


def survival_calibration_curve(y, surv_at_horizon, horizon: float,
                               n_bins: int = 5) -> CalibrationCurve:
    """Predicted risk ``1 - S(horizon)`` against observed ``1 - KM(horizon)`` per quantile bin.

    Parameters
    ----------
    y : structured array (``event``, ``time``)
    surv_at_horizon : array
        Predicted S(horizon) per patient.
    horizon : float
        Time the risks refer to (inside the follow-up).
    """
    time, event = np.asarray(y)["time"].astype(float), np.asarray(y)["event"].astype(bool)
    risk = 1 - np.asarray(surv_at_horizon, dtype=float)
    which = quantile_bins(risk, n_bins)
    bins = np.unique(which)
    obs, lo, hi = [], [], []
    for b in bins:
        s, s_lo, s_hi = _km_at(time[which == b], event[which == b], horizon)
        obs.append(1 - s)
        lo.append(1 - s_hi)
        hi.append(1 - s_lo)
    return CalibrationCurve(np.array([risk[which == b].mean() for b in bins]), np.array(obs),
                            np.array(lo), np.array(hi),
                            np.array([(which == b).sum() for b in bins]), risk, float(horizon))


@dataclass(frozen=True)
class KMGroup:
    """Kaplan-Meier estimate of one group (step function starting at time 0)."""

    name: str
    time: np.ndarray
    survival: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: int
    events: int


@dataclass(frozen=True)
class KMResult:
    """Curves of every group, at-risk counts at ``at_risk_times`` and the log-rank p."""

    groups: list[KMGroup]
    at_risk_times: np.ndarray
    at_risk: dict[str, list[int]]
    logrank_p: float


def round_ticks(t_max: float, max_ticks: int = 6) -> np.ndarray:
    """Round times 0, step, 2 step, ... <= ``t_max`` (step 1, 2, 2.5 or 5 x 10^k), at most
    ``max_ticks`` of them: where a reader expects axis ticks and at-risk counts."""
    if not np.isfinite(t_max) or t_max <= 0:
        return np.array([0.0])
    base = 10.0 ** np.floor(np.log10(t_max / max_ticks))
    step = next(m * base for m in (1, 2, 2.5, 5, 10, 20)
                if np.floor(t_max / (m * base)) + 1 <= max_ticks)
    return np.arange(0.0, t_max + 1e-9 * step, step)


def km_by_group(time, event, group, order: list[str] | None = None,
                at_risk_times=None) -> KMResult:
    """Kaplan-Meier curves per group and the log-rank test across groups.

    Parameters
    ----------
    time, event : arrays
        Follow-up time and event indicator (1 = event) per patient.
    group : array of str
        Group label per patient (e.g. "low risk" / "high risk").
    order : list of str, optional
        Order of the groups (default: sorted labels).
    at_risk_times : array, optional
        Times at which patients at risk are counted (default: round axis ticks from 0 to the
        last follow-up, :func:`round_ticks`; the plot puts its x ticks there).
    """
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import multivariate_logrank_test

    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    g = np.asarray(group).astype(str)
    keep = np.isfinite(t) & np.isfinite(e)
    t, e, g = t[keep], e[keep].astype(int), g[keep]
    if len(t) == 0:
        raise ValidationError("Kaplan-Meier", [{"row": None, "column": "time",
                                                "check": "no patient with time and event"}])
    names = order or sorted(set(g))
    if at_risk_times is None:
        at_risk_times = round_ticks(float(t.max()))
    at_risk_times = np.asarray(at_risk_times, dtype=float)
    groups, at_risk = [], {}
    for name in names:
        m = g == name
        if not m.any():
            continue
        km = KaplanMeierFitter().fit(t[m], e[m])
        ci = km.confidence_interval_survival_function_
        groups.append(KMGroup(name, km.survival_function_.index.to_numpy(dtype=float),
                              km.survival_function_.iloc[:, 0].to_numpy(),
                              ci.iloc[:, 0].to_numpy(), ci.iloc[:, 1].to_numpy(),
                              int(m.sum()), int(e[m].sum())))
        at_risk[name] = [int((t[m] >= s).sum()) for s in at_risk_times]
    p = float("nan")
    if len(groups) > 1:
        p = float(multivariate_logrank_test(t, g, e).p_value)
    return KMResult(groups, at_risk_times, at_risk, p)
