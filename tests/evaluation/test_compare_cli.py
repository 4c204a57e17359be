"""'Morphology adds value' tested properly: paired per-fold differences, corrected resampled
t-test (Nadeau & Bengio 2003), and the `compare` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from immunodig.cli.app import app
from immunodig.evaluation import metrics as M
from immunodig.evaluation import nested_cross_validate
from immunodig.evaluation.cv_interval import corrected_resampled_t_test, fold_metrics

from . import synth

FAST = {"n_splits": 3, "n_repeats": 3, "param_grid": {}}


@pytest.fixture(scope="module")
def two_models():
    X, y, ids = synth.classification(n=150, signal=1.2, seed=31)
    strong = nested_cross_validate(X[["f0", "f1", "f3"]], y, ids, "logistic", seed=0, **FAST)
    weak = nested_cross_validate(X[["f3", "f4"]], y, ids, "logistic", seed=0, **FAST)
    return y, ids, strong, weak


def test_corrected_t_equals_the_one_sample_t_rescaled(two_models):
    y, ids, strong, weak = two_models
    tt = corrected_resampled_t_test(M.roc_auc, y, strong.oof, weak.oof, strong.fold_of, ids)
    a = fold_metrics(M.roc_auc, y, strong.oof, strong.fold_of, ids)
    b = fold_metrics(M.roc_auc, y, weak.oof, weak.fold_of, ids)
    d = a["values"] - b["values"]
    j, ratio = len(d), a["test_train_ratio"]
    naive = stats.ttest_1samp(d, 0.0)  # ordinary t-test: ignores overlapping training sets
    assert tt["t"] == pytest.approx(naive.statistic * np.sqrt((1 / j) / (1 / j + ratio)))
    assert tt["p"] == pytest.approx(2 * stats.t.sf(abs(tt["t"]), j - 1))
    assert tt["p"] > naive.pvalue  # the correction is conservative
    assert ratio == pytest.approx(0.5, abs=0.02)  # 3 folds: 50 test vs 100 training patients
    assert tt["mean_difference"] > 0 and tt["p"] < 0.05


def test_noise_features_do_not_add_value(two_models):
    y, ids, strong, _ = two_models
    X, _, _ = synth.classification(n=150, signal=1.2, seed=31)
    X["noise"] = np.random.default_rng(9).normal(size=len(X))
    plus = nested_cross_validate(X[["f0", "f1", "f3", "noise"]], y, ids, "logistic", seed=0,
                                 **FAST)
    tt = corrected_resampled_t_test(M.roc_auc, y, plus.oof, strong.oof, plus.fold_of, ids)
    assert tt["p"] > 0.05


def test_compare_command_on_a_table(tmp_path):
    X, y, ids = synth.survival(n=120, signal=1.0, seed=32)
    path, out = tmp_path / "t.csv", tmp_path / "cmp.json"
    X.assign(pid=ids, t=y["time"], e=y["event"].astype(int)).to_csv(path, index=False)
    res = CliRunner().invoke(app, [
        "compare", "--table", str(path), "--id", "pid", "--time", "t", "--event", "e",
        "--model", "cox", "--set", "clinical=f2,f3", "--set", "morphology=f0,f1",
        "--set", "combined=clinical,morphology", "--json", str(out), "--repeats", "2",
        "--folds", "3", "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    s = json.loads(out.read_text())
    assert s["reference"] == "clinical" and s["metric"] == "c_index"
    assert s["sets"]["combined"]["n_features"] == 4
    d = s["differences"]["combined - clinical"]
    assert {"p_corrected", "t_corrected", "ci_corrected", "fold_differences"} <= set(d)
    assert len(d["fold_differences"]) == 6 and d["fold_mean"] > 0 and d["p_corrected"] < 0.05
    assert "corrected resampled t-test" in res.output
