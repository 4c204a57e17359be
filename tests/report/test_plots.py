"""Plot functions: computation checked against independent references; drawing on a given ax."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from immunodig.evaluation.curves import survival_calibration_curve
from immunodig.evaluation.metrics import net_benefit
from immunodig.models import survival_target
from immunodig.report import (
    calibration_curve_ci,
    km_by_group,
    mean_abs_shap,
    plot_calibration,
    plot_feature_distribution,
    plot_feature_set_comparison,
    plot_hazard_ratios,
    plot_importance,
    plot_km,
    plot_roc,
    roc_curve_ci,
)
from immunodig.report.calibration import wilson_interval
from immunodig.report.decision import plot_decision_curve
from immunodig.report.distributions import group_summary, resistance_label


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    p = 1 / (1 + np.exp(-(1.5 * y - 0.75 + rng.normal(0, 1, 80))))
    return y, p


def _drew(ax) -> bool:
    return bool(ax.lines or ax.collections or ax.patches or ax.images or ax.containers)


def test_roc_auc_matches_sklearn_and_band_brackets_curve(binary):
    from sklearn.metrics import roc_auc_score

    y, p = binary
    curve = roc_curve_ci(y, p, n_boot=200, seed=1)
    assert curve.auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert curve.auc_ci[0] < curve.auc < curve.auc_ci[1]
    assert np.all(curve.tpr_low <= curve.tpr + 1e-9) and np.all(curve.tpr <= curve.tpr_high + 1e-9)
    assert curve.n == 80 and curve.n_positive == int(y.sum())
    assert np.all(np.diff(curve.tpr) >= 0) and curve.tpr[-1] == 1.0


def test_roc_rejects_one_class():
    from immunodig.errors import ValidationError

    with pytest.raises(ValidationError):
        roc_curve_ci(np.zeros(10), np.linspace(0, 1, 10))


def test_calibration_bins_and_wilson(binary):
    y, p = binary
    cal = calibration_curve_ci(y, p, n_bins=4)
    assert cal.counts.sum() == len(y) and len(cal.counts) == 4
    assert (cal.observed * cal.counts).sum() == pytest.approx(y.sum())
    assert (cal.mean_predicted * cal.counts).sum() == pytest.approx(p.sum())
    assert np.all((cal.ci_low <= cal.observed) & (cal.observed <= cal.ci_high))
    # Wilson 95 % interval of 8/20, textbook value 0.2188-0.6134.
    lo, hi = wilson_interval(np.array([8]), np.array([20]))
    assert lo[0] == pytest.approx(0.2188, abs=1e-3) and hi[0] == pytest.approx(0.6134, abs=1e-3)


def test_km_matches_lifelines_and_at_risk_counts():
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    rng = np.random.default_rng(2)
    t = np.r_[rng.exponential(5, 30), rng.exponential(15, 30)]
    e = (rng.random(60) < 0.8).astype(int)
    g = np.array(["high"] * 30 + ["low"] * 30)
    res = km_by_group(t, e, g, order=["low", "high"], at_risk_times=[0, 5, 10])
    assert [x.name for x in res.groups] == ["low", "high"]
    ref = KaplanMeierFitter().fit(t[g == "low"], e[g == "low"])
    assert np.allclose(res.groups[0].survival, ref.survival_function_.iloc[:, 0])
    assert res.at_risk["high"] == [30, int((t[:30] >= 5).sum()), int((t[:30] >= 10).sum())]
    p = logrank_test(t[g == "high"], t[g == "low"], e[g == "high"], e[g == "low"]).p_value
    assert res.logrank_p == pytest.approx(p)


def test_group_summary_and_labels():
    labels = resistance_label([1, 0, None, 1, np.nan])
    assert list(labels) == ["resistant", "not resistant", "undetermined", "resistant",
                            "undetermined"]
    s = group_summary([1.0, 2.0, np.nan, 3.0, 5.0], labels)
    assert s.loc["resistant", "median"] == 2.0 and s.loc["undetermined", "n_missing"] == 1


def test_mean_abs_shap_ranks_and_drops_bias():
    shap = pd.DataFrame({"a": [1.0, -1.0], "b": [0.1, -0.3], "bias": [5.0, 5.0]})
    out = mean_abs_shap(shap)
    assert list(out["feature"]) == ["a", "b"] and out["importance"].tolist() == [1.0, 0.2]


def _draw_all(ax_factory, binary):
    y, p = binary
    rng = np.random.default_rng(0)
    km = km_by_group(rng.exponential(10, 40), rng.integers(0, 2, 40),
                     np.where(rng.random(40) < 0.5, "a", "b"))
    hr = pd.DataFrame({"feature": ["x", "y"], "hazard_ratio": [0.5, 1.8],
                       "ci_low": [0.3, 1.1], "ci_high": [0.9, 2.9]})
    imp = pd.DataFrame({"feature": ["x", "y"], "importance": [0.3, 0.1]})
    comp = pd.DataFrame({"feature_set": ["clinical", "combined"], "estimate": [0.6, 0.7],
                         "ci_low": [0.5, 0.6], "ci_high": [0.7, 0.8]})
    return [
        lambda ax: plot_roc(roc_curve_ci(y, p, n_boot=20), ax=ax),
        lambda ax: plot_calibration(calibration_curve_ci(y, p), ax=ax),
        lambda ax: plot_km(km, ax=ax),
        lambda ax: plot_feature_distribution(p, resistance_label(y), ax=ax, feature="p"),
        lambda ax: plot_hazard_ratios(hr, ax=ax),
        lambda ax: plot_importance(imp, ax=ax),
        lambda ax: plot_feature_set_comparison(comp, ax=ax),
        lambda ax: plot_decision_curve(net_benefit(y, p), ax=ax),
        lambda ax: plot_calibration(_survival_curve(), ax=ax),
    ]


def _survival_curve():
    rng = np.random.default_rng(1)
    t = rng.exponential(10, 60)
    y = survival_target(np.minimum(t, 15), t < 15)
    return survival_calibration_curve(y, np.exp(-rng.uniform(0.2, 1.0, 60)), horizon=8.0)


def test_survival_calibration_is_labelled_by_its_horizon(ax):
    curve = _survival_curve()
    assert plot_calibration(curve, ax=ax) is ax
    assert ax.get_xlabel() == "predicted risk by t = 8" and "Kaplan-Meier" in ax.get_ylabel()


def test_report_reexports_the_curves_computed_in_evaluation():
    from immunodig.evaluation import curves
    from immunodig.report import calibration, km

    assert calibration.calibration_curve_ci is curves.calibration_curve_ci
    assert km.km_by_group is curves.km_by_group


def test_every_plot_draws_on_the_given_axes(binary):
    for draw in _draw_all(None, binary):
        fig, ax = plt.subplots()
        assert draw(ax) is ax
        assert _drew(ax)
        plt.close(fig)


def test_every_plot_makes_axes_when_none_given(binary):
    for draw in _draw_all(None, binary):
        ax = draw(None)
        assert _drew(ax)
        plt.close(ax.figure)


def test_km_at_risk_counts_stand_under_round_axis_ticks_with_group_names():
    """The at-risk table sat at unlabelled times (0, 12.65, 25.3 ...) that did not match the axis
    and its rows were told apart by colour only."""
    import matplotlib

    matplotlib.use("Agg")
    from immunodig.evaluation.curves import round_ticks
    from immunodig.report.km import plot_km

    assert round_ticks(50.6).tolist() == [0, 10, 20, 30, 40, 50]
    assert round_ticks(7.3).tolist() == [0, 2, 4, 6]
    rng = np.random.default_rng(3)
    t = rng.exponential(20, 60).clip(0.1, 50.6)
    km = km_by_group(t, rng.integers(0, 2, 60), np.repeat(["low", "high"], 30))
    ax = plot_km(km)
    assert list(ax.get_xticks()) == list(km.at_risk_times) == [0, 10, 20, 30, 40, 50]
    texts = [x.get_text() for x in ax.texts]
    assert "low" in texts and "high" in texts
    assert [str(n) for n in km.at_risk["low"]] == texts[texts.index("low") + 1:][:6]


def test_inverted_risk_groups_are_noticed():
    from immunodig.report.model_sections import risk_groups_inverted

    rng = np.random.default_rng(5)
    t = np.concatenate([rng.exponential(30, 40), rng.exponential(8, 40)])
    e = np.ones(80, int)
    right = np.repeat(["low predicted risk", "high predicted risk"], 40)
    assert not risk_groups_inverted(km_by_group(t, e, right))
    assert risk_groups_inverted(km_by_group(t, e, right[::-1]))


def test_feature_panel_without_values_says_no_data_and_densities_start_at_zero(ax):
    groups = resistance_label([1, 0, 0, 1])
    empty = plot_feature_distribution([np.nan] * 4, groups, ax=ax, feature="tls_count")
    assert not empty.axison and [t.get_text() for t in empty.texts] == ["tls_count: no data"]
    fig = ax.figure
    zeros = plot_feature_distribution([0.0, 0.0, 0.0, 0.0], groups, ax=fig.add_subplot(3, 1, 2))
    assert zeros.get_ylim() == (0.0, 1.0)
    dens = plot_feature_distribution([3.0, 10.0, 0.0, 7.0], groups, ax=fig.add_subplot(3, 1, 3))
    assert dens.get_ylim()[0] == 0.0 and dens.get_ylim()[1] >= 10.0
