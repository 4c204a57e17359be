"""Degenerate modelling input gets a clear error or a named warning, and every reported estimate
lies inside its interval (issue #13)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunodig.errors import RepeatedPatientWarning, UninformativeFeatureWarning, ValidationError
from immunodig.evaluation import metrics as M
from immunodig.evaluation import nested_cross_validate
from immunodig.evaluation.bootstrap import bootstrap_metric
from immunodig.evaluation.cv_interval import corrected_cv_interval
from immunodig.evaluation.nested_cv import fit_final_model
from immunodig.evaluation.tabular import Outcome, evaluate_table

from . import synth

FAST = {"n_splits": 3, "n_repeats": 2, "n_boot": 30, "param_grid": {}}


def _table(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"pid": [f"P{i:03d}" for i in range(n)], "f0": rng.normal(size=n),
                         "y": (rng.random(n) < 0.4).astype(int)})


@pytest.mark.parametrize("value", [1.0, np.nan], ids=["constant", "all_missing"])
def test_only_an_uninformative_covariate_is_refused(value):
    df = _table().assign(f0=value)
    with pytest.raises(ValidationError, match="column f0: constant or entirely missing"):
        evaluate_table(df, "pid", Outcome(label="y"), "logistic", **FAST)


def test_an_uninformative_covariate_among_others_is_left_out_with_a_warning():
    df = _table().assign(const=3.0, empty=np.nan)
    with pytest.warns(UninformativeFeatureWarning, match="const, empty"):
        s, _ = evaluate_table(df, "pid", Outcome(label="y"), "logistic", **FAST)
    assert s["uninformative_features"] == ["const", "empty"] and s["features"] == ["f0"]


@pytest.mark.parametrize("label", [0, 1])
def test_one_outcome_class_is_refused(label):
    with pytest.raises(ValidationError, match="column y: .*both outcomes"):
        evaluate_table(_table().assign(y=label), "pid", Outcome(label="y"), "logistic", **FAST)
    X, _, ids = synth.classification(n=30, seed=1)
    with pytest.raises(ValidationError, match="both outcomes"):
        nested_cross_validate(X, np.full(30, label), ids, "logistic", param_grid={})
    with pytest.raises(ValidationError, match="both outcomes"):
        fit_final_model(X, np.full(30, label), ids, "logistic", param_grid={})


def test_survival_without_events_is_refused():
    df = _table().assign(t=np.linspace(1, 20, 60), e=0)
    with pytest.raises(ValidationError, match="column e: no events"):
        evaluate_table(df, "pid", Outcome(time="t", event="e"), "cox", **FAST)


def test_text_in_a_numeric_column_is_refused_by_row():
    df = _table().astype({"f0": object})
    df.loc[[3, 7], "f0"] = ["n.d.", "<0.1"]
    with pytest.raises(ValidationError) as info:
        evaluate_table(df, "pid", Outcome(label="y"), "logistic", **FAST)
    assert {(p["row"], p["column"]) for p in info.value.problems} == {(4, "f0"), (8, "f0")}
    assert "n.d." not in str(info.value)
    # a text column (categories) is not a numeric column
    cat = _table().assign(site=np.where(np.arange(60) % 2, "a", "b"))
    evaluate_table(cat, "pid", Outcome(label="y"), "logistic", **FAST)


def test_duplicate_patient_rows_are_reported_not_dropped():
    df = _table()
    df = pd.concat([df, df.iloc[:5]], ignore_index=True)
    with pytest.warns(RepeatedPatientWarning, match="5 patient.*several rows.*5 row.*exactly"):
        s, _ = evaluate_table(df, "pid", Outcome(label="y"), "logistic", **FAST)
    assert s["n"] == 60 and s["n_rows"] == 65
    assert s["n_patients_with_several_rows"] == 5 and s["n_identical_rows"] == 5
    conflicting = df.copy()
    conflicting.loc[60, "y"] = 1 - conflicting.loc[0, "y"]
    with pytest.raises(ValidationError, match="different outcomes"):
        evaluate_table(conflicting, "pid", Outcome(label="y"), "logistic", **FAST)


def _ci_keys(summary: dict):
    for key, ci in summary.items():
        if key.endswith("_ci") and key[:-3] in summary:
            yield key[:-3], summary[key[:-3]], ci


def _inside(est, ci) -> bool:
    lo, hi = ci
    return (np.isnan(lo) and np.isnan(hi)) or lo <= est <= hi


@pytest.mark.parametrize("seed", range(6))
def test_summary_estimates_lie_inside_their_intervals(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(24, 70))
    X, y, ids = synth.classification(n=n, p=3, signal=float(rng.choice([0.0, 0.5, 3.0])),
                                     seed=seed)
    if seed % 2:  # a patient-level rounding of predictions into few ties
        X = X.round(0)
    s = nested_cross_validate(X, y, ids, "logistic", seed=seed, param_grid={}, n_splits=3,
                              n_repeats=2).summary(n_boot=40, seed=seed)
    checked = list(_ci_keys(s))
    assert {"auc", "pr_auc", "brier"} <= {k for k, _, _ in checked}
    for key, est, ci in checked:
        assert _inside(est, ci), (key, est, ci)


@pytest.mark.parametrize("seed", range(40))
def test_interval_functions_contain_their_estimate_on_random_and_degenerate_input(seed):
    """Property: for random fold layouts, tied or constant-per-fold predictions and tiny folds,
    the corrected interval (given the estimate) and the bootstrap interval contain it or are NaN."""
    rng = np.random.default_rng(seed)
    n, reps, k = int(rng.integers(6, 40)), int(rng.integers(1, 4)), int(rng.integers(2, 5))
    y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
    y[:2] = [0, 1]
    fold_of = np.stack([rng.permutation(np.arange(n) % k) for _ in range(reps)])
    kind = seed % 3
    preds = rng.random((reps, n))
    if kind == 1:  # constant within each fold, different between folds (the case)
        preds = rng.random((reps, k))[np.arange(reps)[:, None], fold_of]
    elif kind == 2:  # heavy ties
        preds = np.round(preds, 1)
    ids = np.arange(n).astype(str)
    est = float(np.mean([M.roc_auc(y, p) for p in preds]))
    c = corrected_cv_interval(M.roc_auc, y, preds, fold_of, ids, estimate=est)
    assert _inside(est, c["ci"]), (est, c)
    b = bootstrap_metric(M.roc_auc, y, preds, ids, n_boot=25, seed=seed)
    assert _inside(b["estimate"], b["ci"]), b
