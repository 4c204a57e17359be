"""Hazard ratios of the unpenalised inference fit agree with lifelines' own fit (and R)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.statistics import proportional_hazard_test
from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.errors import ValidationError
from immunodig.evaluation.inference import cox_inference
from immunodig.models import build_pipeline, survival_target
from tests.conftest import read_shared_csv

COVARIATES = ["rx", "sex", "age", "obstruct", "perfor", "adhere", "nodes", "differ", "extent",
              "surg", "node4"]


@pytest.fixture(scope="module")
def colon(shared_data):
    df = read_shared_csv(shared_data, "r-survival-colon/colon.csv")
    return df[df.etype == 1][["id", "time", "status", *COVARIATES]].reset_index(drop=True)


def _lifelines_fit(df: pd.DataFrame, reference: str, cluster: bool = False):
    """lifelines on complete cases with rx dummy-coded against ``reference``."""
    d = df.dropna(subset=COVARIATES)
    d = pd.get_dummies(d, columns=["rx"], prefix_sep="[", dtype=float)
    d = d.rename(columns=lambda c: c + "]" if c.startswith("rx[") else c)
    d = d.drop(columns=[f"rx[{reference}]"])
    cols = [c for c in d.columns if c != "id" or cluster]
    cph = CoxPHFitter().fit(d[cols], "time", "status", cluster_col="id" if cluster else None)
    return cph, d[cols]


def test_fit_json_equals_lifelines_with_same_reference(colon, tmp_path):
    table = tmp_path / "colon_recurrence.csv"
    colon.to_csv(table, index=False)
    out = tmp_path / "fit.json"
    res = CliRunner().invoke(app, ["fit", "--table", str(table), "--id", "id", "--time", "time",
                                   "--event", "status", "--model", "cox", "--reference",
                                   "rx=Obs", "--json", str(out), "--out",
                                   str(tmp_path / "m.joblib")])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    cph, design = _lifelines_fit(colon, "Obs")
    ref = cph.summary
    hr = {(r["term"], r["level"]): r for r in s["hazard_ratios"]}
    assert len(hr) == len(ref) == 12  # rx: two levels vs Obs; numeric covariates per unit
    for (term, level), row in hr.items():
        key = f"{term}[{level}]" if level else term
        assert row["hr"] == pytest.approx(ref.loc[key, "exp(coef)"], abs=1e-3)
        assert row["ci_low"] == pytest.approx(ref.loc[key, "exp(coef) lower 95%"], abs=1e-3)
        assert row["ci_high"] == pytest.approx(ref.loc[key, "exp(coef) upper 95%"], abs=1e-3)
        assert row["p"] == pytest.approx(ref.loc[key, "p"], abs=1e-3)
        assert row["reference"] == ("Obs" if term == "rx" else None)
    # R survival::coxph on the same complete cases: Lev+5FU vs Obs 0.61 (0.48-0.77), p = 4e-5
    trt = hr[("rx", "Lev+5FU")]
    assert (round(trt["hr"], 2), round(trt["ci_low"], 2), round(trt["ci_high"], 2)) == (
        0.61, 0.48, 0.77)
    assert trt["p"] == pytest.approx(4.1e-5, rel=0.05)
    ph = proportional_hazard_test(cph, design, time_transform="rank").summary
    for row in s["ph_test"]:
        key = f"{row['term']}[{row['level']}]" if row["level"] else row["term"]
        assert row["p"] == pytest.approx(ph.loc[key, "p"], abs=1e-3)
    assert s["inference"]["n_used"] == 888 and s["inference"]["n_dropped_incomplete"] == 41
    assert s["n_events"] == 468


def test_default_reference_is_first_level_and_repeated_ids_are_clustered(colon):
    y = survival_target(colon.time, colon.status)
    r = cox_inference(colon[COVARIATES], y)
    assert {row["reference"] for row in r["hazard_ratios"] if row["term"] == "rx"} == {"Lev"}
    cph, _ = _lifelines_fit(colon, "Lev")
    got = {row["level"]: row["hr"] for row in r["hazard_ratios"] if row["term"] == "rx"}
    assert got["Obs"] == pytest.approx(cph.summary.loc["rx[Obs]", "exp(coef)"], abs=1e-6)
    # every patient twice: same ratios, cluster-robust intervals equal lifelines' cluster_col
    twice = pd.concat([colon, colon], ignore_index=True)
    r2 = cox_inference(twice[COVARIATES], survival_target(twice.time, twice.status), twice.id,
                       reference={"rx": "Lev"})
    assert r2["robust_se"]
    ref2, _ = _lifelines_fit(twice, "Lev", cluster=True)
    row = next(x for x in r2["hazard_ratios"] if x["level"] == "Obs")
    assert row["hr"] == pytest.approx(got["Obs"], abs=1e-3)  # Efron ties differ slightly
    assert row["ci_low"] == pytest.approx(ref2.summary.loc["rx[Obs]", "exp(coef) lower 95%"],
                                          abs=1e-6)


def test_per_sd_and_categorical_numeric_columns():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"x": rng.normal(5, 2, n), "grade": rng.integers(1, 4, n)})
    t = rng.exponential(np.exp(-0.3 * df.x - 0.5 * (df.grade == 3)))
    y = survival_target(t, rng.random(n) < 0.8)
    unit = cox_inference(df, y)["hazard_ratios"][0]["hr"]
    per_sd = cox_inference(df, y, per_sd=True)["hazard_ratios"][0]["hr"]
    assert per_sd == pytest.approx(unit ** df.x.std(ddof=1), rel=1e-6)
    cat = cox_inference(df, y, categorical=["grade"], reference={"grade": 2})
    assert [(r["level"], r["reference"]) for r in cat["hazard_ratios"][1:]] == [("1", "2"),
                                                                                ("3", "2")]
    with pytest.raises(ValidationError, match="does not occur"):
        cox_inference(df, y, categorical=["grade"], reference={"grade": 7})


def test_unpenalised_prediction_cox_with_categories_fits(colon):
    """penalizer=0 with a one-hot category used to raise lifelines' collinearity error."""
    y = survival_target(colon.time, colon.status)
    pipe = build_pipeline("cox", model__penalizer=0.0).fit(colon[["rx", "age", "nodes"]], y)
    kept = pipe[-1].kept_columns_
    assert sum(c.startswith("rx_") for c in kept) == 2
    assert np.isfinite(pipe.predict(colon[["rx", "age", "nodes"]])).all()
