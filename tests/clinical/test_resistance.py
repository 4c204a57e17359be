"""The primary-resistance rule, including early censoring (undetermined, never 0)."""

from __future__ import annotations

import pandas as pd
import pytest

from immunodig.clinical import ResistanceRule, import_clinical
from immunodig.errors import ConfigError
from immunodig.store import Store

from .conftest import clinical_frame, write

CASES = [  # best_response, pfs_months, pfs_event, expected with the 6-month default
    ("PD", 1.5, 1, 1),     # progression as best response
    ("PD", 9.0, 1, 1),     # PD dominates even after the window
    ("SD", 4.0, 1, 1),     # progression within the window
    ("PR", 6.0, 1, 1),     # progression exactly at the window
    ("SD", 6.0, 0, 0),     # progression-free through the window
    ("PR", 7.0, 1, 0),     # progression after the window
    ("CR", 30.0, 0, 0),
    ("SD", 3.0, 0, None),  # censored before 6 months without PD: undetermined, not 0
    ("NE", 0.5, 0, None),
    ("SD", None, None, None),
]


def test_default_rule_cases():
    br, months, event, expected = zip(*CASES)
    got = ResistanceRule().derive(pd.Series(br), pd.Series(months, dtype=float), pd.Series(event, dtype=float))
    assert [None if pd.isna(v) else int(v) for v in got] == list(expected)


def test_window_is_configurable_and_described():
    rule = ResistanceRule(window_months=3)
    got = rule.derive(pd.Series(["SD", "SD"]), pd.Series([4.0, 2.0]), pd.Series([1, 0]))
    assert [None if pd.isna(v) else int(v) for v in got] == [0, None]
    assert "pfs_months <= 3" in rule.describe() and "undetermined" in rule.describe()
    with pytest.raises(ConfigError):
        ResistanceRule(window_months=0)


def test_rule_without_pd_clause():
    rule = ResistanceRule(progression_as_best_response=False)
    got = rule.derive(pd.Series(["PD"]), pd.Series([9.0]), pd.Series([1]))
    assert int(got[0]) == 0
    assert "best_response" not in rule.describe()


def test_import_stores_rule_and_null_for_early_censoring(tmp_path):
    store_path = tmp_path / "s.duckdb"
    import_clinical(write(clinical_frame(), tmp_path / "c.csv"), store_path)
    with Store.open(store_path, read_only=True) as store:
        rows = dict(store.query("select patient_id, primary_resistance from outcomes").rows())
        rules = store.query("select distinct resistance_rule from outcomes")["resistance_rule"].to_list()
    # P_0001 PR censored 14.2 -> 0; P_0002 PD -> 1; P_0003 SD censored 3.0 -> null;
    # P_0004 CR censored 30 -> 0; P_0005 SD event at 4.5 -> 1
    assert rows == {"P_0001": 0, "P_0002": 1, "P_0003": None, "P_0004": 0, "P_0005": 1}
    assert rules == [ResistanceRule().describe()]
