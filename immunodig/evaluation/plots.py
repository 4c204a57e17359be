"""Figures of a CV summary (each takes ``ax=`` and returns it): thin adapters from a summary
dict to the drawing functions of :mod:`immunodig.report`, where every curve is drawn.

The Kaplan-Meier plot of risk groups is :func:`immunodig.evaluation.plot_risk_groups`.
"""

from __future__ import annotations


def plot_calibration(summary: dict, ax=None):
    """Calibration curve of a summary: observed event rate (binary) or observed risk by the
    horizon, ``1 - KM`` (survival), against mean predicted risk per quantile bin."""
    from immunodig.evaluation.curves import CalibrationCurve
    from immunodig.report.calibration import plot_calibration as draw

    curve = CalibrationCurve.from_dict(summary["calibration_curve"])
    cal = summary["calibration"]
    if curve.horizon is None:
        head = f"calibration slope {cal['slope']:.2f}, intercept {cal['intercept']:.2f}"
    else:
        head = (f"calibration slope {cal['slope']:.2f}; by t = {curve.horizon:.3g}: observed "
                f"{cal['observed_rate']:.2f}, predicted {cal['mean_predicted']:.2f}")
    return draw(curve, ax=ax, label="out-of-fold (95% CI)",
                title=f"{head}\n{summary.get('validation', '')}")


def plot_decision_curve(summary: dict, ax=None):
    """Net benefit of the model, treat-all and treat-none by threshold; returns the Axes."""
    from immunodig.report.decision import plot_decision_curve as draw

    return draw(summary["net_benefit"], ax=ax,
                title=f"decision curve, {summary.get('validation', '')}")
