"""Performance metrics for binary outcomes and censored survival times.

Classification: ROC AUC (Mann-Whitney), PR AUC (average precision), Brier score, calibration
slope and intercept (logistic recalibration), calibration-curve data, decision-curve net benefit.

Survival (targets as structured arrays with ``event`` and ``time``; predictions are risk scores,
higher = earlier event): Harrell's C, Uno's IPCW C, cumulative/dynamic time-dependent AUC,
the IPCW (Graf) Brier score and its integral, the Cox calibration slope of a risk score, the
observed/expected ratio, and the restricted mean survival time. The censoring distribution G is the
Kaplan-Meier estimate of the censoring times of the data the metric is computed on.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

# --------------------------------------------------------------------------- classification


def roc_auc(y, p) -> float:
    """ROC AUC as the Mann-Whitney probability that a case outranks a control (ties = 1/2)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    n1, n0 = y.sum(), (~y).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def pr_auc(y, p) -> float:
    """Area under the precision-recall curve (average precision); baseline = prevalence."""
    y = np.asarray(y).astype(int)
    if y.min() == y.max():
        return float("nan")
    return float(average_precision_score(y, p))


def brier(y, p) -> float:
    """Mean squared difference between predicted probability and outcome."""
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _logistic_fit(y: np.ndarray, X: np.ndarray, offset: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """Unpenalised logistic regression by Newton-Raphson (few parameters, with offset)."""
    beta = np.zeros(X.shape[1])
    for _ in range(n_iter):
        eta = X @ beta + offset
        mu = expit(eta)
        w = np.maximum(mu * (1 - mu), 1e-12)
        step = np.linalg.lstsq(X.T @ (w[:, None] * X), X.T @ (y - mu), rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def calibration(y, p) -> dict:
    """Calibration slope and intercept by logistic recalibration on the logit of ``p``.

    ``slope`` is b in logit P(y=1) = a + b logit(p) (ideal 1; below 1 = over-fitted, too
    extreme predictions). ``intercept`` is calibration-in-the-large: a with b fixed at 1
    (ideal 0; positive = risks underestimated). Also returns mean predicted risk and observed
    rate.
    """
    y = np.asarray(y, dtype=float)
    lp = _logit(p)
    ones = np.ones_like(lp)
    if y.min() == y.max():
        slope = intercept = float("nan")
    else:
        slope = float(_logistic_fit(y, np.column_stack([ones, lp]), np.zeros_like(lp))[1])
        intercept = float(_logistic_fit(y, ones[:, None], lp)[0])
    return {"slope": slope, "intercept": intercept,
            "mean_predicted": float(np.mean(p)), "observed_rate": float(np.mean(y))}


def calibration_curve(y, p, n_bins: int = 5) -> dict:
    """Calibration-plot data: quantile bins of predicted risk with observed event rates
    (``mean_predicted``, ``observed``, Wilson ``ci_low`` / ``ci_high``, ``n``); computed by
    :func:`immunodig.evaluation.curves.calibration_curve_ci`."""
    from immunodig.evaluation.curves import calibration_curve_ci

    return calibration_curve_ci(y, p, n_bins).as_dict()


def net_benefit(y, p, thresholds=None) -> dict:
    """Decision-curve analysis: net benefit of the model, treat-all and treat-none.

    NB(pt) = TP/n - FP/n * pt / (1 - pt) at threshold probability ``pt``.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    thresholds = np.arange(0.05, 0.65, 0.05) if thresholds is None else np.asarray(thresholds)
    n = len(y)
    prev = y.mean()
    model, treat_all = [], []
    for pt in thresholds:
        odds = pt / (1 - pt)
        pos = p >= pt
        model.append(float((pos & y).sum() / n - (pos & ~y).sum() / n * odds))
        treat_all.append(float(prev - (1 - prev) * odds))
    return {"threshold": [float(t) for t in thresholds], "model": model,
            "treat_all": treat_all, "treat_none": [0.0] * len(thresholds)}


# --------------------------------------------------------------------------------- survival


def _time_event(y) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y)
    return y["time"].astype(float), y["event"].astype(bool)


def _concordant(ri: np.ndarray, rj: np.ndarray, tied_tol: float) -> np.ndarray:
    tie = np.abs(ri - rj) <= tied_tol
    return np.where(tie, 0.5, (ri > rj).astype(float))


def harrell_c(y, risk, tied_tol: float = 1e-8, chunk: int = 2048) -> float:
    """Harrell's concordance index.

    A pair (i, j) is comparable when i has an event and ``t_i < t_j``, or ``t_i == t_j`` and j
    is censored; it is concordant when ``risk_i > risk_j``; risks within ``tied_tol`` (floating
    noise between patients with identical covariates) count 1/2.
    """
    time, event = _time_event(y)
    risk = np.asarray(risk, dtype=float)
    num = den = 0.0
    idx = np.flatnonzero(event)
    for s in range(0, len(idx), chunk):
        i = idx[s:s + chunk]
        ti, ri = time[i][:, None], risk[i][:, None]
        comp = (time[None, :] > ti) | ((time[None, :] == ti) & ~event[None, :])
        num += np.sum(comp * _concordant(ri, risk[None, :], tied_tol))
        den += comp.sum()
    return float(num / den) if den else float("nan")


def censoring_survival(y):
    """Kaplan-Meier estimate G of the censoring distribution.

    Returns a function ``G(t, left=False)``: the right-continuous step ``G(t) = P(C > t)``, or
    its left limit ``G(t-) = P(C >= t)`` with ``left=True``. At tied times events are taken to
    occur before censorings, so patients with an event at ``u`` are not at risk of being
    censored at ``u`` (as scikit-survival's ``CensoringDistributionEstimator``).
    """
    time, event = _time_event(y)
    cens = ~event
    uniq = np.unique(time[cens])
    n_at_risk = np.array([(time >= u).sum() - (event & (time == u)).sum() for u in uniq],
                         dtype=float)
    d = np.array([(cens & (time == u)).sum() for u in uniq], dtype=float)
    surv = np.cumprod(1 - d / n_at_risk)

    def G(t, left: bool = False) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if not len(uniq):  # nobody censored
            return np.ones_like(t)
        k = np.searchsorted(uniq, t, side="left" if left else "right") - 1
        return np.where(k >= 0, surv[np.clip(k, 0, None)], 1.0)

    return G


#: IPC weights ``1 / G`` above this (G below 5 %) make a metric rest on a few patients.
MAX_IPCW = 20.0


def _warn_weights(g: np.ndarray, metric: str) -> None:
    """Warn when inverse-probability-of-censoring weights explode (G near 0)."""
    g = g[np.isfinite(g)]
    if len(g) and (g.min() <= 0 or 1 / g.min() > MAX_IPCW):
        import warnings

        from immunodig.errors import IPCWWeightWarning

        warnings.warn(f"{metric}: censoring survival G falls to {g.min():.3g}, IPC weights up to "
                      f"{1 / max(g.min(), 1e-300):.3g}; the estimate rests on a few late "
                      "patients: choose a horizon tau inside the follow-up",
                      IPCWWeightWarning, stacklevel=3)


def uno_c(y, risk, tau: float | None = None, y_train=None, tied_tol: float = 1e-8,
          chunk: int = 2048) -> float:
    """Uno's IPCW concordance index, truncated at ``tau``.

    Comparable pairs as in :func:`harrell_c` with ``t_i < tau``; each weighted by
    ``G(t_i-)^-2``, the inverse squared probability of being still uncensored just before
    ``t_i`` (``G`` estimated on ``y_train``, default ``y`` itself). ``tau=None`` uses all
    events. Warns (:class:`immunodig.errors.IPCWWeightWarning`) when weights exceed
    ``MAX_IPCW ** 2``.
    """
    time, event = _time_event(y)
    risk = np.asarray(risk, dtype=float)
    G = censoring_survival(y if y_train is None else y_train)
    tau = np.inf if tau is None else tau
    g = G(time, left=True)
    ok = event & (time < tau)
    _warn_weights(g[ok], "Uno's C")
    ok &= g > 0
    idx = np.flatnonzero(ok)
    num = den = 0.0
    for s in range(0, len(idx), chunk):
        i = idx[s:s + chunk]
        ti, ri, wi = time[i][:, None], risk[i][:, None], 1.0 / g[i][:, None] ** 2
        comp = (time[None, :] > ti) | ((time[None, :] == ti) & ~event[None, :])
        num += np.sum(wi * comp * _concordant(ri, risk[None, :], tied_tol))
        den += np.sum(wi * comp)
    return float(num / den) if den else float("nan")


def time_dependent_auc(y, risk, times, y_train=None) -> dict:
    """Cumulative/dynamic AUC at each time: cases ``t_i <= t`` with event (IPC-weighted),
    controls ``t_j > t``. Returns ``{"times": [...], "auc": [...], "mean_auc": float}`` where
    the mean is weighted by the change of the Kaplan-Meier estimate (as scikit-survival)."""
    time, event = _time_event(y)
    risk = np.asarray(risk, dtype=float)
    G = censoring_survival(y if y_train is None else y_train)
    g = G(time)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    _warn_weights(g[event & (time <= times.max())], "time-dependent AUC")
    aucs = []
    for t in times:
        case = event & (time <= t) & (g > 0)
        ctrl = time > t
        if not case.any() or not ctrl.any():
            aucs.append(float("nan"))
            continue
        w = 1.0 / g[case]
        rc = risk[case][:, None]
        rk = risk[ctrl][None, :]
        conc = ((rc > rk) + 0.5 * (rc == rk)).sum(axis=1)
        aucs.append(float(np.sum(w * conc) / (np.sum(w) * ctrl.sum())))
    aucs_a = np.asarray(aucs)
    km = _km(time, event, times)
    d = -np.diff(np.concatenate([[1.0], km]))
    ok = ~np.isnan(aucs_a)
    weight = d[ok].sum()
    mean_auc = float(np.sum(aucs_a[ok] * d[ok]) / weight) if weight > 0 else float("nan")
    return {"times": times.tolist(), "auc": aucs, "mean_auc": mean_auc}


def _km(time: np.ndarray, event: np.ndarray, at: np.ndarray) -> np.ndarray:
    uniq = np.unique(time[event])
    n_at_risk = np.array([(time >= u).sum() for u in uniq], dtype=float)
    d = np.array([(event & (time == u)).sum() for u in uniq], dtype=float)
    surv = np.cumprod(1 - d / n_at_risk)
    if not len(uniq):
        return np.ones(len(np.atleast_1d(at)))
    k = np.searchsorted(uniq, at, side="right") - 1
    return np.where(k >= 0, surv[np.clip(k, 0, None)], 1.0)


def brier_scores(y, surv_prob, times, y_train=None) -> np.ndarray:
    """IPCW (Graf) Brier score at each time.

    Parameters
    ----------
    surv_prob : array (n, len(times))
        Predicted S(t) per patient and time.
    """
    time, event = _time_event(y)
    G = censoring_survival(y if y_train is None else y_train)
    g_i = G(time)
    surv_prob = np.asarray(surv_prob, dtype=float)
    times = np.asarray(times, dtype=float)
    _warn_weights(np.concatenate([g_i[event & (time <= times.max())], G(times)]),
                  "Brier score")
    out = []
    for k, t in enumerate(times):
        s = surv_prob[:, k]
        had = event & (time <= t)
        with np.errstate(divide="ignore", invalid="ignore"):
            term1 = np.where(had, s ** 2 / g_i, 0.0)
            term2 = np.where(time > t, (1 - s) ** 2 / G(t), 0.0)
        out.append(np.mean(term1 + term2))
    return np.asarray(out)


def integrated_brier_score(y, surv_prob, times, y_train=None) -> float:
    """Trapezoidal integral of the IPCW Brier score over ``times``, divided by their range."""
    times = np.asarray(times, dtype=float)
    bs = brier_scores(y, surv_prob, times, y_train)
    return float(np.trapezoid(bs, times) / (times[-1] - times[0]))


def cox_calibration_slope(y, risk, n_iter: int = 50) -> float:
    """Calibration slope of a risk score: the coefficient b of ``h(t) = h0(t) exp(b * risk)``.

    Unpenalised one-covariate Cox fit (Breslow ties, Newton-Raphson). Ideal 1 for a linear
    predictor (log relative hazard) applied to new patients; below 1 = predictions too
    extreme (over-fitting). For risk scores on another scale (xgb-aft: minus log-time) only
    its sign and size relative to other models are meaningful.
    """
    time, event = _time_event(y)
    x = np.asarray(risk, dtype=float)
    x = x - x.mean()
    order = np.argsort(-time, kind="stable")  # decreasing time: risk sets are prefixes
    t, e, x = time[order], event[order], x[order]
    # risk set of row i: rows with time >= t_i, a prefix ending at the last row tied with i
    block_end = np.searchsorted(-t, -t, side="right") - 1
    b = 0.0
    for _ in range(n_iter):
        w = np.exp(b * x)
        s0, s1, s2 = np.cumsum(w), np.cumsum(w * x), np.cumsum(w * x * x)
        r0, r1, r2 = s0[block_end], s1[block_end], s2[block_end]
        grad = np.sum(e * (x - r1 / r0))
        info = np.sum(e * (r2 / r0 - (r1 / r0) ** 2))
        if info <= 0:
            return float("nan")
        step = grad / info
        b += step
        if abs(step) < 1e-10:
            break
    return float(b)


def observed_expected(y, cumulative_hazard) -> float:
    """Calibration-in-the-large of a survival model: observed events / expected events, where
    the expected count is the sum of each patient's predicted cumulative hazard ``H(T_i)`` at
    their own follow-up time (ideal 1; above 1 = risks underestimated)."""
    _, event = _time_event(y)
    expected = float(np.sum(np.asarray(cumulative_hazard, dtype=float)))
    return float(event.sum() / expected) if expected > 0 else float("nan")


def rmst(y, horizon: float) -> float:
    """Restricted mean survival time: area under the Kaplan-Meier curve from 0 to ``horizon``."""
    time, event = _time_event(y)
    jumps = np.unique(time[event & (time < horizon)])
    steps = np.r_[0.0, jumps, horizon]
    surv = np.r_[1.0, _km(time, event, jumps)]
    return float(np.sum(surv * np.diff(steps)))
