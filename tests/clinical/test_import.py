"""Clinical import: formats, every problem named at once, nothing written unless all valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from immunodig.clinical import import_clinical
from immunodig.errors import ValidationError
from immunodig.store import Store

from .conftest import clinical_frame, write

REPO = Path(__file__).resolve().parents[2]


def _content(store_path: Path) -> dict[str, list]:
    with Store.open(store_path, read_only=True) as store:
        out = {
            t: sorted(map(repr, store.query(f"select * exclude (import_id) from {t}").rows()))
            for t in ("clinical", "treatments", "outcomes")
        }
        out["patients"] = sorted(store.query("select patient_id from patients")["patient_id"].to_list())
        return out


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_every_format_gives_the_same_rows(tmp_path, store_path, suffix):
    reference = tmp_path / "ref.duckdb"
    import_clinical(write(clinical_frame(), tmp_path / "c.csv"), reference)
    result = import_clinical(write(clinical_frame(), tmp_path / f"c{suffix}"), store_path)
    assert result.rows == 5 and result.n_patients == 5
    assert _content(store_path) == _content(reference)


def test_values_are_stored_as_given(clinical_csv, store_path):
    import_clinical(clinical_csv, store_path)
    with Store.open(store_path, read_only=True) as store:
        row = store.query("select * from patient_dataset where patient_id = 'P_0002'").row(0, named=True)
    assert row["age_years"] == 55 and row["sex"] == "M" and row["lynch"] == 1
    assert row["ici_regimen"] == "anti-PD-1+anti-CTLA-4" and row["treatment_line"] == 2
    assert row["pfs_months"] == 2.1 and row["os_event"] == 1 and row["primary_resistance"] == 1


def test_reimport_is_idempotent(clinical_csv, store_path):
    first = import_clinical(clinical_csv, store_path)
    before = _content(store_path)
    again = import_clinical(clinical_csv, store_path)
    assert again.already_imported and not first.already_imported
    assert _content(store_path) == before
    with Store.open(store_path, read_only=True) as store:
        assert store.counts()["imports"] == 1


def test_new_version_replaces_per_patient(tmp_path, clinical_csv, store_path):
    import_clinical(clinical_csv, store_path)
    update = clinical_frame().iloc[[0]].copy()
    update["pfs_months"], update["pfs_event"] = 3.0, 1
    update["os_months"] = 25.0
    import_clinical(write(update, tmp_path / "update.csv"), store_path)
    with Store.open(store_path, read_only=True) as store:
        counts = store.counts()
        first = store.query("select pfs_months, primary_resistance from outcomes where patient_id = 'P_0001'").rows()
    assert counts["outcomes"] == 5 and counts["clinical"] == 5 and counts["imports"] == 2
    assert first == [(3.0, 1)]


def test_bad_file_names_every_problem_and_writes_nothing(tmp_path, clinical_csv, store_path):
    import_clinical(clinical_csv, store_path)
    before = _content(store_path)
    bad = clinical_frame()
    bad = bad.astype({"age_years": object, "ecog": object})
    bad.loc[0, "age_years"] = 7  # row 1: out of range
    bad.loc[1, "sex"] = "Q"  # row 2: vocabulary
    bad.loc[2, "pfs_months"] = -1.5  # row 3: negative time
    bad.loc[3, "patient_id"] = "P_0001"  # rows 1 and 4: duplicate id
    bad.loc[3, "pfs_event"] = 2  # row 4: event not 0/1
    bad.loc[4, "pfs_months"] = 13.0  # row 5: pfs > os (12.0)
    bad.loc[4, "best_response"] = "XYZ"  # row 5: RECIST vocabulary
    bad.loc[1, "ecog"] = "unknown-text"  # row 2: not a number
    with pytest.raises(ValidationError) as info:
        import_clinical(write(bad, tmp_path / "bad.csv"), store_path)
    found = {(p["row"], p["column"]) for p in info.value.problems}
    expected = {
        (1, "age_years"),
        (2, "sex"),
        (3, "pfs_months"),
        (1, "patient_id"),
        (4, "patient_id"),
        (4, "pfs_event"),
        (5, "pfs_months, os_months"),
        (5, "best_response"),
        (2, "ecog"),
    }
    assert expected <= found
    message = str(info.value)
    assert "nothing was written" in message
    for raw in ("XYZ", "unknown-text", "-1.5", "Q,", " 7", "13.0"):
        assert raw not in message
    assert _content(store_path) == before


def test_missing_and_unknown_columns_are_reported(tmp_path, store_path):
    frame = clinical_frame().drop(columns=["ecog"]).assign(comment_free_text="x")
    with pytest.raises(ValidationError) as info:
        import_clinical(write(frame, tmp_path / "c.csv"), store_path)
    found = {(p["column"], p["check"].split(";")[0]) for p in info.value.problems}
    assert ("ecog", "required column missing") in found
    assert ("comment_free_text", "unknown column") in found


def test_cli_exit_code_and_message(tmp_path):
    bad = clinical_frame()
    bad.loc[0, "ecog"] = 9
    path = write(bad, tmp_path / "bad.csv")
    store = tmp_path / "cli.duckdb"
    proc = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "import-clinical", str(path), "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode != 0
    assert "row 1, column ecog" in proc.stderr
    ok = subprocess.run(
        [
            sys.executable,
            str(REPO / "cli.py"),
            "import-clinical",
            str(write(clinical_frame(), tmp_path / "ok.csv")),
            "--store",
            str(store),
            "--resistance-window-months",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert ok.returncode == 0, ok.stderr
    with Store.open(store, read_only=True) as opened:
        rules = opened.query("select distinct resistance_rule from outcomes")["resistance_rule"].to_list()
    assert rules and "pfs_months <= 3" in rules[0]
