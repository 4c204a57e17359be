"""Decision curve: net benefit of a model against treat-all and treat-none."""

from __future__ import annotations

from immunodig.report.figures import axes_or_new


def plot_decision_curve(net_benefit: dict, ax=None, title: str | None = None):
    """Draw net benefit by threshold probability (``net_benefit`` as returned by
    :func:`immunodig.evaluation.metrics.net_benefit`); returns the Axes."""
    ax = axes_or_new(ax, (5.0, 4.0))
    nb = net_benefit
    ax.plot(nb["threshold"], nb["model"], label="model")
    ax.plot(nb["threshold"], nb["treat_all"], ls="--", label="treat all")
    ax.plot(nb["threshold"], nb["treat_none"], ls=":", c="grey", label="treat none")
    low = min(min(nb["model"]), 0.0)
    ax.set(xlabel="threshold probability", ylabel="net benefit",
           ylim=(low - 0.02, max(max(nb["model"]), max(nb["treat_all"])) + 0.02))
    ax.set_title(title or "decision curve", fontsize=9)
    ax.legend(frameon=False)
    return ax
