"""External / temporal validation: `fit` on cohort A, `evaluate --model-file` on cohort B."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.models.persistence import load_model

from . import synth

COVARIATES = "rx,sex,age,obstruct,perfor,adhere,nodes,differ,extent,surg,node4"


def _cli(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res


def test_temporal_validation_on_colon(shared_data, tmp_path):
    src = shared_data / "r-survival-colon" / "colon.csv"
    if not src.is_file():
        pytest.skip(f"{src} missing")
    df = pd.read_csv(src)
    df = df[df.etype == 1][["id", "time", "status", *COVARIATES.split(",")]]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    df[df.id <= 465].to_csv(a, index=False)  # earlier registrations ...
    df[df.id > 465].to_csv(b, index=False)  # ... validate the later ones
    model, out = tmp_path / "a.joblib", tmp_path / "ext.json"
    _cli("fit", "--table", a, "--id", "id", "--time", "time", "--event", "status", "--model",
         "cox", "--out", model)
    res = _cli("evaluate", "--model-file", model, "--table", b, "--id", "id", "--time", "time",
               "--event", "status", "--json", out, "--n-boot", "200")
    assert "external" in res.output
    s = json.loads(out.read_text())
    assert s["n"] == 464 and s["fitted_n"] == 465
    # independent: the saved pipeline's risk on B, scored by lifelines
    pipe, _ = load_model(model)
    B = df[df.id > 465].sort_values("id")
    risk = pipe.predict(B[COVARIATES.split(",")])
    assert s["c_index"] == pytest.approx(concordance_index(B.time, -risk, B.status), abs=1e-9)
    assert s["c_index_ci"][0] < s["c_index"] < s["c_index_ci"][1]
    ref = CoxPHFitter().fit(pd.DataFrame({"lp": risk, "t": B.time, "e": B.status}), "t", "e")
    assert s["calibration"]["slope"] == pytest.approx(ref.params_["lp"], abs=5e-3)  # Breslow/Efron
    assert s["calibration"]["slope_ci"][0] > 1  # ridge-shrunk predictions: too modest in B
    Xt = pipe[:-1].transform(B[COVARIATES.split(",")])
    H = pipe[-1].lifelines_.predict_cumulative_hazard(Xt[pipe[-1].kept_columns_],
                                                      times=np.unique(B.time))
    own = H.to_numpy()[np.searchsorted(np.unique(B.time), B.time), np.arange(len(B))]
    assert s["calibration"]["o_e_ratio"] == pytest.approx(B.status.sum() / own.sum(), rel=1e-6)


def test_external_validation_binary(tmp_path):
    X, y, ids = synth.classification(n=240, signal=1.5, seed=21)
    df = X.assign(pid=ids, resistant=y)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    df.iloc[:120].to_csv(a, index=False)
    df.iloc[120:].to_csv(b, index=False)
    model, out = tmp_path / "m.joblib", tmp_path / "ext.json"
    _cli("fit", "--table", a, "--id", "pid", "--label", "resistant", "--model", "logistic",
         "--out", model)
    _cli("evaluate", "--model-file", model, "--table", b, "--json", out, "--n-boot", "100")
    s = json.loads(out.read_text())
    pipe, _ = load_model(model)
    p = pipe.predict_proba(df.iloc[120:].drop(columns=["pid", "resistant"]))[:, 1]
    yb = df.iloc[120:].resistant.to_numpy()
    assert s["auc"] == pytest.approx(roc_auc_score(yb, p), abs=1e-12)
    assert s["auc_ci"][0] < s["auc"] < s["auc_ci"][1]
    logit = np.log(p / (1 - p))[:, None]
    slope = LogisticRegression(C=np.inf).fit(logit, yb).coef_[0, 0]
    assert s["calibration"]["slope"] == pytest.approx(slope, abs=1e-4)
    assert s["n"] == 120 and s["n_events"] == int(yb.sum())
