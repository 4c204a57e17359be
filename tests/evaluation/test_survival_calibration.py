"""Survival calibration (slope, risk by a horizon vs Kaplan-Meier, O/E) and RMST agree with
lifelines; curves are computed once (evaluation.curves) and drawn by report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time

from immunodig.evaluation import metrics as M
from immunodig.evaluation import nested_cross_validate
from immunodig.evaluation.curves import survival_calibration_curve
from immunodig.models import survival_target

from . import synth


@pytest.fixture(scope="module")
def rossi(shared_data):
    path = shared_data / "lifelines-datasets" / "rossi.csv"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return pd.read_csv(path)


def test_calibration_slope_matches_lifelines():
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    t, c = rng.exponential(np.exp(-0.7 * x)), rng.exponential(2, size=300)
    y = survival_target(np.minimum(t, c), t < c)  # continuous times: no ties
    ref = CoxPHFitter().fit(pd.DataFrame({"x": x, "t": y["time"], "e": y["event"]}), "t", "e")
    assert M.cox_calibration_slope(y, x) == pytest.approx(ref.params_["x"], abs=1e-6)
    assert M.cox_calibration_slope(y, 2 * x) == pytest.approx(ref.params_["x"] / 2, abs=1e-6)


def test_calibration_slope_with_tied_times(rossi):
    # Breslow ties here, Efron in lifelines: close, not identical, on rossi's weekly times
    y = survival_target(rossi.week, rossi.arrest)
    ref = CoxPHFitter().fit(rossi[["week", "arrest", "prio"]], "week", "arrest")
    assert M.cox_calibration_slope(y, rossi.prio) == pytest.approx(ref.params_["prio"],
                                                                  abs=1e-3)


def test_rmst_matches_lifelines(rossi):
    y = survival_target(rossi.week, rossi.arrest)
    km = KaplanMeierFitter().fit(rossi.week, rossi.arrest)
    for h in (10.0, 30.5, 52.0):
        assert M.rmst(y, h) == pytest.approx(restricted_mean_survival_time(km, t=h), abs=1e-9)


def test_survival_calibration_curve_bins_match_kaplan_meier(rossi):
    y = survival_target(rossi.week, rossi.arrest)
    rng = np.random.default_rng(2)
    s_pred = rng.uniform(0.5, 0.95, len(rossi))
    curve = survival_calibration_curve(y, s_pred, horizon=26.0, n_bins=4)
    risk = 1 - s_pred
    edges = np.quantile(risk, [0, 0.25, 0.5, 0.75, 1])
    for k in range(4):
        m = (risk >= edges[k]) & ((risk < edges[k + 1]) if k < 3 else (risk <= edges[k + 1]))
        km = KaplanMeierFitter().fit(rossi.week[m], rossi.arrest[m])
        assert curve.observed[k] == pytest.approx(1 - km.predict(26.0), abs=1e-12)
        assert curve.mean_predicted[k] == pytest.approx(risk[m].mean())
        assert curve.ci_low[k] <= curve.observed[k] <= curve.ci_high[k]
    assert curve.counts.sum() == len(rossi)


def test_observed_expected_of_the_true_model_is_near_one():
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.normal(size=n)
    rate = 0.1 * np.exp(0.5 * x)
    t, c = rng.exponential(1 / rate), rng.uniform(0, 20, n)
    y = survival_target(np.minimum(t, c), t < c)
    H = rate * y["time"]  # true cumulative hazard at each patient's own time
    assert M.observed_expected(y, H) == pytest.approx(1.0, abs=0.05)
    assert M.observed_expected(y, 2 * H) == pytest.approx(0.5, abs=0.03)


def test_survival_summary_has_calibration_rmst_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from immunodig.report import plot_cv_calibration

    X, y, ids = synth.survival(n=90, signal=1.0, seed=16)
    res = nested_cross_validate(X, y, ids, "cox", n_splits=3, n_repeats=2, seed=0,
                                param_grid={})
    s = res.summary(n_boot=20, horizons=[3.0, 6.0])
    assert s["calibration"]["horizon"] == 6.0 or s["calibration"]["horizon"] == 3.0
    assert 0.5 < s["calibration"]["slope"] < 1.5
    assert s["rmst"]["overall"][0] == pytest.approx(M.rmst(y, 3.0))
    assert all(d > 0 for d in s["rmst"]["difference_low_minus_high"])  # signal: low risk lives longer
    cal = s["calibration_at_horizons"][0]
    assert cal["observed_rate"] == pytest.approx(
        1 - KaplanMeierFitter().fit(y["time"], y["event"]).predict(3.0))
    fig, ax = plt.subplots()
    assert plot_cv_calibration(s, ax=ax) is ax  # raised KeyError on survival summaries
    assert "Kaplan-Meier" in ax.get_ylabel()
    plt.close(fig)
