"""Figures of a CV summary: calibration plot and decision curve (each takes ``ax=``).

The Kaplan-Meier plot of risk groups is :func:`immunodig.evaluation.plot_risk_groups`.
"""

from __future__ import annotations


def plot_calibration(summary: dict, ax=None):
    """Observed event rate against mean predicted risk per quantile bin; returns the Axes."""
    import matplotlib.pyplot as plt

    ax = plt.gca() if ax is None else ax
    curve = summary["calibration_curve"]
    cal = summary["calibration"]
    ax.plot([0, 1], [0, 1], ls=":", c="grey", label="ideal")
    ax.plot(curve["mean_predicted"], curve["observed"], "o-", label="out-of-fold")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted risk", ylabel="observed rate")
    ax.set_title(f"calibration slope {cal['slope']:.2f}, intercept {cal['intercept']:.2f}\n"
                 "internal validation (nested CV)", fontsize=9)
    ax.legend(frameon=False)
    return ax


def plot_decision_curve(summary: dict, ax=None):
    """Net benefit of the model, treat-all and treat-none by threshold; returns the Axes."""
    import matplotlib.pyplot as plt

    ax = plt.gca() if ax is None else ax
    nb = summary["net_benefit"]
    ax.plot(nb["threshold"], nb["model"], label="model")
    ax.plot(nb["threshold"], nb["treat_all"], ls="--", label="treat all")
    ax.plot(nb["threshold"], nb["treat_none"], ls=":", c="grey", label="treat none")
    low = min(min(nb["model"]), 0.0)
    ax.set(xlabel="threshold probability", ylabel="net benefit",
           ylim=(low - 0.02, max(max(nb["model"]), max(nb["treat_all"])) + 0.02))
    ax.set_title("decision curve, internal validation (nested CV)", fontsize=9)
    ax.legend(frameon=False)
    return ax
