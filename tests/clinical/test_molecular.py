"""Genomic (long or wide) and multiplex imports: validated, pseudonymised, transactional."""

from __future__ import annotations

import pandas as pd
import pytest

from immunodig.clinical import import_genomic, import_multiplex, pseudonymise
from immunodig.errors import IdentifierColumnError, ValidationError
from immunodig.store import Store

from .conftest import write


def _rows(store_path, sql):
    with Store.open(store_path, read_only=True) as store:
        return sorted(store.query(sql).rows())


def test_wide_genomic_becomes_long_with_binary_calls(tmp_path, store_path):
    wide = pd.DataFrame({"patient_id": ["P_1", "P_2"], "TMB (mut/Mb)": [45.2, None], "KRAS mutated": ["wt", "MUT"]})
    result = import_genomic(write(wide, tmp_path / "g.csv"), store_path)
    assert result.rows == 3
    assert _rows(store_path, "select patient_id, feature, value from genomic") == [
        ("P_1", "kras_mutated", 0.0), ("P_1", "tmb_mut_mb", 45.2), ("P_2", "kras_mutated", 1.0)]


def test_long_genomic_and_replacement_per_key(tmp_path, store_path):
    first = pd.DataFrame({"patient_id": ["P_1", "P_1"], "feature": ["tmb", "kras_mutated"], "value": ["12", "mut"]})
    import_genomic(write(first, tmp_path / "g1.csv"), store_path)
    update = pd.DataFrame({"patient_id": ["P_1"], "feature": ["TMB"], "value": [30]})
    import_genomic(write(update, tmp_path / "g2.parquet"), store_path)
    assert _rows(store_path, "select feature, value from genomic") == [("kras_mutated", 1.0), ("tmb", 30.0)]
    import_genomic(write(update, tmp_path / "g2.parquet"), store_path)
    assert len(_rows(store_path, "select * from genomic")) == 2


def test_bad_genomic_reports_wide_rows_and_columns(tmp_path, store_path):
    wide = pd.DataFrame({"patient_id": ["P_1", "P_1", None], "tmb": ["5", "lots", "3"], "msi_score": [0.1, 0.2, 0.3]})
    with pytest.raises(ValidationError) as info:
        import_genomic(write(wide, tmp_path / "g.csv"), store_path)
    found = {(p["row"], p["column"]) for p in info.value.problems}
    assert {(1, "patient_id"), (2, "patient_id"), (2, "tmb"), (3, "patient_id")} <= found
    assert "lots" not in str(info.value)
    assert not store_path.exists() or _rows(store_path, "select * from genomic") == []


def test_multiplex_import_and_checks(tmp_path, store_path, key):
    good = pd.DataFrame({"mrn": ["77001", "77001", "77002"], "marker": ["CD8", "CD8", "FOXP3"],
                         "compartment": ["Tumour", "stroma", "invasive_margin"], "density_per_mm2": [350, 120.5, 0]})
    import_multiplex(write(good, tmp_path / "m.xlsx"), store_path, id_column="mrn", key=key)
    p1, p2 = pseudonymise(["77001", "77002"], key)
    assert _rows(store_path, "select patient_id, marker, compartment, density_per_mm2 from multiplex") == sorted([
        (p1, "CD8", "tumour", 350.0), (p1, "CD8", "stroma", 120.5), (p2, "FOXP3", "invasive_margin", 0.0)])
    bad = pd.DataFrame({"patient_id": ["P_1", "P_1"], "marker": ["CD8", "CD8"], "compartment": ["tumour", "lumen"],
                        "density_per_mm2": [-4, 10]})
    with pytest.raises(ValidationError) as info:
        import_multiplex(write(bad, tmp_path / "bad.csv"), store_path)
    found = {(p["row"], p["column"]) for p in info.value.problems}
    assert {(1, "density_per_mm2"), (2, "compartment")} <= found
    assert len(_rows(store_path, "select * from multiplex")) == 3


def test_identifier_columns_refused_in_genomic(tmp_path, store_path):
    wide = pd.DataFrame({"patient_id": ["P_1"], "tmb": [3.0], "patient_name": ["X"]})
    with pytest.raises(IdentifierColumnError):
        import_genomic(write(wide, tmp_path / "g.csv"), store_path)
