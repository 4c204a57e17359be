"""cross_validate_bags: planted signal recovered, noise not, same statistics as the tabular CV."""

from __future__ import annotations

import numpy as np
import pytest

from immunodig.errors import ConfigError, ValidationError
from immunodig.evaluation.splits import grouped_splits, splits_key
from immunodig.mil import cross_validate_bags, cross_validate_bags_result
from tests.mil.conftest import planted_bags

pytest.importorskip("torch")
FAST = {"n_repeats": 2, "n_boot": 200, "epochs": 40, "hidden": 32}


@pytest.mark.usefixtures("torch_one_thread")
def test_abmil_recovers_a_planted_tile_signal_and_not_noise():
    bags, labels, _ = planted_bags(signal=True)
    found = cross_validate_bags(bags, labels, model="abmil", seed=0, **FAST)
    assert found["auc"] >= 0.9
    assert found["validation"].startswith("internal")
    assert found["n"] == 60 and found["n_events"] == 30
    assert found["mil"]["model"] == "abmil" and found["mil"]["embedding_dim"] == 12

    noise, labels, _ = planted_bags(signal=False, seed=3)
    null = cross_validate_bags(noise, labels, model="abmil", seed=0, **FAST)
    low, high = null["auc_ci"]
    assert low < 0.5 < high


@pytest.mark.usefixtures("torch_one_thread")
def test_same_seed_same_result_and_splits_pair_with_tabular_models():
    bags, labels, _ = planted_bags(n=30)
    kw = {"n_repeats": 1, "epochs": 5, "hidden": 16}
    a = cross_validate_bags_result(bags, labels, model="meanpool", seed=4, **kw)
    b = cross_validate_bags_result(bags, labels, model="meanpool", seed=4, **kw)
    np.testing.assert_array_equal(a.oof, b.oof)
    ids = np.arange(30).astype(str)
    assert a.splits_key == splits_key(ids, grouped_splits(ids, labels, 5, 1, 4))


@pytest.mark.usefixtures("torch_one_thread")
def test_survival_mil_ranks_by_the_planted_signal():
    bags, _, n_signal = planted_bags(n=60, seed=5)
    rng = np.random.default_rng(5)
    time = rng.exponential(scale=np.exp(-0.5 * n_signal) * 20.0)
    event = rng.random(60) < 0.8
    out = cross_validate_bags(bags, time=time, event=event, model="abmil", seed=0, lr=3e-3, **FAST)
    assert out["c_index"] >= 0.65  # the true risk reaches 0.78
    assert out["task"] == "survival" and "integrated_brier" in out and "c_index_ci" in out


@pytest.mark.usefixtures("torch_one_thread")
def test_patient_groups_never_straddle_folds_and_count_once():
    bags, labels, _ = planted_bags(n=40)
    patients = np.repeat(np.arange(20), 2).astype(str)  # two slides a patient
    labels = np.repeat(labels[::2], 2)
    res = cross_validate_bags_result(bags, labels, model="maxpool", groups=patients, n_repeats=1,
                                     epochs=3, hidden=8)
    for p in np.unique(patients):
        assert len(np.unique(res.fold_of[0, patients == p])) == 1
    assert res.summary(n_boot=50)["n"] == 20


@pytest.mark.usefixtures("torch_one_thread")
def test_late_fusion_uses_clinical_covariates():
    rng = np.random.default_rng(2)
    bags, labels, _ = planted_bags(n=40, signal=False)
    clinical = (labels + rng.normal(scale=0.3, size=40))[:, None]
    out = cross_validate_bags(bags, labels, model="meanpool", clinical=clinical, n_repeats=1,
                              n_boot=100, epochs=30, hidden=8, lr=1e-2)
    assert out["auc"] >= 0.85 and out["mil"]["n_clinical"] == 1


def test_bad_input_is_refused_clearly():
    bags, labels, _ = planted_bags(n=10)
    with pytest.raises(ValidationError, match="one common dim"):
        cross_validate_bags([*bags[:-1], np.zeros((4, 3))], labels)
    with pytest.raises(ValidationError, match="not 0/1"):
        cross_validate_bags(bags, [*labels[:-1], 2])
    with pytest.raises(ValidationError, match="NaN"):
        cross_validate_bags([*bags[:-1], np.full((4, 12), np.nan)], labels)
    with pytest.raises(ValidationError, match="unknown MIL model"):
        cross_validate_bags(bags, labels, model="clam")
    with pytest.raises(ConfigError, match="unknown MIL parameter"):
        cross_validate_bags(bags, labels, epocs=3)
