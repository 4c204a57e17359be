"""Survival models: the Cox wrapper reproduces lifelines; XGBoost Cox/AFT behave."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import CoxPHFitter
from sklearn.base import clone

from immunodig.errors import ValidationError
from immunodig.evaluation import harrell_c
from immunodig.models import CoxPHSurvival, XGBSurvival, survival_target
from tests.conftest import read_shared_csv


@pytest.fixture(scope="module")
def rossi(shared_data):
    df = read_shared_csv(shared_data, "lifelines-datasets/rossi.csv")
    return df, df.drop(columns=["week", "arrest"]), survival_target(df.week, df.arrest)


@pytest.mark.parametrize("penalizer", [0.0, 0.1])
def test_cox_wrapper_reproduces_lifelines_on_rossi(rossi, penalizer):
    df, X, y = rossi
    ours = CoxPHSurvival(penalizer=penalizer).fit(X, y)
    ref = CoxPHFitter(penalizer=penalizer).fit(df, "week", "arrest")
    np.testing.assert_allclose(ours.lifelines_.params_.to_numpy(), ref.params_.to_numpy(),
                               rtol=1e-6, atol=1e-8)
    hr = ours.hazard_ratios().set_index("feature")
    np.testing.assert_allclose(hr["hazard_ratio"], ref.summary["exp(coef)"], rtol=1e-6)
    np.testing.assert_allclose(hr["ci_low"], ref.summary["exp(coef) lower 95%"], rtol=1e-6)
    np.testing.assert_allclose(ours.predict(X), ref.predict_log_partial_hazard(df), rtol=1e-6)
    times = [10, 30, 50]
    np.testing.assert_allclose(ours.predict_survival_function(X, times),
                               ref.predict_survival_function(df, times=times).T, rtol=1e-6)
    if penalizer == 0.0:  # published values (Rossi et al.; lifelines docs): prio HR 1.10, age 0.94
        assert hr.loc["prio", "hazard_ratio"] == pytest.approx(1.096, abs=2e-3)
        assert hr.loc["age", "hazard_ratio"] == pytest.approx(0.944, abs=2e-3)
        assert ref.concordance_index_ == pytest.approx(harrell_c(y, ours.predict(X)), abs=1e-9)


def test_cox_drops_constant_columns_and_clones(rossi):
    _, X, y = rossi
    model = CoxPHSurvival().fit(X.assign(const=1.0), y)
    assert "const" not in model.kept_columns_
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("objective", ["survival:cox", "survival:aft"])
def test_xgb_survival_curves_and_risk(rossi, objective):
    _, X, y = rossi
    model = XGBSurvival(objective=objective, n_estimators=100).fit(X, y)
    risk = model.predict(X)
    assert harrell_c(y, risk) > 0.6  # in-sample, just the orientation: higher = earlier
    s = model.predict_survival_function(X.iloc[:20], [5, 20, 40, 52])
    assert s.shape == (20, 4)
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s, axis=1) <= 1e-12)  # non-increasing in time
    # higher risk -> lower survival at 40 weeks
    assert np.corrcoef(risk[:20], s[:, 2])[0, 1] < -0.9


def test_xgb_cox_breslow_baseline_matches_lifelines_for_same_linear_predictor(rossi):
    from immunodig.models.survival import breslow_cumulative_hazard

    df, X, y = rossi
    ref = CoxPHFitter().fit(df, "week", "arrest")
    lp = ref.predict_log_partial_hazard(df).to_numpy()
    t, h = breslow_cumulative_hazard(y["time"], y["event"], lp)
    at = np.searchsorted(t, [10, 30, 50], side="right") - 1
    ours = np.exp(-h[at][None, :] * np.exp(lp[:5, None]))
    expected = ref.predict_survival_function(df.iloc[:5], times=[10, 30, 50]).T
    np.testing.assert_allclose(ours, expected,
                               rtol=1e-6)


def test_survival_target_needs_structured_array(rossi):
    _, X, y = rossi
    with pytest.raises(ValidationError, match="structured array"):
        CoxPHSurvival().fit(X, y["time"])


def test_penalised_cox_keeps_separation_diagnostics_off_the_console(monkeypatch):
    import warnings

    from lifelines.exceptions import ConvergenceWarning

    from immunodig.models.survival import CoxPHSurvival

    fit = CoxPHFitter.fit

    def noisy_fit(self, *args, **kwargs):  # what lifelines does after a doubtful Newton step
        warnings.warn("Column x1 have very low variance when conditioned on death event\n>>> ...",
                      ConvergenceWarning, stacklevel=2)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(CoxPHFitter, "fit", noisy_fit)
    rng = np.random.default_rng(0)
    t, e = rng.exponential(10, 60), rng.random(60) < 0.6
    x = rng.normal(size=(60, 2))
    y = np.array(list(zip(e, t)), dtype=[("event", bool), ("time", float)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning left on the console fails the test
        model = CoxPHSurvival(penalizer=0.1).fit(x, y)
    assert model.fit_warnings_ == ["Column x1 have very low variance when conditioned on death event"]
    with pytest.warns(ConvergenceWarning):  # unpenalised: still a warning
        assert CoxPHSurvival(penalizer=0.0).fit(x, y).fit_warnings_ == []
