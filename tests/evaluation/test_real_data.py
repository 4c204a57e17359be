"""Real data: the R survival::colon trial (recurrence), nested CV of cox and xgb-cox."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from immunodig.cli.app import app

COVARIATES = "rx,sex,age,obstruct,perfor,adhere,nodes,differ,extent,surg,node4"


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cox", "xgb-cox"])
def test_colon_recurrence_c_index(shared_data, tmp_path, model):
    src = shared_data / "r-survival-colon" / "colon.csv"
    if not src.is_file():
        pytest.skip(f"{src} missing")
    df = pd.read_csv(src)
    table = tmp_path / "colon_recurrence.csv"
    df[df.etype == 1].to_csv(table, index=False)
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["evaluate", "--table", str(table), "--id", "id", "--time",
                                   "time", "--event", "status", "--covariates", COVARIATES,
                                   "--model", model, "--json", str(out), "--n-boot", "300"])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    assert s["n"] == 929 and s["n_events"] == 468
    # published models on these covariates reach a C-index of about 0.65-0.67
    assert 0.63 < s["c_index"] < 0.70
    assert s["c_index_ci"][0] > 0.6
