"""Kaplan-Meier plot by group, with at-risk counts and the log-rank p.

The curves are computed in :mod:`immunodig.evaluation.curves` (re-exported here).
"""

from __future__ import annotations

import numpy as np

from immunodig.evaluation.curves import KMGroup, KMResult, km_by_group
from immunodig.report.figures import axes_or_new

__all__ = ["GROUP_COLOURS", "KMGroup", "KMResult", "km_by_group", "plot_km"]

#: Line colours of successive groups (low risk first).
GROUP_COLOURS: tuple[str, ...] = ("tab:blue", "tab:red", "tab:green", "tab:orange")


def plot_km(result: KMResult, ax=None, time_unit: str = "months", title: str | None = None):
    """Draw the curves with 95 % bands, the number at risk of each named group under the x-axis
    ticks and the log-rank p."""
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
    ticks = np.asarray(result.at_risk_times, dtype=float)
    ax.set_xticks(ticks)  # the at-risk counts stand under the axis ticks
    ax.set_xlim(0, max(float(ticks[-1]), max(float(g.time[-1]) for g in result.groups)))
    ax.text(0, -0.24, "number at risk", transform=ax.transAxes, ha="left", fontsize=8,
            fontweight="bold")
    for row, grp in enumerate(result.groups):
        y = -0.31 - 0.07 * row
        colour = GROUP_COLOURS[row % len(GROUP_COLOURS)]
        ax.text(-0.06, y, grp.name, transform=ax.transAxes, ha="right", fontsize=8,
                color=colour)  # rows named, not told apart by colour alone
        for tt, n in zip(ticks, result.at_risk[grp.name]):
            ax.text(tt, y, str(n), transform=trans, ha="center", fontsize=8, color=colour)
    return ax
