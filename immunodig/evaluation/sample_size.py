"""Minimum sample size for developing a prediction model (Riley et al., BMJ 2020; Stat Med 2019),
as in the R/Stata package ``pmsampsize``.

For ``p`` predictor parameters and an anticipated Cox-Snell R² (``r2_cs``):

1. expected uniform shrinkage at least ``S`` (0.9): ``n = p / ((S - 1) ln(1 - R²/S))``;
2. optimism of Nagelkerke's R² at most ``delta`` (0.05): criterion 1 with
   ``S = R² / (R² + delta * maxR²)``;
3. binary: the overall risk estimated within ``margin`` (0.05):
   ``n = (1.96 / margin)² phi (1 - phi)``; survival: the 95 % interval of the risk by
   ``timepoint`` (exponential rate, SE of log rate ``1/sqrt(events)``) within ``margin``
   -- a check of the n of criteria 1-2, as ``pmsampsize``.

``maxR²`` is ``1 - exp(2 lnL0 / n)``: binary ``lnL0/n = phi ln phi + (1-phi) ln(1-phi)``,
survival ``lnL0/n = E ln E - E`` with ``E`` events per patient. Without a prior R² the
default is Riley's conservative ``0.15 * maxR²``. The tests reproduce the published
``pmsampsize`` examples.
"""

from __future__ import annotations

import math

R2_DEFAULT_FRACTION = 0.15


def max_r2_cs(outcome_rate: float, survival: bool = False) -> float:
    """Largest Cox-Snell R² possible: ``phi`` = prevalence (binary) or events per patient
    (survival)."""
    phi = outcome_rate
    if survival:
        ll0 = phi * math.log(phi) - phi
    else:
        ll0 = phi * math.log(phi) + (1 - phi) * math.log(1 - phi)
    return 1 - math.exp(2 * ll0)


def _n_for_shrinkage(p: int, r2: float, s: float) -> float:
    return p / ((s - 1) * math.log(1 - r2 / s))


def _p_for_shrinkage(n: int, r2: float, s: float) -> float:
    return n * (s - 1) * math.log(1 - r2 / s)


def riley_sample_size(parameters: int, outcome_rate: float, *, survival: bool = False,
                      r2_cs: float | None = None, shrinkage: float = 0.9,
                      delta: float = 0.05, margin: float = 0.05,
                      timepoint: float | None = None, mean_follow_up: float | None = None,
                      n: int | None = None) -> dict:
    """Riley's criteria; with ``n`` also whether that sample meets them.

    Parameters
    ----------
    parameters : int
        Candidate predictor parameters (encoded columns, not variables).
    outcome_rate : float
        Binary: prevalence. Survival: events per patient (events / n).
    survival : bool
        Time-to-event outcome (needs ``timepoint`` and ``mean_follow_up`` for criterion 3).
    r2_cs : float, optional
        Anticipated Cox-Snell R² (default ``0.15 * maxR²``).
    shrinkage, delta, margin : float
        Targets of criteria 1, 2 and 3.
    n : int, optional
        Available patients: adds ``ok``, ``max_parameters`` and ``warning``.

    Returns
    -------
    dict
        ``criteria`` (list of ``criterion``, ``required_n``, ``shrinkage``), ``required_n``,
        ``max_r2_cs``, ``r2_cs``, ``r2_cs_source`` and, with ``n``, the check.
    """
    mx = max_r2_cs(outcome_rate, survival)
    source = "given"
    if r2_cs is None:
        r2_cs, source = R2_DEFAULT_FRACTION * mx, f"default {R2_DEFAULT_FRACTION} x max R2_CS"
    s2 = r2_cs / (r2_cs + delta * mx)
    crit = [{"criterion": 1, "what": f"expected shrinkage >= {shrinkage}",
             "required_n": math.ceil(_n_for_shrinkage(parameters, r2_cs, shrinkage)),
             "shrinkage": shrinkage},
            {"criterion": 2, "what": f"optimism of Nagelkerke R2 <= {delta}",
             "required_n": math.ceil(_n_for_shrinkage(parameters, r2_cs, s2)),
             "shrinkage": s2}]
    if not survival:
        crit.append({"criterion": 3, "what": f"overall risk within +/- {margin}",
                     "required_n": math.ceil((1.959964 / margin) ** 2
                                             * outcome_rate * (1 - outcome_rate)),
                     "shrinkage": None})
    required = max(c["required_n"] for c in crit)
    out = {"parameters": int(parameters), "outcome_rate": outcome_rate,
           "survival": survival, "r2_cs": r2_cs, "r2_cs_source": source, "max_r2_cs": mx,
           "nagelkerke_r2": r2_cs / mx, "criteria": crit, "required_n": required,
           "required_events": required * outcome_rate,
           "method": "Riley et al. 2020 (pmsampsize)"}
    if survival and timepoint is not None and mean_follow_up is not None:
        events = (n or required) * outcome_rate
        rate = outcome_rate / mean_follow_up
        lo = 1 - math.exp(-rate * math.exp(-1.959964 / math.sqrt(events)) * timepoint)
        hi = 1 - math.exp(-rate * math.exp(1.959964 / math.sqrt(events)) * timepoint)
        risk = 1 - math.exp(-rate * timepoint)
        out["criterion_3"] = {"timepoint": timepoint, "risk": risk, "ci": [lo, hi],
                              "ok": risk - lo <= margin and hi - risk <= margin}
    if n is not None:
        p_max = min(_p_for_shrinkage(n, r2_cs, shrinkage), _p_for_shrinkage(n, r2_cs, s2))
        out.update(n=int(n), max_parameters=round(max(p_max, 0.0), 1),
                   ok=all(n >= c["required_n"] for c in crit))
        if not out["ok"]:
            failed = [str(c["criterion"]) for c in crit if n < c["required_n"]]
            out["warning"] = (f"{n} patients do not meet Riley criteria {', '.join(failed)} for "
                              f"{parameters} parameters (need {required}); about "
                              f"{out['max_parameters']} parameter(s) are supported at "
                              f"shrinkage {shrinkage}: expect an over-fitted model, reduce "
                              "the candidate predictors or rely on strong penalisation")
    return out


def fit_sample_size(X, y, ids, model: str, r2_cs: float | None = None) -> dict:
    """Riley's criteria for fitting ``model`` on these patients: parameters are the columns the
    model's preprocessing encodes (every one-hot level and missing-value indicator counts),
    events and prevalence are counted per patient; survival criterion 3 uses the mean
    follow-up and the median follow-up time as the time point."""
    import numpy as np
    import pandas as pd

    from immunodig.models.preprocessing import as_frame
    from immunodig.models.registry import build_pipeline

    y = np.asarray(y)
    survival = y.dtype.names is not None
    first = pd.Series(np.arange(len(ids))).groupby(np.asarray(ids).astype(str)).first()
    yp = y[first.to_numpy()]
    p = build_pipeline(model)[:1].fit(as_frame(X), y).transform(as_frame(X)).shape[1]
    n = len(yp)
    if survival:
        rate = float(yp["event"].mean())
        out = riley_sample_size(p, rate, survival=True, r2_cs=r2_cs, n=n,
                                timepoint=float(np.median(yp["time"])),
                                mean_follow_up=float(np.mean(yp["time"])))
    else:
        out = riley_sample_size(p, float(np.mean(yp)), r2_cs=r2_cs, n=n)
    out["events"] = int(yp["event"].sum() if survival else yp.sum())
    return out
