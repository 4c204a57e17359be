"""Calibration curve: observed event rate against predicted probability, with Wilson intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.report.figures import axes_or_new


@dataclass(frozen=True)
class CalibrationCurve:
    """Binned calibration of predicted probabilities.

    Attributes
    ----------
    mean_predicted, observed : numpy.ndarray
        Mean prediction and observed event rate per bin.
    ci_low, ci_high : numpy.ndarray
        Wilson 95 % interval of the observed rate per bin.
    counts : numpy.ndarray
        Patients per bin.
    predictions : numpy.ndarray
        All predictions (drawn as a rug).
    """

    mean_predicted: np.ndarray
    observed: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    counts: np.ndarray
    predictions: np.ndarray


def wilson_interval(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``k`` successes in ``n`` trials (elementwise)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


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
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    bins = np.unique(which)
    counts = np.array([(which == b).sum() for b in bins])
    events = np.array([y[which == b].sum() for b in bins])
    mean_pred = np.array([p[which == b].mean() for b in bins])
    low, high = wilson_interval(events, counts)
    return CalibrationCurve(mean_pred, events / counts, low, high, counts, p)


def plot_calibration(curve: CalibrationCurve, ax=None, label: str | None = None,
                     color: str = "tab:blue"):
    """Draw a :class:`CalibrationCurve` with interval bars, a rug and the ideal line."""
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
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed proportion")
    ax.set_title("calibration (quantile bins)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return ax
