"""evaluate / fit / predict against the store; results recorded with provenance."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.store import query

from .conftest import N_PATIENTS, N_UNLABELLED


def test_evaluate_store_records_run_predictions_and_metrics(store_path, tmp_path):
    out = tmp_path / "r.json"
    args = ["evaluate", "--store", str(store_path), "--outcome", "resistance", "--features",
            "morphology", "--model", "logistic", "--repeats", "2", "--folds", "3",
            "--n-boot", "100", "--json", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    assert s["n"] == N_PATIENTS - N_UNLABELLED
    assert s["n_dropped_missing_outcome"] == N_UNLABELLED
    assert s["auc"] > 0.7  # planted: TIL density drives resistance
    run = query(store_path, "select * from model_runs where model_run_id = $id",
                {"id": s["model_run_id"]})
    assert run.height == 1 and run["validation"][0].startswith("internal")
    assert run["n_dropped_missing_outcome"][0] == N_UNLABELLED
    n_oof = query(store_path, "select count(*) as n from oof_predictions where model_run_id = $id",
                  {"id": s["model_run_id"]})["n"][0]
    assert n_oof == 2 * (N_PATIENTS - N_UNLABELLED)
    auc = query(store_path, "select value, ci_low from model_metrics where model_run_id = $id "
                            "and metric = 'auc'", {"id": s["model_run_id"]})
    assert abs(auc["value"][0] - s["auc"]) < 1e-12
    # same inputs -> same run id, rows replaced not duplicated
    assert CliRunner().invoke(app, args).exit_code == 0
    again = json.loads(out.read_text())
    assert again["model_run_id"] == s["model_run_id"]
    assert query(store_path, "select count(*) as n from model_runs where model_run_id = $id",
                 {"id": s["model_run_id"]})["n"][0] == 1


def test_fit_then_predict_store_and_table(store_path, tmp_path):
    model_file = tmp_path / "cox.joblib"
    res = CliRunner().invoke(app, ["fit", "--store", str(store_path), "--outcome", "pfs",
                                   "--features", "combined", "--model", "cox",
                                   "--out", str(model_file)])
    assert res.exit_code == 0, res.output
    assert model_file.is_file()
    assert "sample size (Riley)" in res.output
    from immunodig.models.persistence import load_model

    meta = load_model(model_file)[1]
    assert meta["sample_size"]["n"] == N_PATIENTS
    # the unpenalised inference fit, or the reason it is impossible on these columns
    assert ("hazard_ratios" in meta) != ("error" in meta["inference"])
    pred_csv = tmp_path / "p.csv"
    res = CliRunner().invoke(app, ["predict", "--model", str(model_file), "--store",
                                   str(store_path), "--out", str(pred_csv)])
    assert res.exit_code == 0, res.output
    import pandas as pd

    pred = pd.read_csv(pred_csv)
    assert len(pred) == N_PATIENTS and set(pred["prediction_type"]) == {"risk_score"}
    fits = query(store_path, "select model_sha256, model_file from model_runs where kind = 'fit'")
    assert fits.height == 1 and len(fits["model_sha256"][0]) == 64
    # a table with the same columns gives the same predictions
    from immunodig.models import model_matrix

    table = tmp_path / "t.parquet"
    model_matrix(store_path, "combined", "pfs").write_parquet(table)
    res = CliRunner().invoke(app, ["predict", "--model", str(model_file), "--table", str(table)])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == N_PATIENTS + 1
    assert abs(float(lines[1].split(",")[1]) - pred["prediction"][0]) < 1e-9


def test_compare_store_feature_sets_on_identical_splits(store_path):
    from immunodig.evaluation.workflow import compare_store

    out = compare_store(store_path, "resistance", "logistic",
                        ("clinical", "morphology", "combined"), n_splits=3, n_repeats=1,
                        n_boot=100, param_grid={"model__C": [0.3]})
    assert out["validation"].startswith("internal")
    assert out["n_dropped_missing_outcome"] == N_UNLABELLED
    assert out["sets"]["morphology"]["auc"] > out["sets"]["clinical"]["auc"]
    assert out["differences"]["morphology - clinical"]["ci"][0] > 0
