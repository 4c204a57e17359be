"""Migrations: everything is created, versions are recorded, re-opening changes nothing."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from immunodig.errors import StoreError
from immunodig.store import Store
from immunodig.store.migrations import apply_migrations, discover, sql_dir

TABLES = {
    "schema_version", "runs", "slides", "slide_status", "slide_features", "feature_catalog",
    "patients", "clinical", "treatments", "outcomes", "genomic", "multiplex", "imports",
}
VIEWS = {"slide_features_current", "slide_features_wide", "patient_features_long", "patient_dataset"}


def _objects(store: Store, kind: str) -> set[str]:
    df = store.query(
        "select table_name from information_schema.tables where table_type = $k and table_schema = 'main'",
        {"k": kind},
    )
    return set(df["table_name"].to_list())


def test_open_creates_tables_views_and_records_version(store_path):
    with Store.open(store_path) as store:
        assert TABLES <= _objects(store, "BASE TABLE")
        assert VIEWS <= _objects(store, "VIEW")
        versions = store.query("select version, name, sha256 from schema_version order by version")
    latest = discover()[-1]
    assert versions["version"].to_list()[-1] == latest.version
    assert versions["sha256"].to_list()[-1] == latest.sha256


def test_contract_columns(store_path):
    with Store.open(store_path) as store:
        cols = store.query(
            "select table_name, column_name from information_schema.columns where table_schema = 'main'"
        )
    have = set(zip(cols["table_name"], cols["column_name"]))
    for table, column in [("slides", "slide_id"), ("slide_features", "slide_id"),
                          ("slide_features", "run_id"), ("slide_features", "feature"),
                          ("slide_features", "value"), ("feature_catalog", "name"),
                          ("patients", "patient_id"), ("outcomes", "primary_resistance"),
                          ("patient_features_long", "n_slides"), ("multiplex", "density_per_mm2")]:
        assert (table, column) in have


def test_reopen_is_a_no_op(store_path):
    with Store.open(store_path) as store:
        first = store.query("select * from schema_version")
        counts = store.counts()
    with Store.open(store_path) as store:
        assert store.query("select * from schema_version").equals(first)
        assert store.counts() == counts
        assert apply_migrations(store.connection) == []


def test_edited_migration_is_refused(tmp_path):
    schema = tmp_path / "schema"
    shutil.copytree(sql_dir() / "schema", schema)
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    assert apply_migrations(con, schema) == [m.version for m in discover(schema)]
    first = sorted(schema.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(StoreError, match="changed after it was applied"):
        apply_migrations(con, schema)
    con.close()


def test_new_migration_is_applied_forward(tmp_path):
    schema = tmp_path / "schema"
    shutil.copytree(sql_dir() / "schema", schema)
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    apply_migrations(con, schema)
    (schema / "999_extra.sql").write_text("create table extra_table (a integer);")
    assert apply_migrations(con, schema) == [999]
    assert con.execute("select max(version) from schema_version").fetchall()[0][0] == 999
    con.close()


def test_read_only_open_of_missing_store_is_clear(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store.open(tmp_path / "absent.duckdb", read_only=True)
