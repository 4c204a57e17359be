"""Paired feature-set comparison and explanations."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.errors import ConfigError
from immunodig.evaluation import (
    compare_feature_sets,
    cox_hazard_ratios,
    permutation_importance,
    shap_values,
)
from immunodig.models import build_pipeline

from . import synth

FAST = {"n_splits": 3, "n_repeats": 2, "param_grid": {}}


def test_paired_comparison_detects_the_informative_set():
    X, y, ids = synth.classification(n=150, signal=2.0, seed=8)
    sets = {"clinical": ["f4", "f5", "site"], "morphology": ["f0", "f1", "f2"],
            "combined": ["f4", "f5", "site", "f0", "f1", "f2"]}
    out, results = compare_feature_sets(X, y, ids, sets, "logistic", n_boot=200, **FAST)
    assert len({r.splits_key for r in results.values()}) == 1
    assert out["validation"].startswith("internal")
    d = out["differences"]["morphology - clinical"]
    assert d["ci"][0] > 0.1  # paired CI excludes 0
    assert d["ci_corrected"][0] > 0  # also when refitting variability is accounted for
    assert out["sets"]["clinical"]["auc_ci"][0] < 0.5 < out["sets"]["clinical"]["auc_ci"][1]
    same = out["differences"]["combined - clinical"]["estimate"]
    assert same > 0.1


def test_shap_contributions_sum_to_margin_and_find_signal():
    X, y, ids = synth.classification(n=200, signal=2.0, seed=9)
    pipe = build_pipeline("xgboost").fit(X, y)
    sv = shap_values(pipe, X)
    margin = pipe[-1].decision_function(pipe[:-1].transform(X)) - pipe[-1].logit_offset_
    np.testing.assert_allclose(sv.sum(axis=1), margin, atol=1e-4)
    top2 = sv.drop(columns="bias").abs().mean().sort_values(ascending=False).index[:2]
    assert set(top2) == {"f0", "f1"}


def test_permutation_importance_and_cox_hazard_ratios():
    X, y, ids = synth.survival(n=200, signal=1.0, seed=10)
    pipe = build_pipeline("cox").fit(X, y)
    imp = permutation_importance(pipe, X, y, n_repeats=3)
    assert imp["feature"].iloc[0] == "f0"
    hr = cox_hazard_ratios(pipe).set_index("feature")
    assert hr.loc["f0", "hazard_ratio"] > 1.5 and hr.loc["f0", "ci_low"] > 1
    assert hr.loc["f1", "hazard_ratio"] < 1
    with pytest.raises(ConfigError):
        shap_values(pipe, X)


def test_figures_draw_on_given_axes(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from immunodig.evaluation import nested_cross_validate
    from immunodig.report import plot_cv_calibration, plot_cv_decision_curve, plot_risk_groups

    X, y, ids = synth.classification(n=90, signal=1.5, seed=16)
    s = nested_cross_validate(X, y, ids, "logistic", seed=0, **FAST).summary(n_boot=20)
    Xs, ys, ids_s = synth.survival(n=90, signal=1.0, seed=16)
    res = nested_cross_validate(Xs, ys, ids_s, "cox", seed=0, **FAST)
    fig, axes = plt.subplots(1, 3)
    assert plot_cv_calibration(s, ax=axes[0]) is axes[0]
    assert plot_cv_decision_curve(s, ax=axes[1]) is axes[1]
    assert plot_risk_groups(res, ax=axes[2]) is axes[2]
    assert "internal validation" in axes[2].get_title()
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
