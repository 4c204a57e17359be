"""One patient, one vote: several rows per patient are scored as one patient."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from immunodig.errors import ValidationError
from immunodig.evaluation import nested_cross_validate
from immunodig.evaluation.metrics import harrell_c

from . import synth


def _repeat_rows(result, copies: np.ndarray, jitter: float = 0.0, seed: int = 0):
    """``result`` with row i repeated ``copies[i]`` times; predictions optionally jittered
    around the patient's value (symmetrically, so the per-patient mean is unchanged)."""
    idx = np.repeat(np.arange(len(result.ids)), copies)
    oof = result.oof[:, idx].copy()
    if jitter:
        rng = np.random.default_rng(seed)
        for i in np.flatnonzero(copies == 2):
            rows = np.flatnonzero(idx == i)
            d = rng.uniform(0, jitter, size=oof.shape[0])
            oof[:, rows[0]] += d
            oof[:, rows[1]] -= d
    surv = None if result.oof_surv is None else result.oof_surv[:, idx]
    return dataclasses.replace(result, ids=result.ids[idx], y=result.y[idx], oof=oof,
                               train_cut=result.train_cut[:, idx],
                               fold_of=result.fold_of[:, idx], oof_surv=surv)


def _assert_close(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_close(a[k], b[k])
    else:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def cls_result():
    X, y, ids = synth.classification(n=80, signal=1.5, seed=5)
    return nested_cross_validate(X, y, ids, "logistic", n_splits=3, n_repeats=2, seed=0,
                                 param_grid={})


def test_classification_summary_counts_each_patient_once(cls_result):
    copies = np.where(np.asarray(cls_result.y) == 1, 3, 1)  # cases have three slides each
    one = cls_result.summary(n_boot=20)
    many = _repeat_rows(cls_result, copies).summary(n_boot=20)
    assert many["n"] == one["n"] == 80 and many["n_rows"] == int(copies.sum())
    assert many["n_events"] == one["n_events"] == int(cls_result.y.sum())
    for key in ("auc", "auc_ci", "brier", "pr_auc", "calibration", "net_benefit",
                "calibration_curve"):
        _assert_close(many[key], one[key])
    # independent: sklearn on the per-patient predictions, averaged over repeats
    y = cls_result.y
    assert one["brier"] == pytest.approx(np.mean([brier_score_loss(y, p)
                                                   for p in cls_result.oof]))
    assert one["auc"] == pytest.approx(np.mean([roc_auc_score(y, p) for p in cls_result.oof]))
    # the row-weighted prevalence would be different: the test can fail
    assert np.mean(np.asarray(y)[np.repeat(np.arange(80), copies)]) != pytest.approx(
        one["calibration"]["observed_rate"])


def test_patient_prediction_is_the_mean_of_its_rows(cls_result):
    copies = np.where(np.arange(80) % 2 == 0, 2, 1)
    jittered = _repeat_rows(cls_result, copies, jitter=0.05)
    agg = jittered.patient_level()
    np.testing.assert_allclose(agg.oof, cls_result.oof, atol=1e-12)
    assert agg.notes["n_rows"] == int(copies.sum())


def test_survival_events_and_c_index_per_patient():
    X, y, ids = synth.survival(n=70, signal=1.0, seed=6)
    res = nested_cross_validate(X, y, ids, "cox", n_splits=3, n_repeats=1, seed=0,
                                param_grid={})
    copies = np.where(y["event"], 1, 4)  # censored patients with four rows each
    one, many = res.summary(n_boot=10), _repeat_rows(res, copies).summary(n_boot=10)
    assert many["n_events"] == one["n_events"] == int(y["event"].sum())
    assert many["c_index"] == pytest.approx(one["c_index"])
    assert many["integrated_brier"] == pytest.approx(one["integrated_brier"])
    assert one["c_index"] == pytest.approx(harrell_c(y, res.oof[0]))


def test_different_outcomes_within_a_patient_are_refused():
    X, y, ids = synth.classification(n=40, seed=7)
    ids = np.repeat(ids[:20], 2)
    y = np.asarray(y).copy()
    y[0], y[1] = 0, 1
    with pytest.raises(ValidationError, match="different outcomes"):
        nested_cross_validate(X, y, ids, "logistic", n_splits=2, n_repeats=1, param_grid={})
