"""ROC curve with a patient-bootstrap confidence band."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from immunodig.errors import ValidationError
from immunodig.report.figures import axes_or_new

#: False-positive rates at which bootstrap curves are compared.
FPR_GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class RocCurve:
    """A ROC curve on :data:`FPR_GRID` with its pointwise bootstrap band.

    Attributes
    ----------
    fpr, tpr : numpy.ndarray
        The curve (true-positive rate at each false-positive rate of the grid).
    tpr_low, tpr_high : numpy.ndarray
        Pointwise percentile band of the bootstrap curves.
    auc : float
        Area under the curve; ``auc_ci`` its percentile interval (may be replaced by a stored,
        repeat-averaged estimate).
    n, n_positive : int
        Patients and positives (events).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    tpr_low: np.ndarray
    tpr_high: np.ndarray
    auc: float
    auc_ci: tuple[float, float]
    n: int
    n_positive: int


def _binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(y_score, dtype=float)
    keep = np.isfinite(y) & np.isfinite(s)
    y, s = y[keep].astype(int), s[keep]
    if y.shape != s.shape or not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise ValidationError("ROC curve", [{"row": None, "column": "y_true",
                                             "check": "needs binary 0/1 labels with both classes"}])
    return y, s


def _curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, float]:
    """TPR on :data:`FPR_GRID` and the AUC (trapezoid over the ROC points: exact with ties)."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    grid_tpr = np.interp(FPR_GRID, fpr, tpr)
    grid_tpr[0] = 0.0
    return grid_tpr, auc


def roc_curve_ci(y_true, y_score, n_boot: int = 500, seed: int = 0,
                 level: float = 0.95) -> RocCurve:
    """Compute a ROC curve and its patient-bootstrap band.

    Parameters
    ----------
    y_true : array of 0/1
        Observed outcome per patient.
    y_score : array of float
        Predicted probability or score per patient (e.g. the mean out-of-fold prediction).
    n_boot : int
        Bootstrap resamples of patients (resamples with one class only are skipped).
    seed : int
        Random seed.
    level : float
        Coverage of the band and interval.

    Returns
    -------
    RocCurve
    """
    y, s = _binary(y_true, y_score)
    tpr, auc = _curve(y, s)
    rng = np.random.default_rng(seed)
    curves, aucs = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        t, a = _curve(y[idx], s[idx])
        curves.append(t)
        aucs.append(a)
    alpha = (1 - level) / 2
    if curves:
        low, high = np.quantile(np.array(curves), [alpha, 1 - alpha], axis=0)
        ci = tuple(float(v) for v in np.quantile(aucs, [alpha, 1 - alpha]))
    else:
        low, high, ci = tpr.copy(), tpr.copy(), (float("nan"), float("nan"))
    return RocCurve(FPR_GRID.copy(), tpr, low, high, auc, ci, int(len(y)), int(y.sum()))


def plot_roc(curve: RocCurve, ax=None, label: str | None = None, color: str = "tab:blue"):
    """Draw a :class:`RocCurve` with its band and the chance diagonal; returns the Axes."""
    ax = axes_or_new(ax, (4.5, 4.5))
    lo, hi = curve.auc_ci
    text = label or "ROC"
    ax.plot(curve.fpr, curve.tpr, color=color,
            label=f"{text}: AUC {curve.auc:.2f} (95% CI {lo:.2f}-{hi:.2f})")
    ax.fill_between(curve.fpr, curve.tpr_low, curve.tpr_high, color=color, alpha=0.2,
                    linewidth=0)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_title(f"ROC, n = {curve.n} ({curve.n_positive} events)", fontsize=10)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return ax
