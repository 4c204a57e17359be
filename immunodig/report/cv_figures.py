"""Figures of a cross-validation result (each takes ``ax=`` and returns it): the summary's
calibration and decision curves and the Kaplan-Meier curves of out-of-fold risk groups, drawn
from the curve data that :mod:`immunodig.evaluation` computes."""

from __future__ import annotations

from immunodig.report.calibration import plot_calibration
from immunodig.report.decision import plot_decision_curve
from immunodig.report.km import plot_km


def plot_cv_calibration(summary: dict, ax=None):
    """Calibration curve of a summary: observed event rate (binary) or observed risk by the
    horizon, ``1 - KM`` (survival), against mean predicted risk per quantile bin."""
    from immunodig.evaluation.curves import CalibrationCurve

    curve = CalibrationCurve.from_dict(summary["calibration_curve"])
    cal = summary["calibration"]
    if curve.horizon is None:
        head = f"calibration slope {cal['slope']:.2f}, intercept {cal['intercept']:.2f}"
    else:
        head = (f"calibration slope {cal['slope']:.2f}; by t = {curve.horizon:.3g}: observed "
                f"{cal['observed_rate']:.2f}, predicted {cal['mean_predicted']:.2f}")
    return plot_calibration(curve, ax=ax, label="out-of-fold (95% CI)",
                title=f"{head}\n{summary.get('validation', '')}")


def plot_cv_decision_curve(summary: dict, ax=None):
    """Net benefit of the model, treat-all and treat-none by threshold; returns the Axes."""
    return plot_decision_curve(summary["net_benefit"], ax=ax,
                title=f"decision curve, {summary.get('validation', '')}")


def plot_risk_groups(result, repeat: int = 0, ax=None, time_unit: str = "months"):
    """Kaplan-Meier curves of the out-of-fold risk groups of a survival CV result, with at-risk
    counts and the log-rank p; returns the Axes."""
    from immunodig.evaluation.risk_groups import risk_group_km

    return plot_km(risk_group_km(result, repeat), ax=ax, time_unit=time_unit,
                   title="out-of-fold risk groups, internal validation (nested CV)")
