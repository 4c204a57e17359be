"""Classifiers follow the scikit-learn contract; class weighting is recalibrated."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from immunodig.models import XGBResistanceClassifier, build_pipeline


def _data(n=400, prevalence=0.2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    lp = np.log(prevalence / (1 - prevalence)) + X[:, 0]
    return X, (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)


def test_sklearn_contract():
    X, y = _data()
    model = XGBResistanceClassifier(n_estimators=20)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    assert model.fit(X, y) is model
    assert clone(model).get_params() == model.get_params()
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(model.predict(X)) <= {0, 1}


def test_balanced_weights_shift_mean_risk_and_recalibration_undoes_it():
    X, y = _data()
    raw = XGBResistanceClassifier(recalibrate=False).fit(X, y).predict_proba(X)[:, 1]
    fixed = XGBResistanceClassifier(recalibrate=True).fit(X, y).predict_proba(X)[:, 1]
    unweighted = XGBResistanceClassifier(class_weight=None).fit(X, y).predict_proba(X)[:, 1]
    assert raw.mean() > y.mean() + 0.15
    assert abs(fixed.mean() - y.mean()) < 0.04
    assert abs(unweighted.mean() - y.mean()) < 0.04
    # recalibration is a monotone shift: ranking unchanged
    np.testing.assert_array_equal(np.argsort(raw, kind="stable"), np.argsort(fixed, kind="stable"))


def test_logistic_pipeline_is_penalised_and_handles_strings_and_missing():
    import pandas as pd

    X, y = _data(200)
    df = pd.DataFrame(X, columns=list("abcde"))
    df["site"] = np.where(np.arange(200) % 2, "x", None)
    df.loc[:20, "a"] = np.nan
    pipe = build_pipeline("logistic").fit(df, y)
    assert pipe[-1].C < 10  # ridge by default
    p = pipe.predict_proba(df.assign(site="never-seen"))[:, 1]
    assert np.all((p > 0) & (p < 1))
