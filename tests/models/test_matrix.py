"""The patient-level model matrix read from a store with the contract relations."""

from __future__ import annotations

import polars as pl
import pytest

from immunodig.errors import ConfigError
from immunodig.models import FEATURE_SETS, feature_columns, model_matrix

from .conftest import N_PATIENTS


def test_feature_sets_select_the_right_columns(store_path):
    clinical = model_matrix(store_path, "clinical", "resistance")
    assert clinical.height == N_PATIENTS and clinical["patient_id"].is_unique().all()
    assert feature_columns(clinical) == ["age_years", "sex", "primary_side", "ras_status",
                                         "braf_status", "lynch", "ecog", "ici_regimen",
                                         "treatment_line"]
    morph = model_matrix(store_path, "morphology", "pfs")
    assert set(feature_columns(morph)) == {"area_tissue_mm2", "prop_tum",
                                           "til_density_tumour_per_mm2"}
    assert morph.columns[:3] == ["patient_id", "pfs_months", "pfs_event"]
    assert feature_columns(model_matrix(store_path, "genomic")) == ["gen_tmb"]
    assert set(feature_columns(model_matrix(store_path, "multiplex"))) == {
        "mx_cd8_tumour_per_mm2", "cd3_density_tumour_per_mm2"}
    combined = model_matrix(store_path, "combined")
    assert set(feature_columns(combined)) == set(feature_columns(clinical)) | set(
        feature_columns(morph))
    assert len(feature_columns(model_matrix(store_path, "all"))) == 9 + 3 + 1 + 2
    assert set(FEATURE_SETS) >= {"clinical", "morphology", "genomic", "multiplex", "combined"}


def test_best_response_is_never_a_covariate(store_path):
    for fs in FEATURE_SETS:
        assert "best_response" not in model_matrix(store_path, fs, "resistance").columns
    with pytest.raises(ConfigError, match="not in the store"):
        model_matrix(store_path, ["clinical", "best_response"])


def test_patient_aggregation_over_slides(store_path):
    from immunodig.store import query

    m = model_matrix(store_path, ["til_density_tumour_per_mm2"], "resistance")
    ref = query(store_path, "select patient_id, value from patient_features_long "
                            "where feature = 'til_density_tumour_per_mm2'")
    joined = m.join(ref, on="patient_id")
    assert (joined["til_density_tumour_per_mm2"] - joined["value"]).abs().max() < 1e-9
    assert m.schema["til_density_tumour_per_mm2"] == pl.Float64


def test_unknown_set_or_outcome(store_path):
    with pytest.raises(ConfigError, match="not in the store"):
        model_matrix(store_path, "nonsense")
    with pytest.raises(ConfigError, match="unknown outcome"):
        model_matrix(store_path, "clinical", "os")


def test_prespecified_set_is_its_fixed_columns(store_path, monkeypatch):
    from immunodig.models import matrix

    assert matrix.PRESPECIFIED_FEATURES == ("til_density_intraepithelial_per_mm2",
                                            "til_density_margin_per_mm2", "tsr_stroma_fraction",
                                            "tls_density_tumour_per_mm2")
    # this store has none of them: the error names what is missing
    with pytest.raises(ConfigError, match="til_density_intraepithelial_per_mm2"):
        model_matrix(store_path, "prespecified")
    monkeypatch.setitem(matrix.NAMED_COLUMN_SETS, "prespecified",
                        ("til_density_tumour_per_mm2", "prop_tum"))
    m = model_matrix(store_path, "prespecified", "resistance")
    assert feature_columns(m) == ["til_density_tumour_per_mm2", "prop_tum"]
    both = model_matrix(store_path, ["prespecified", "clinical"], "resistance")
    assert feature_columns(both)[-2:] == ["til_density_tumour_per_mm2", "prop_tum"]
    assert len(feature_columns(both)) == 9 + 2
