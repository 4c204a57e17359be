"""nested_cross_validate(estimator=...): any scikit-learn / scikit-survival estimator under the
same splits, inner loop and metrics as the named models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunodig.errors import ValidationError
from immunodig.evaluation.nested_cv import nested_cross_validate
from immunodig.models import build_pipeline, survival_target

CV = {"n_splits": 4, "n_repeats": 2, "seed": 5, "inner_splits": 3}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    n = 80
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "side": rng.choice(["left", "right"], n)})
    X.loc[::9, "b"] = np.nan
    label = (X["a"] - 0.5 * X["b"].fillna(0) + rng.normal(size=n) > 0).astype(int).to_numpy()
    time = rng.exponential(np.exp(-X["a"].to_numpy()) * 10)
    return X, label, survival_target(time, rng.random(n) < 0.75), np.array([f"P{i}" for i in range(n)])


def test_the_named_pipeline_given_as_estimator_reproduces_the_named_model(data):
    X, label, _, ids = data
    named = nested_cross_validate(X, label, ids, "logistic", param_grid={}, **CV)
    given = nested_cross_validate(X, label, ids, estimator=build_pipeline("logistic"), **CV)
    np.testing.assert_allclose(given.oof, named.oof, rtol=1e-10)
    assert given.splits_key == named.splits_key and given.model == "estimator:Pipeline"
    assert given.summary(n_boot=50)["auc"] == named.summary(n_boot=50)["auc"]


def test_a_grid_of_the_estimators_parameters_is_searched_inside(data):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    from immunodig.models.preprocessing import make_preprocessor

    X, label, _, ids = data
    est = Pipeline([("prep", make_preprocessor()), ("rf", RandomForestClassifier(n_estimators=30))])
    res = nested_cross_validate(X, label, ids, "random-forest", estimator=est,
                                param_grid={"rf__max_depth": [2, 4]}, **CV)
    assert res.model == "random-forest"
    assert {tuple(sorted(b["params"])) for b in res.best_params} == {("rf__max_depth", "rf__random_state")}
    assert all(b["params"]["rf__random_state"] == 5 for b in res.best_params)
    again = nested_cross_validate(X, label, ids, "random-forest", estimator=est,
                                  param_grid={"rf__max_depth": [2, 4]}, **CV)
    np.testing.assert_array_equal(res.oof, again.oof)
    assert res.summary(n_boot=50)["auc"] > 0.7


def test_a_scikit_survival_estimator(data):
    sksurv = pytest.importorskip("sksurv.linear_model")
    from sklearn.pipeline import Pipeline

    from immunodig.models.preprocessing import make_preprocessor

    X, _, y, ids = data
    est = Pipeline([("prep", make_preprocessor()), ("cox", sksurv.CoxPHSurvivalAnalysis(alpha=0.1))])
    res = nested_cross_validate(X, y, ids, estimator=est, **CV)
    out = res.summary(n_boot=50)
    assert out["task"] == "survival" and out["c_index"] > 0.65 and res.oof_surv is None


def test_a_classifier_without_probabilities_is_refused(data):
    from sklearn.svm import LinearSVC

    X, label, _, ids = data
    with pytest.raises(ValidationError, match="no predict_proba"):
        nested_cross_validate(X[["a"]], label, ids, estimator=LinearSVC(), **CV)
