"""Encoding, imputation and scaling are learnt from the training rows only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from immunodig.models.preprocessing import MISSING_LEVEL, TopKSelector, make_preprocessor


def test_imputation_and_scaling_use_training_statistics_only():
    train = pd.DataFrame({"a": [1.0, 2.0, np.nan, 3.0], "s": ["x", "y", None, "x"]})
    test = pd.DataFrame({"a": [np.nan, 100.0], "s": ["z", "y"]})
    prep = make_preprocessor(scale=False).fit(train)
    out = prep.transform(test)
    assert out.loc[0, "a"] == 2.0  # training median, not test's
    assert out.loc[0, "missingindicator_a"] == 1.0
    assert out.loc[1, "a"] == 100.0
    assert f"s_{MISSING_LEVEL}" in out.columns
    assert out.filter(like="s_").loc[0].sum() == 0  # unseen level: all-zero
    scaled = make_preprocessor(scale=True).fit(train).transform(train)
    assert abs(scaled["a"].mean()) < 1e-12


def test_top_k_selector_keeps_the_informative_column():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 20)), columns=[f"c{i}" for i in range(20)])
    y = (X["c7"] + 0.3 * rng.normal(size=200) > 0).astype(int)
    sel = TopKSelector(k=1).fit(X, y)
    assert list(sel.transform(X).columns) == ["c7"]
    assert TopKSelector(k=None).fit(X, y).transform(X).shape == X.shape
