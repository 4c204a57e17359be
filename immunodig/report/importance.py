"""What a fitted model uses: hazard-ratio forest plots and SHAP / importance bar charts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunodig.errors import ValidationError
from immunodig.report.figures import axes_or_new


def _require(table: pd.DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValidationError(source, [{"row": None, "column": c, "check": "column missing"}
                                       for c in missing])


def mean_abs_shap(shap: pd.DataFrame, top: int = 15) -> pd.DataFrame:
    """Mean absolute SHAP value per feature (``bias`` left out), largest first.

    Parameters
    ----------
    shap : pandas.DataFrame
        One row per patient, one column per feature (as from
        :func:`immunodig.evaluation.explain.shap_values`).
    top : int
        Number of features kept.

    Returns
    -------
    pandas.DataFrame
        Columns ``feature, importance``.
    """
    cols = [c for c in shap.columns if c != "bias"]
    imp = shap[cols].abs().mean(axis=0).sort_values(ascending=False).head(top)
    return pd.DataFrame({"feature": imp.index.astype(str), "importance": imp.to_numpy()})


def plot_hazard_ratios(table: pd.DataFrame, ax=None, top: int = 20,
                       title: str = "hazard ratios (95% CI)"):
    """Forest plot of ``feature, hazard_ratio, ci_low, ci_high`` on a log axis; returns the Axes.

    The ``top`` features furthest from HR = 1 are shown.
    """
    _require(table, ("feature", "hazard_ratio", "ci_low", "ci_high"), "hazard-ratio table")
    df = table.dropna(subset=["hazard_ratio"]).copy()
    df["_dist"] = np.abs(np.log(df["hazard_ratio"].astype(float)))
    df = df.nlargest(top, "_dist").iloc[::-1]
    ax = axes_or_new(ax, (5.5, 0.3 * max(len(df), 3) + 1))
    y = np.arange(len(df))
    hr = df["hazard_ratio"].to_numpy(dtype=float)
    err = np.vstack([hr - df["ci_low"].to_numpy(dtype=float),
                     df["ci_high"].to_numpy(dtype=float) - hr])
    ax.errorbar(hr, y, xerr=err, fmt="s", color="black", ecolor="tab:grey", capsize=2,
                markersize=4)
    ax.axvline(1.0, color="tab:red", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="both", labelsize=7)
    ax.set_ylim(-0.7, len(df) - 0.3)
    ax.set_yticks(y)
    ax.set_yticklabels(df["feature"], fontsize=8)
    ax.set_xlabel("hazard ratio (log scale)")
    ax.set_title(title, fontsize=10)
    return ax


def plot_importance(table: pd.DataFrame, ax=None, xlabel: str = "mean |SHAP value|",
                    title: str = "feature importance", top: int = 15):
    """Horizontal bars of ``feature, importance`` (optional ``sd`` as error bars)."""
    _require(table, ("feature", "importance"), "importance table")
    df = table.nlargest(top, "importance").iloc[::-1]
    ax = axes_or_new(ax, (5.5, 0.3 * max(len(df), 3) + 1))
    y = np.arange(len(df))
    xerr = df["sd"].to_numpy(dtype=float) if "sd" in df.columns else None
    ax.barh(y, df["importance"].to_numpy(dtype=float), xerr=xerr, color="tab:purple",
            alpha=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(df["feature"], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    return ax
