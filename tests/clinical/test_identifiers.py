"""Columns that look like direct identifiers are refused before anything is read or written."""

from __future__ import annotations

import pytest

from immunodig.clinical import identifier_kind, import_clinical
from immunodig.errors import IdentifierColumnError
from immunodig.store import Store

from .conftest import clinical_frame, write


@pytest.mark.parametrize("column, kind", [
    ("name", "name"), ("Surname", "name"), ("first_name", "name"), ("patient name", "name"),
    ("DOB", "birth date"), ("birth_date", "birth date"), ("Date of Birth", "birth date"),
    ("ssn", "social security number"), ("NIR", "social security number"),
    ("insee_number", "social security number"), ("social-security", "social security number"),
    ("MRN", "hospital number"), ("hospital_number", "hospital number"), ("IPP", "hospital number"),
    ("address", "address"), ("phone", "phone number"), ("E-mail", "e-mail address"),
    ("email", "e-mail address"),
])
def test_identifier_names_are_recognised(column, kind):
    assert identifier_kind(column) == kind


@pytest.mark.parametrize("column", ["patient_id", "age_years", "primary_side", "ras_status",
                                    "ici_regimen", "treatment_line", "best_response", "os_event",
                                    "tmb", "density_per_mm2", "compartment", "marker"])
def test_ordinary_columns_pass(column):
    assert identifier_kind(column) is None


def test_import_refuses_all_identifier_columns_and_writes_nothing(tmp_path):
    store_path = tmp_path / "s.duckdb"
    frame = clinical_frame().assign(surname="Dupont", dob="1950-01-01", mrn="123456")
    with pytest.raises(IdentifierColumnError) as info:
        import_clinical(write(frame, tmp_path / "c.csv"), store_path)
    assert {p["column"] for p in info.value.problems} == {"surname", "dob", "mrn"}
    message = str(info.value)
    assert "pseudonymised data only" in message
    for raw in ("Dupont", "1950", "123456"):
        assert raw not in message
    if store_path.exists():
        with Store.open(store_path, read_only=True) as store:
            assert store.counts()["clinical"] == 0
