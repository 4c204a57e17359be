"""Feature-set comparison: one estimate with its interval per feature set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunodig.errors import ValidationError
from immunodig.report.figures import axes_or_new


def plot_feature_set_comparison(table: pd.DataFrame, ax=None, metric: str = "AUC",
                                chance: float | None = 0.5, title: str | None = None):
    """Dot-and-interval plot of ``feature_set, estimate, ci_low, ci_high``; returns the Axes.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per feature set (e.g. clinical, morphology, combined), same model and splits.
    metric : str
        Axis label (``AUC`` or ``C-index``).
    chance : float, optional
        Reference line (0.5 for both AUC and C-index); None draws none.
    """
    missing = [c for c in ("feature_set", "estimate", "ci_low", "ci_high") if c not in table]
    if missing:
        raise ValidationError("feature-set comparison", [
            {"row": None, "column": c, "check": "column missing"} for c in missing])
    df = table.reset_index(drop=True)
    ax = axes_or_new(ax, (5.0, 0.45 * max(len(df), 2) + 1.2))
    y = np.arange(len(df))[::-1]
    est = df["estimate"].to_numpy(dtype=float)
    lo = df["ci_low"].to_numpy(dtype=float)
    hi = df["ci_high"].to_numpy(dtype=float)
    ax.errorbar(est, y, xerr=np.vstack([est - lo, hi - est]), fmt="o", color="tab:blue",
                capsize=3)
    for yy, e, low, h in zip(y, est, lo, hi):
        ax.annotate(f"{e:.2f} ({low:.2f}-{h:.2f})", (e, yy), textcoords="offset points",
                    xytext=(0, 7), ha="center", fontsize=7)
    if chance is not None:
        ax.axvline(chance, color="grey", linestyle=":", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels(df["feature_set"], fontsize=8)
    ax.set_ylim(-0.7, len(df) - 0.3)
    ax.set_xlabel(f"{metric} (95% CI)")
    ax.set_title(title or f"feature sets compared ({metric})", fontsize=10)
    return ax
