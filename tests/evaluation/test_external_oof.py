"""Out-of-fold predictions made elsewhere, scored on the package's splits: the exported splits
are the nested CV's, the package's own OOF predictions round-trip to the same metrics, and
predictions on other partitions are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from immunodig.errors import ValidationError
from immunodig.evaluation.external_oof import score_oof_predictions, splits_table
from immunodig.evaluation.nested_cv import nested_cross_validate
from immunodig.models import survival_target

CV = {"n_splits": 4, "n_repeats": 2, "seed": 3}


@pytest.fixture(scope="module")
def cohort():
    rng = np.random.default_rng(0)
    n = 60
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (X["a"] + rng.normal(scale=1.0, size=n) > 0).astype(int).to_numpy()
    ids = np.array([f"P{i:03d}" for i in range(n)])
    return X, y, ids


def _as_table(result) -> pd.DataFrame:
    return pd.DataFrame([{"patient_id": p, "repeat": r, "fold": int(result.fold_of[r, i]),
                          "prediction": float(result.oof[r, i]), "train_cut": float(result.train_cut[r, i])}
                         for r in range(result.oof.shape[0]) for i, p in enumerate(result.ids)])


def test_exported_splits_are_those_of_the_nested_cv(cohort):
    X, y, ids = cohort
    res = nested_cross_validate(X, y, ids, "logistic", inner_splits=3, **CV)
    frame, key = splits_table(ids, y, **{"n_splits": 4, "n_repeats": 2, "seed": 3})
    assert key == res.splits_key
    got = {(p, r): f for p, r, f in frame.iter_rows()}
    for r in range(2):
        for i, p in enumerate(ids):
            assert got[(p, r)] == res.fold_of[r, i]


def test_the_packages_own_predictions_round_trip_to_the_same_metrics(cohort):
    X, y, ids = cohort
    res = nested_cross_validate(X, y, ids, "logistic", inner_splits=3, **CV)
    table = _as_table(res).sample(frac=1.0, random_state=1)  # order does not matter
    ext = score_oof_predictions(table, ids, y, model="gpu-model", **CV)
    a, b = res.summary(n_boot=200), ext.summary(n_boot=200)
    assert b["auc"] == a["auc"] and b["auc_ci"] == a["auc_ci"] and b["brier"] == a["brier"]
    assert ext.splits_key == res.splits_key and b["model"] == "gpu-model"


def test_survival_predictions_without_training_cut(cohort):
    X, _, ids = cohort
    rng = np.random.default_rng(1)
    y = survival_target(rng.exponential(10, len(ids)), rng.random(len(ids)) < 0.7)
    frame, _ = splits_table(ids, y, **CV)
    risk = {p: v for p, v in zip(ids, X["a"].to_numpy())}
    table = frame.to_pandas().assign(prediction=lambda d: d["patient_id"].map(risk))
    ext = score_oof_predictions(table, ids, y, **CV)
    summary = ext.summary(n_boot=100)
    assert 0 <= summary["c_index"] <= 1 and "risk_groups" in summary
    assert "median out-of-fold" in summary["external_predictions"]["risk_group_cut"]


@pytest.mark.parametrize("damage, message", [
    (lambda t: t.assign(fold=(t["fold"] + 1) % 4), "the splits test it in fold"),
    (lambda t: t.iloc[1:], "no prediction"),
    (lambda t: pd.concat([t, t.iloc[:1]]), "predicted twice"),
    (lambda t: pd.concat([t, t.iloc[:1].assign(patient_id="X999")]), "not a patient of these splits"),
    (lambda t: t.drop(columns="fold"), "column not found"),
    (lambda t: t.assign(prediction=np.nan), "non-finite"),
])
def test_predictions_on_other_partitions_or_incomplete_are_refused(cohort, damage, message):
    X, y, ids = cohort
    frame, _ = splits_table(ids, y, **CV)
    table = frame.to_pandas().assign(prediction=0.5)
    with pytest.raises(ValidationError, match=message):
        score_oof_predictions(damage(table), ids, y, **CV)


def test_cli_splits_then_evaluate_oof_file(tmp_path):
    from immunodig.cli.app import app
    from immunodig.store import query
    from tests.report.builders import build_store

    store = build_store(tmp_path, Path("/absent/he.tiff"), n_patients=24, models=False)
    runner = CliRunner()
    res = runner.invoke(app, ["splits", "--store", str(store), "--outcome", "resistance", "--out",
                              str(tmp_path / "splits.csv"), "--folds", "3", "--repeats", "2"])
    assert res.exit_code == 0, res.output
    printed_key = res.output
    splits = pd.read_csv(tmp_path / "splits.csv")
    splits["prediction"] = np.random.default_rng(0).random(len(splits))
    splits.to_csv(tmp_path / "oof.csv", index=False)
    res = runner.invoke(app, ["evaluate", "--store", str(store), "--outcome", "resistance", "--oof-file",
                              str(tmp_path / "oof.csv"), "--name", "gpu-abmil", "--folds", "3", "--repeats", "2",
                              "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    assert "gpu-abmil: n=" in res.output and "predictions made outside immunodig" in res.output
    run = query(store, "select model, feature_set, splits_key from model_runs").row(0)
    assert run[:2] == ("gpu-abmil", "external predictions")
    assert f"splits_key {run[2]}" in printed_key
    res = runner.invoke(app, ["evaluate", "--store", str(store), "--outcome", "resistance", "--oof-file",
                              str(tmp_path / "oof.csv"), "--folds", "5", "--repeats", "2", "--n-boot", "50"])
    assert isinstance(res.exception, ValidationError) and "the splits test it in fold" in str(res.exception)
