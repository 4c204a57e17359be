"""Clinical table: contract columns, ranges, consistency, resistance rate and planted signal."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from immunodig.synthetic import CLINICAL_COLUMNS, make_clinical_table
from immunodig.synthetic.clinical import RESISTANCE_WINDOW_MONTHS


@pytest.fixture(scope="module")
def big():
    return make_clinical_table(2000, seed=7)


def test_columns_and_ranges(big):
    c, _ = big
    assert tuple(c.columns) == CLINICAL_COLUMNS
    assert c["patient_id"].n_unique() == c.height
    assert c["patient_id"].str.contains(r"^P\d{4}$").all()
    assert set(c["sex"].unique()) <= {"F", "M"}
    assert set(c["primary_side"].unique()) <= {"left", "right", "rectum"}
    assert set(c["ras_status"].unique()) <= {"wt", "mut"}
    assert set(c["braf_status"].unique()) <= {"wt", "mut"}
    assert set(c["lynch"].unique()) <= {0, 1}
    assert c["ecog"].is_between(0, 4).all()
    assert set(c["ici_regimen"].unique()) <= {"anti-PD-1", "anti-PD-1+anti-CTLA-4", "other"}
    assert (c["treatment_line"] >= 1).all()
    assert set(c["best_response"].unique()) <= {"CR", "PR", "SD", "PD", "NE"}
    assert (c["pfs_months"] >= 0).all() and (c["pfs_months"] <= c["os_months"]).all()
    assert set(c["pfs_event"].unique()) <= {0, 1} and set(c["os_event"].unique()) <= {0, 1}
    assert c["age_years"].is_between(18, 100).all()
    # BRAF-mutant tumours are sporadic: not Lynch, not RAS-mutant
    assert c.filter((pl.col("braf_status") == "mut") & (pl.col("lynch") == 1)).height == 0


def test_response_consistent_with_pfs(big):
    c, latent = big
    pd_ = c.filter(pl.col("best_response") == "PD")
    assert (pd_["pfs_months"] < RESISTANCE_WINDOW_MONTHS).all() and (pd_["pfs_event"] == 1).all()
    resp = c.filter(pl.col("best_response").is_in(["CR", "PR", "SD"]))
    assert (resp["pfs_months"] >= RESISTANCE_WINDOW_MONTHS).all()
    derived = ((c["best_response"] == "PD")
               | ((c["pfs_months"] < RESISTANCE_WINDOW_MONTHS) & (c["pfs_event"] == 1)))
    assert (derived.cast(int) == latent["primary_resistance"]).all()


def test_resistance_rate_about_30_percent(big):
    _, latent = big
    assert 0.24 < latent["primary_resistance"].mean() < 0.36


def test_planted_signal_detectable():
    """Logistic regression on the true lymphocyte density separates resistance (AUC > 0.65)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    _, latent = make_clinical_table(300, seed=3)
    x = np.log(latent["til_tumour_per_mm2"].to_numpy())[:, None]
    y = latent["primary_resistance"].to_numpy()
    p = cross_val_predict(LogisticRegression(), x, y, cv=5, method="predict_proba")[:, 1]
    assert roc_auc_score(y, p) > 0.65
    # and the direction is the documented one: more lymphocytes, less resistance
    assert LogisticRegression().fit(x, y).coef_[0, 0] < 0


def test_deterministic_and_prefix_stable():
    a, _ = make_clinical_table(20, seed=5)
    b, _ = make_clinical_table(20, seed=5)
    assert a.equals(b)
    c, _ = make_clinical_table(20, seed=6)
    assert not a.equals(c)
