"""Nested CV recovers planted signal, finds none in noise, and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.evaluation import nested_cross_validate

from . import synth

FAST = {"n_splits": 3, "n_repeats": 2, "inner_splits": 3}


@pytest.mark.parametrize("model", ["logistic", "xgboost"])
def test_planted_signal_is_recovered(model):
    X, y, ids = synth.classification(n=160, signal=2.5, seed=1)
    grid = None if model == "logistic" else {}  # logistic: default inner-loop grid
    s = nested_cross_validate(X, y, ids, model, seed=0, param_grid=grid, **FAST).summary(n_boot=200)
    assert s["auc"] > 0.75 and s["auc_ci"][0] > 0.6
    assert s["validation"] == "internal (nested cross-validation)"


@pytest.mark.parametrize("model", ["logistic", "xgboost"])
def test_pure_noise_gives_auc_near_half_with_ci_covering_it(model):
    X, y, ids = synth.classification(n=150, p=30, signal=0.0, seed=2)
    s = nested_cross_validate(X, y, ids, model, seed=0, param_grid={}, n_splits=5, n_repeats=2,
                              ).summary(n_boot=300)
    assert s["auc_ci"][0] < 0.5 < s["auc_ci"][1]
    assert abs(s["auc"] - 0.5) < 0.12


@pytest.mark.parametrize("model", ["cox", "xgb-cox", "xgb-aft"])
def test_survival_signal_recovered(model):
    X, y, ids = synth.survival(n=150, signal=1.0, seed=3)
    s = nested_cross_validate(X, y, ids, model, seed=0, param_grid={}, **FAST).summary(n_boot=100)
    assert s["c_index"] > 0.68 and s["c_index_ci"][0] > 0.55  # corrected interval excludes 0.5
    assert s["uno_c"] > 0.65
    assert 0 < s["integrated_brier"] < 0.25
    assert s["risk_groups"]["median_logrank_p"] < 0.01


def test_survival_noise_and_permuted_times_give_c_near_half():
    X, y, ids = synth.survival(n=150, signal=1.0, seed=4)
    perm = np.random.default_rng(0).permutation(len(y))
    s = nested_cross_validate(X, y[perm], ids, "cox", seed=0, param_grid={}, **FAST
                              ).summary(n_boot=300)
    assert s["c_index_ci"][0] < 0.5 < s["c_index_ci"][1]


def test_permuted_labels_detector():
    X, y, ids = synth.classification(n=150, signal=2.0, seed=5)
    real = nested_cross_validate(X, y, ids, "logistic", seed=0, **FAST).summary(n_boot=200)
    perm = np.random.default_rng(0).permutation(y)
    null = nested_cross_validate(X, perm, ids, "logistic", seed=0, **FAST).summary(n_boot=300)
    assert real["auc"] > 0.8
    assert null["auc_ci"][0] < 0.5 < null["auc_ci"][1]


def test_same_seed_identical_results_and_paired_splits_across_models():
    X, y, ids = synth.classification(n=100, signal=1.0, seed=6)
    a = nested_cross_validate(X, y, ids, "xgboost", seed=3, param_grid={}, **FAST)
    b = nested_cross_validate(X, y, ids, "xgboost", seed=3, param_grid={}, **FAST)
    np.testing.assert_array_equal(a.oof, b.oof)
    assert a.summary(n_boot=50) == b.summary(n_boot=50)
    c = nested_cross_validate(X[["f0", "site"]], y, ids, "logistic", seed=3, **FAST)
    assert c.splits_key == a.splits_key
    np.testing.assert_array_equal(c.fold_of, a.fold_of)
    d = nested_cross_validate(X, y, ids, "xgboost", seed=4, param_grid={}, **FAST)
    assert d.splits_key != a.splits_key


def test_classification_summary_has_calibration_and_decision_curve():
    X, y, ids = synth.classification(n=120, signal=1.0, seed=7)
    s = nested_cross_validate(X, y, ids, "logistic", seed=0, **FAST).summary(n_boot=50)
    assert set(s["calibration"]) == {"slope", "intercept", "mean_predicted", "observed_rate"}
    assert sum(s["calibration_curve"]["n"]) == 120
    assert len(s["net_benefit"]["model"]) == len(s["net_benefit"]["threshold"])
    assert 0 < s["pr_auc"] < 1 and 0 < s["brier"] < 0.25


def test_permutation_test_separates_signal_from_noise():
    from immunodig.evaluation import permutation_test

    kw = {"n_splits": 3, "n_repeats": 1, "param_grid": {"model__C": [0.3]}}
    X, y, ids = synth.classification(n=100, signal=2.0, seed=14)
    sig = permutation_test(X, y, ids, "logistic", n_permutations=9, **kw)
    assert sig["p"] == pytest.approx(0.1)  # observed beats all 9 permutations
    X, y, ids = synth.classification(n=100, signal=0.0, seed=15)
    noise = permutation_test(X, y, ids, "logistic", n_permutations=9, **kw)
    assert noise["p"] > 0.2
