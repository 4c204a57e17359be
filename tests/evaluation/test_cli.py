"""`cli.py evaluate --table` on CSV/Parquet, and the JSON contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from immunodig.cli.app import app

from . import synth


@pytest.fixture
def runner():
    return CliRunner()


def test_evaluate_table_label_csv_json_contract(tmp_path, runner):
    X, y, ids = synth.classification(n=90, signal=2.0, seed=11)
    # two rows (slides) per patient, one outcome per patient
    df = X.assign(pid=np.repeat(ids[:45], 2), resistant=np.repeat(np.asarray(y)[::2], 2))
    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["evaluate", "--table", str(path), "--id", "pid", "--label",
                              "resistant", "--model", "logistic", "--json", str(out),
                              "--repeats", "2", "--folds", "3", "--n-boot", "50",
                              "--permutations", "3"])
    assert res.exit_code == 0, res.output
    assert "internal" in res.output
    s = json.loads(out.read_text())
    assert {"auc", "auc_ci", "pr_auc", "brier", "calibration", "n", "n_events", "splits",
            "validation"} <= set(s)
    assert s["validation"] == "internal (nested cross-validation)"
    assert s["n"] == 45 and s["n_rows"] == 90
    assert s["auc_ci"][0] <= s["auc"] <= s["auc_ci"][1]
    assert s["permutation_test"]["n_permutations"] == 3
    assert s["permutation_test"]["p"] == 0.25  # signal beats all 3 permutations


def test_evaluate_table_survival_parquet(tmp_path, runner):
    X, y, ids = synth.survival(n=90, signal=1.0, seed=12)
    path = tmp_path / "m.parquet"
    X.assign(pid=ids, t=y["time"], e=y["event"].astype(int)).to_parquet(path)
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["evaluate", "--table", str(path), "--id", "pid", "--time", "t",
                              "--event", "e", "--model", "xgb-aft", "--json", str(out),
                              "--repeats", "1", "--folds", "3", "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    assert {"c_index", "c_index_ci", "uno_c", "td_auc", "integrated_brier", "risk_groups"} <= set(s)
    assert s["c_index"] > 0.6


def test_evaluate_table_errors_are_clear(tmp_path, runner):
    X, y, ids = synth.classification(n=30, seed=13)
    path = tmp_path / "m.csv"
    X.assign(pid=ids, y=y).to_csv(path, index=False)
    res = runner.invoke(app, ["evaluate", "--table", str(path), "--id", "pid", "--label", "nope",
                              "--model", "logistic"])
    assert res.exit_code != 0
    assert "column nope: column not found" in str(res.exception)
    res = runner.invoke(app, ["evaluate", "--table", str(path), "--id", "pid", "--label", "y",
                              "--model", "cox"])
    assert "survival model" in str(res.exception)


def test_json_safe_turns_nan_into_null():
    from immunodig.evaluation.results import json_safe

    out = json_safe({"a": float("nan"), "b": [np.float64(1.5), np.inf], "c": {"d": np.int64(2)}})
    assert json.loads(json.dumps(out, allow_nan=False)) == {"a": None, "b": [1.5, None],
                                                            "c": {"d": 2}}
