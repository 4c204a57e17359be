"""Each classic small-cohort trap, demonstrated on pure noise: wrong way high, package way ~0.5."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import f_classif

from immunodig.errors import ValidationError
from immunodig.evaluation import (
    Outcome,
    evaluate_table,
    harrell_c,
    nested_cross_validate,
    risk_group_summary,
    roc_auc,
)
from immunodig.evaluation.risk_groups import logrank
from immunodig.models import survival_target

from . import synth

FAST = {"n_splits": 5, "n_repeats": 2, "inner_splits": 3}


def test_feature_selection_outside_cv_inflates_auc_inside_does_not():
    rng = np.random.default_rng(0)
    n, p = 100, 1000
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"g{i}" for i in range(p)])
    y = (rng.random(n) < 0.3).astype(int)
    ids = np.arange(n)
    top = np.argsort(-f_classif(X.to_numpy(), y)[0])[:10]  # WRONG: selected on all patients
    wrong = nested_cross_validate(X.iloc[:, top], y, ids, "logistic", seed=0,
                                  param_grid={"model__C": [1.0]}, **FAST)
    right = nested_cross_validate(X, y, ids, "logistic", seed=0, select_k=10,
                                  param_grid={"model__C": [1.0]}, **FAST)
    assert np.mean([roc_auc(y, o) for o in wrong.oof]) > 0.8
    s = right.summary(n_boot=300)
    assert s["auc_ci"][0] < 0.5 < s["auc_ci"][1]


def test_row_level_split_of_multi_slide_patients_leaks():
    rng = np.random.default_rng(1)
    n_pat, n_slides, p = 60, 4, 10
    label = (rng.random(n_pat) < 0.3).astype(int)
    Z = rng.normal(size=(n_pat, p))  # patient-level noise; slides are near-copies
    X = pd.DataFrame(np.repeat(Z, n_slides, axis=0) + 0.05 * rng.normal(size=(n_pat * n_slides, p)),
                     columns=[f"f{i}" for i in range(p)])
    y = np.repeat(label, n_slides)
    patient = np.repeat([f"P{i}" for i in range(n_pat)], n_slides)
    slide = np.array([f"S{i}" for i in range(len(y))])
    memorise = {"model__max_depth": [6], "model__n_estimators": [100],
                "model__min_child_weight": [0.0], "model__subsample": [1.0],
                "model__colsample_bytree": [1.0], "model__reg_lambda": [0.0],
                "model__learning_rate": [0.3]}
    wrong = nested_cross_validate(X, y, slide, "xgboost", seed=0, param_grid=memorise, **FAST)
    right = nested_cross_validate(X, y, patient, "xgboost", seed=0, param_grid=memorise, **FAST)
    assert np.mean([roc_auc(y, o) for o in wrong.oof]) > 0.9
    s = right.summary(n_boot=300)
    assert s["n"] == n_pat
    assert s["auc_ci"][0] < 0.5 < s["auc_ci"][1]


def test_optimised_cut_point_finds_noise_prespecified_cut_does_not():
    rng = np.random.default_rng(2)
    X, y, ids = synth.survival(n=150, signal=0.0, seed=2)
    cuts_q = np.linspace(0.1, 0.9, 41)
    optimised, median = [], []
    for _ in range(40):  # 40 pure-noise markers
        marker = rng.normal(size=len(y))
        # WRONG: the cut that minimises the log-rank p
        optimised.append(min(logrank(y, marker > c)["p"] for c in np.quantile(marker, cuts_q)))
        median.append(logrank(y, marker > np.median(marker))["p"])
    assert np.mean(np.array(optimised) < 0.05) > 0.2  # far above the nominal 5 %
    assert np.mean(np.array(median) < 0.05) <= 0.125
    res = nested_cross_validate(X, y, ids, "cox", seed=0, param_grid={}, **FAST)
    groups = risk_group_summary(res)  # the package: median of training-fold risk
    assert groups["median_logrank_p"] > 0.05
    assert groups["cut"].startswith("median of training-fold risk")


def test_response_used_as_covariate_is_refused():
    X, y, ids = synth.survival(n=120, signal=0.0, seed=4)
    df = X.assign(patient_id=ids, pfs_months=y["time"], pfs_event=y["event"].astype(int))
    # best response is read off the same follow-up: early progressors are "PD" by construction
    df["best_response"] = np.where(df.pfs_months < np.quantile(df.pfs_months, 0.3), "PD", "SD")
    wrong = nested_cross_validate(df[["best_response"]], y, ids, "cox", seed=0, param_grid={},
                                  **FAST)
    assert np.mean([harrell_c(y, o) for o in wrong.oof]) > 0.7
    summary, res = evaluate_table(df, "patient_id", Outcome(time="pfs_months", event="pfs_event"),
                                  "cox", seed=0, n_boot=300, param_grid={}, **FAST)
    assert "best_response" not in res.feature_names
    assert summary["excluded_outcome_columns"] == ["best_response"]
    assert summary["c_index_ci"][0] < 0.5 < summary["c_index_ci"][1]
    with pytest.raises(ValidationError, match="cannot be a covariate"):
        evaluate_table(df, "patient_id", Outcome(time="pfs_months", event="pfs_event"), "cox",
                       ["f0", "best_response"], **FAST)


@pytest.mark.parametrize("recalibrate", [False, True])
def test_class_weighting_needs_recalibration(recalibrate):
    X, y, ids = synth.classification(n=200, signal=0.5, prevalence=0.2, seed=4)
    res = nested_cross_validate(X, y, ids, "xgboost", seed=0,
                                param_grid={"model__recalibrate": [recalibrate]}, **FAST)
    s = res.summary(n_boot=20)
    drift = s["calibration"]["mean_predicted"] - s["calibration"]["observed_rate"]
    if recalibrate:
        assert abs(drift) < 0.05
    else:
        assert drift > 0.15  # weighted odds: mean risk far above the observed rate


def test_missing_resistance_labels_are_dropped_and_counted():
    X, y, ids = synth.classification(n=120, signal=1.0, seed=5)
    df = X.assign(patient_id=ids, primary_resistance=y.astype(float))
    df.loc[:9, "primary_resistance"] = np.nan  # e.g. censored before the landmark: no label
    s, res = evaluate_table(df, "patient_id", Outcome(label="primary_resistance"), "logistic",
                            n_boot=20, **FAST)
    assert s["n_dropped_missing_outcome"] == 10
    assert s["n"] == 110
    assert not set(ids[:10]) & set(res.ids)


def test_survival_target_rejects_negative_or_missing_times():
    with pytest.raises(ValidationError, match="missing or negative"):
        survival_target([1.0, -2.0, np.nan], [1, 0, 1])
