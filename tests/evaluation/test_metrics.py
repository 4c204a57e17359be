"""Metrics agree with independent implementations on the same predictions."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines.utils import concordance_index
from sklearn.metrics import average_precision_score, roc_auc_score

from immunodig.evaluation import metrics as M
from immunodig.models import CoxPHSurvival, survival_target
from tests.conftest import read_shared_csv

sksurv_metrics = pytest.importorskip("sksurv.metrics")


@pytest.fixture(scope="module")
def colon(shared_data):
    df = read_shared_csv(shared_data, "r-survival-colon/colon.csv")
    df = df[df.etype == 1].dropna(subset=["nodes"])
    y = survival_target(df.time, df.status)
    X = df[["age", "nodes", "sex", "obstruct", "extent"]]
    risk = CoxPHSurvival(penalizer=0.0).fit(X, y).predict(X)
    return X, y, risk


def test_roc_and_pr_auc_match_sklearn_including_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.round(rng.random(200) + 0.3 * y, 1)  # many ties
    assert M.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert M.pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_harrell_c_matches_lifelines_and_sksurv(colon):
    _, y, risk = colon
    risk = np.round(risk, 6)  # identical covariates -> exactly tied risks for every library
    c = M.harrell_c(y, risk)
    assert c == pytest.approx(concordance_index(y["time"], -risk, y["event"]), abs=1e-9)
    ref = sksurv_metrics.concordance_index_censored(y["event"], y["time"], risk)[0]
    assert c == pytest.approx(ref, abs=1e-9)
    assert 0.6 < c < 0.7


@pytest.mark.parametrize("tau", [1000.0, 2000.0])
def test_uno_c_matches_sksurv(colon, tau):
    _, y, risk = colon
    ref = sksurv_metrics.concordance_index_ipcw(y, y, risk, tau=tau)[0]
    assert M.uno_c(y, risk, tau=tau) == pytest.approx(ref, abs=1e-5)


def test_time_dependent_auc_matches_sksurv(colon):
    _, y, risk = colon
    times = [300.0, 700.0, 1500.0]
    ours = M.time_dependent_auc(y, risk, times)
    auc, mean_auc = sksurv_metrics.cumulative_dynamic_auc(y, y, risk, times)
    np.testing.assert_allclose(ours["auc"], auc, atol=1e-5)
    assert ours["mean_auc"] == pytest.approx(mean_auc, abs=1e-5)


def test_integrated_brier_matches_sksurv(colon):
    X, y, _ = colon
    model = CoxPHSurvival(penalizer=0.0).fit(X, y)
    times = np.array([200.0, 500.0, 1000.0, 1500.0, 2000.0])
    surv = model.predict_survival_function(X, times)
    ref = sksurv_metrics.integrated_brier_score(y, y, surv, times)
    assert M.integrated_brier_score(y, surv, times) == pytest.approx(ref, abs=1e-5)


def test_calibration_slope_and_intercept_recover_known_miscalibration():
    rng = np.random.default_rng(0)
    lp = rng.normal(-0.8, 1.2, 20000)
    y = (rng.random(lp.size) < 1 / (1 + np.exp(-lp))).astype(int)
    good = M.calibration(y, 1 / (1 + np.exp(-lp)))
    assert good["slope"] == pytest.approx(1.0, abs=0.05)
    assert good["intercept"] == pytest.approx(0.0, abs=0.05)
    too_extreme = M.calibration(y, 1 / (1 + np.exp(-2 * lp)))  # over-fitted predictions
    assert too_extreme["slope"] == pytest.approx(0.5, abs=0.05)
    shifted = M.calibration(y, 1 / (1 + np.exp(-(lp - 1))))  # risks underestimated
    assert shifted["intercept"] == pytest.approx(1.0, abs=0.07)


def test_net_benefit_formula_and_reference_strategies():
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0, 0, 0])
    p = np.array([.9, .6, .6, .1, .2, .3, .1, .1, .05, .4])
    nb = M.net_benefit(y, p, thresholds=[0.5])
    # at 0.5: positives = {0.9, 0.6, 0.6}: TP=2, FP=1 -> 2/10 - 1/10 * 1
    assert nb["model"][0] == pytest.approx(0.1)
    assert nb["treat_all"][0] == pytest.approx(0.3 - 0.7)
    assert nb["treat_none"][0] == 0.0


def test_survival_metrics_without_censoring_match_sksurv():
    rng = np.random.default_rng(4)
    t = rng.exponential(10, 80)
    y = survival_target(t, np.ones(80))
    risk = -t + rng.normal(0, 5, 80)
    assert M.uno_c(y, risk) == pytest.approx(M.harrell_c(y, risk))
    ref = sksurv_metrics.cumulative_dynamic_auc(y, y, risk, [5.0, 10.0])[0]
    np.testing.assert_allclose(M.time_dependent_auc(y, risk, [5.0, 10.0])["auc"], ref, atol=1e-6)


@pytest.fixture(scope="module")
def rossi(shared_data):
    df = read_shared_csv(shared_data, "lifelines-datasets/rossi.csv")
    y = survival_target(df.week, df.arrest)
    X = df.drop(columns=["week", "arrest"])
    return y, CoxPHSurvival(penalizer=0.0).fit(X, y).predict(X)


def test_uno_c_without_tau_weights_events_by_g_just_before_them(rossi):
    """rossi: 318 censored and 4 arrests at week 52, the last time. An arrest at 52 was observable
    because the patient was uncensored just before 52: weight G(52-)^-2. scikit-survival uses
    G(52) = 0 and refuses; moving the censorings just after the events makes G(t) = G(t-) at
    every event, so its estimate is then the reference."""
    y, risk = rossi
    with pytest.raises(ValueError, match="censoring survival function is zero"):
        sksurv_metrics.concordance_index_ipcw(y, y, risk)
    shifted = y.copy()
    shifted["time"] = np.where(y["event"], y["time"], y["time"] + 1e-6)
    ref = sksurv_metrics.concordance_index_ipcw(shifted, shifted, risk)[0]
    assert M.uno_c(y, risk) == pytest.approx(ref, abs=1e-9)
    assert M.uno_c(y, risk) == pytest.approx(0.6403, abs=1e-4)  # was 0.528 with G(52) > 0


def test_ipcw_metrics_warn_when_weights_explode():
    from immunodig.errors import IPCWWeightWarning

    rng = np.random.default_rng(1)
    t = np.concatenate([rng.uniform(0, 10, 95), [11.0, 11.5, 12.0, 12.5, 13.0]])
    e = np.concatenate([rng.random(95) < 0.1, [True, False, True, False, True]])
    y = survival_target(t, e)  # almost everybody censored before the last events
    risk = rng.normal(size=100)
    with pytest.warns(IPCWWeightWarning, match="Uno's C"):
        M.uno_c(y, risk)
    with pytest.warns(IPCWWeightWarning, match="time-dependent AUC"):
        M.time_dependent_auc(y, risk, [12.5])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", IPCWWeightWarning)
        M.uno_c(y, risk, tau=5.0)  # inside the follow-up: no warning
