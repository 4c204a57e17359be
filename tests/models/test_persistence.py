"""Fitted models reload with identical predictions and their metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunodig.errors import ModelFileError
from immunodig.models import build_pipeline, load_model, save_model, survival_target


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    y = survival_target(rng.exponential(10, 80), rng.integers(0, 2, 80))
    pipe = build_pipeline("xgb-cox", model__n_estimators=20).fit(X, y)
    meta = {"model": "xgb-cox", "features": ["a", "b", "c"]}
    path = save_model(pipe, tmp_path / "m.joblib", meta)
    loaded, meta = load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    assert meta["features"] == ["a", "b", "c"]
    assert "xgboost" in meta["versions"] and meta["created_at"]
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_files_raise_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.joblib")
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ModelFileError, match="not a readable model file"):
        load_model(bad)
