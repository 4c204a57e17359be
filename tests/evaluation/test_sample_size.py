"""Riley's minimum sample size reproduces the published pmsampsize examples."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.errors import SampleSizeWarning
from immunodig.evaluation.sample_size import fit_sample_size, riley_sample_size

from . import synth


def test_binary_example_of_pmsampsize():
    """R: pmsampsize(type = "b", csrsquared = 0.288, parameters = 24, prevalence = 0.174)
    (Riley et al. BMJ 2020): criteria 623, 662, 221; max R2_CS 0.603, Nagelkerke 0.477,
    shrinkage of criterion 2 0.905; final 662 (EPP 4.80)."""
    r = riley_sample_size(24, 0.174, r2_cs=0.288)
    assert [c["required_n"] for c in r["criteria"]] == [623, 662, 221]
    assert r["required_n"] == 662
    assert round(r["max_r2_cs"], 3) == 0.603 and round(r["nagelkerke_r2"], 3) == 0.477
    assert round(r["criteria"][1]["shrinkage"], 3) == 0.905
    assert round(r["required_events"] / 24, 2) == 4.80


def test_survival_example_of_pmsampsize():
    """R: pmsampsize(type = "s", csrsquared = 0.051, parameters = 30, rate = 0.065,
    timepoint = 2, meanfup = 2.07): criteria 5143 and 1039 (shrinkage 0.648), max R2_CS 0.555,
    692 events, EPP 23.07; criterion 3 met."""
    r = riley_sample_size(30, 0.065 * 2.07, survival=True, r2_cs=0.051, timepoint=2,
                          mean_follow_up=2.07)
    assert [c["required_n"] for c in r["criteria"]] == [5143, 1039]
    assert round(r["criteria"][1]["shrinkage"], 3) == 0.648
    assert round(r["max_r2_cs"], 3) == 0.555
    assert int(np.ceil(r["required_events"])) == 692
    assert round(r["required_events"] / 30, 2) == 23.07
    assert r["criterion_3"]["ok"]


def test_150_patients_30_percent_events_support_about_two_parameters():
    r = riley_sample_size(10, 0.3, n=150)  # default R2_CS = 0.15 x max
    assert r["max_parameters"] == pytest.approx(1.9, abs=0.05)
    assert not r["ok"] and "about 1.9 parameter(s)" in r["warning"]
    assert riley_sample_size(1, 0.3, n=400)["ok"]


def test_fit_counts_encoded_parameters_and_warns(tmp_path):
    X, y, ids = synth.classification(n=150, p=8, signal=1.0, prevalence=0.3, seed=3)
    plan = fit_sample_size(X, y, ids, "logistic")
    # 8 numeric + 1 missing indicator (f2) + 3 one-hot levels of site
    assert plan["parameters"] == 12 and plan["warning"]
    from immunodig.evaluation.tabular import Outcome
    from immunodig.evaluation.workflow import fit_table

    with pytest.warns(SampleSizeWarning, match="Riley"):
        fit_table(X.assign(pid=ids, r=y), "pid", Outcome(label="r"), "logistic",
                  tmp_path / "api.joblib")
    path, out = tmp_path / "t.csv", tmp_path / "fit.json"
    X.assign(pid=ids, r=y).to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(app, ["fit", "--table", str(path), "--id", "pid", "--label",
                                       "r", "--model", "logistic", "--json", str(out), "--out",
                                       str(tmp_path / "m.joblib")])
    assert res.exit_code == 0, res.output
    assert res.output.index("sample size (Riley)") < res.output.index("fitted logistic")
    assert "WARNING" in res.output
    s = json.loads(out.read_text())["sample_size"]
    assert s["parameters"] == 12 and s["n"] == 150 and s["events"] == int(np.sum(y))
    assert s["ok"] is False and [c["criterion"] for c in s["criteria"]] == [1, 2, 3]
