"""Calibration plot: observed event rate against predicted probability, with 95 % intervals.

The curve is computed in :mod:`immunodig.evaluation.curves` (re-exported here).
"""

from __future__ import annotations

import numpy as np

from immunodig.evaluation.curves import CalibrationCurve, calibration_curve_ci, wilson_interval
from immunodig.report.figures import axes_or_new

__all__ = ["CalibrationCurve", "calibration_curve_ci", "plot_calibration", "wilson_interval"]


def plot_calibration(curve: CalibrationCurve, ax=None, label: str | None = None,
                     color: str = "tab:blue", title: str | None = None):
    """Draw a :class:`CalibrationCurve` with interval bars, a rug and the ideal line.

    A survival curve (``curve.horizon`` set) is labelled as risk by that time against
    ``1 - Kaplan-Meier``. Returns the Axes.
    """
    ax = axes_or_new(ax, (4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1, label="ideal")
    err = np.vstack([curve.observed - curve.ci_low, curve.ci_high - curve.observed])
    ax.errorbar(curve.mean_predicted, curve.observed, yerr=err, marker="o", color=color,
                capsize=3, label=label or "observed (95% CI)")
    ax.plot(curve.predictions, np.full(len(curve.predictions), -0.02), "|", color=color,
            alpha=0.5, markersize=8)
    for x, y, n in zip(curve.mean_predicted, curve.observed, curve.counts):
        ax.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.05, 1.05)
    if curve.horizon is None:
        ax.set_xlabel("predicted probability")
        ax.set_ylabel("observed proportion")
    else:
        ax.set_xlabel(f"predicted risk by t = {curve.horizon:.3g}")
        ax.set_ylabel("observed risk (1 - Kaplan-Meier)")
    ax.set_title(title or "calibration (quantile bins)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax
