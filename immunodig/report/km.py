"""Kaplan-Meier curves by group, with at-risk counts and the log-rank p."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.errors import ValidationError
from immunodig.report.figures import axes_or_new

#: Line colours of successive groups (low risk first).
GROUP_COLOURS: tuple[str, ...] = ("tab:blue", "tab:red", "tab:green", "tab:orange")


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
        Times at which patients at risk are counted (default: 5 evenly spaced times).
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
        at_risk_times = np.linspace(0, float(t.max()), 5)
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


def plot_km(result: KMResult, ax=None, time_unit: str = "months", title: str | None = None):
    """Draw the curves with 95 % bands, at-risk counts under the x axis and the log-rank p."""
    from matplotlib.transforms import blended_transform_factory

    ax = axes_or_new(ax, (5.5, 4.5))
    for i, grp in enumerate(result.groups):
        colour = GROUP_COLOURS[i % len(GROUP_COLOURS)]
        ax.step(grp.time, grp.survival, where="post", color=colour,
                label=f"{grp.name} (n={grp.n}, {grp.events} events)")
        ax.fill_between(grp.time, grp.ci_low, grp.ci_high, step="post", color=colour,
                        alpha=0.15, linewidth=0)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(left=0)
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("event-free probability")
    p = result.logrank_p
    ptxt = "log-rank p = n/a" if not np.isfinite(p) else f"log-rank p = {p:.3g}"
    ax.set_title(f"{title}\n{ptxt}" if title else ptxt, fontsize=10)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(0, -0.24, "at risk", transform=ax.transAxes, ha="right", fontsize=8,
            fontweight="bold")
    for row, grp in enumerate(result.groups):
        y = -0.30 - 0.07 * row
        colour = GROUP_COLOURS[row % len(GROUP_COLOURS)]
        for tt, n in zip(result.at_risk_times, result.at_risk[grp.name]):
            ax.text(tt, y, str(n), transform=trans, ha="center", fontsize=8, color=colour)
    return ax
