"""Fixtures for clinical tests: a small valid clinical table and helpers to write it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

COLUMNS = ["patient_id", "age_years", "sex", "primary_side", "ras_status", "braf_status", "lynch",
           "ecog", "ici_regimen", "treatment_line", "best_response", "pfs_months", "pfs_event",
           "os_months", "os_event"]

ROWS = [
    ["P_0001", 63, "F", "right", "wt", "mut", 0, 1, "anti-PD-1", 1, "PR", 14.2, 0, 20.1, 0],
    ["P_0002", 55, "M", "left", "mut", "wt", 1, 0, "anti-PD-1+anti-CTLA-4", 2, "PD", 2.1, 1, 8.5, 1],
    ["P_0003", 71, "F", "rectum", "wt", "wt", 0, 2, "other", 1, "SD", 3.0, 0, 3.0, 0],
    ["P_0004", 48, "M", "right", "wt", "wt", 0, 0, "anti-PD-1", 1, "CR", 30.0, 0, 30.0, 0],
    ["P_0005", 66, "F", "left", None, "wt", None, 1, "anti-PD-1", 3, "SD", 4.5, 1, 12.0, 0],
]


def clinical_frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=COLUMNS)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.fixture
def clinical_csv(tmp_path: Path) -> Path:
    return write(clinical_frame(), tmp_path / "clinical.csv")


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@pytest.fixture
def key() -> bytes:
    return b"a-test-key-of-sufficient-length-0001"
