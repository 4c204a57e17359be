"""Validation cannot be switched off (PANDERA_VALIDATION_*), and an empty table is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from pandera.config import ValidationDepth, config_context

from immunodig.clinical import import_clinical, import_genomic, import_multiplex
from immunodig.errors import ValidationError
from immunodig.models.matrix import validate_matrix

from .conftest import clinical_frame, write

REPO = Path(__file__).resolve().parents[2]
OFF = [{"validation_enabled": False}, {"validation_depth": ValidationDepth.SCHEMA_ONLY}]


def _bad_clinical() -> pd.DataFrame:
    bad = clinical_frame().astype({"age_years": object})
    bad.loc[0, "age_years"] = 7          # out of range: a data check
    bad.loc[1, "sex"] = "Q"              # vocabulary: a data check
    return bad


@pytest.mark.parametrize("off", OFF, ids=["disabled", "schema_only"])
def test_clinical_checks_run_when_pandera_is_switched_off(tmp_path, store_path, off):
    with config_context(**off), pytest.raises(ValidationError) as info:
        import_clinical(write(_bad_clinical(), tmp_path / "bad.csv"), store_path)
    assert {(1, "age_years"), (2, "sex")} <= {(p["row"], p["column"]) for p in info.value.problems}
    assert not store_path.exists()


@pytest.mark.parametrize("off", OFF, ids=["disabled", "schema_only"])
def test_genomic_and_multiplex_checks_run_when_pandera_is_switched_off(tmp_path, store_path, off):
    genomic = pd.DataFrame({"patient_id": ["P_1", "P 2!"], "feature": ["tmb", "tmb"], "value": [3.0, 4.0]})
    multiplex = pd.DataFrame({"patient_id": ["P_1"], "marker": ["CD8"], "compartment": ["tumour"],
                              "density_per_mm2": [-4.0]})
    with config_context(**off):
        with pytest.raises(ValidationError, match="row 2, column patient_id"):
            import_genomic(write(genomic, tmp_path / "g.csv"), store_path)
        with pytest.raises(ValidationError, match="row 1, column density_per_mm2"):
            import_multiplex(write(multiplex, tmp_path / "m.csv"), store_path)


@pytest.mark.parametrize("off", OFF, ids=["disabled", "schema_only"])
def test_model_matrix_checks_run_when_pandera_is_switched_off(off):
    frame = pl.DataFrame({"patient_id": ["P1", "P1"], "primary_resistance": [0, 3],
                          "sex": ["F", "Q"], "age_years": [50.0, 60.0]})
    with config_context(**off), pytest.raises(ValidationError) as info:
        validate_matrix(frame, "resistance")
    assert {"patient_id", "primary_resistance", "sex"} <= {p["column"] for p in info.value.problems}


def test_environment_variable_does_not_switch_off_the_cli_import(tmp_path):
    path = write(_bad_clinical(), tmp_path / "bad.csv")
    store = tmp_path / "s.duckdb"
    env = {**os.environ, "PANDERA_VALIDATION_ENABLED": "False"}
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "import-clinical", str(path),
                           "--store", str(store)], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "row 1, column age_years" in proc.stderr and "nothing was written" in proc.stderr
    assert not store.exists()


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_header_only_clinical_file_is_refused(tmp_path, store_path, suffix):
    with pytest.raises(ValidationError, match="no data rows"):
        import_clinical(write(clinical_frame().iloc[:0], tmp_path / f"empty{suffix}"), store_path)
    assert not store_path.exists()


def test_header_only_genomic_and_multiplex_files_are_refused(tmp_path, store_path):
    with pytest.raises(ValidationError, match="no data rows"):
        import_genomic(write(pd.DataFrame(columns=["patient_id", "tmb"]), tmp_path / "g.csv"), store_path)
    with pytest.raises(ValidationError, match="no data rows"):
        import_multiplex(write(pd.DataFrame(columns=["patient_id", "marker", "compartment", "density_per_mm2"]),
                               tmp_path / "m.csv"), store_path)
    empty = pd.DataFrame({"patient_id": ["P_1", "P_2"], "tmb": [None, None]})
    with pytest.raises(ValidationError, match="no values to import"):
        import_genomic(write(empty, tmp_path / "g2.csv"), store_path)


def test_header_only_file_exits_2_from_the_cli(tmp_path):
    path = write(clinical_frame().iloc[:0], tmp_path / "empty.csv")
    store = tmp_path / "s.duckdb"
    proc = subprocess.run([sys.executable, str(REPO / "cli.py"), "import-clinical", str(path),
                           "--store", str(store)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2
    assert "no data rows" in proc.stderr and "0 row(s)" not in proc.stdout
