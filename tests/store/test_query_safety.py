"""query() is read-only and sealed: no writes, no other files, no settings, values bound."""

from __future__ import annotations

import pytest

from immunodig.errors import QueryError
from immunodig.store import Store, query

from .conftest import slide_features, write_slide_dir


@pytest.fixture
def filled_store(store_path, work_dir):
    with Store.open(store_path) as store:
        store.ingest_slide_dir(write_slide_dir(work_dir, "s_000000000000000a", "P_a",
                                               slide_features(2.0, 1.0, 0.5, 100.0, 1)))
        counts = store.counts()
    return store_path, counts


def test_plain_query_returns_polars(filled_store):
    path, _ = filled_store
    df = query(path, "select slide_id, patient_id from slides")
    assert df.rows() == [("s_000000000000000a", "P_a")]


def test_values_are_bound_not_formatted(filled_store):
    path, _ = filled_store
    hostile = "P_a' or '1'='1"
    assert query(path, "select * from slides where patient_id = $pid", {"pid": hostile}).height == 0
    assert query(path, "select * from slides where patient_id = $pid", {"pid": "P_a"}).height == 1
    assert query(path, "select * from slides where patient_id = ?", ["P_a"]).height == 1


@pytest.mark.parametrize("sql", [
    "drop table slides",
    "delete from slide_features",
    "insert into patients (patient_id) values ('x')",
    "create table leak (a integer)",
    "update slides set patient_id = 'x'",
])
def test_writes_are_refused(filled_store, sql):
    path, counts = filled_store
    with pytest.raises(QueryError):
        query(path, sql)
    with Store.open(path, read_only=True) as store:
        assert store.counts() == counts


def test_copy_to_cannot_write_a_file(filled_store, tmp_path):
    path, _ = filled_store
    target = tmp_path / "leak.csv"
    with pytest.raises(QueryError, match="not a COPY statement"):  # refused before it runs
        query(path, f"copy slides to '{target}'")
    import duckdb

    with Store.open(path, read_only=True) as store, pytest.raises(duckdb.Error, match="disabled"):
        store.connection.execute(f"copy slides to '{target}'")  # DuckDB itself refuses it too
    assert not target.exists()


@pytest.mark.parametrize("sql, kind", [
    ("select 1; select 2", "one statement per query, got 2"),
    ("select 1;;", None),
    ("create temp table t as select 1", "CREATE"),
    ("checkpoint", "CALL"),
    ("vacuum", "VACUUM"),
    ("begin", "TRANSACTION"),
    ("explain select 1", "EXPLAIN"),
])
def test_exactly_one_select_statement_runs(filled_store, sql, kind):
    path, counts = filled_store
    if kind is None:  # empty statements after the first are not statements
        assert query(path, sql).rows() == [(1,)]
        return
    with pytest.raises(QueryError, match=kind):
        query(path, sql)
    with Store.open(path, read_only=True) as store:
        assert store.counts() == counts


@pytest.mark.parametrize("sql", [
    "-- a leading comment\nselect count(*) from slides",
    "/* block */ with s as (select * from slides) select count(*) from s",
    "from slides select count(*)",
])
def test_select_forms_and_comments_are_accepted(filled_store, sql):
    path, _ = filled_store
    assert query(path, sql).rows() == [(1,)]


@pytest.mark.parametrize("sql", [
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/hostname')",
    "select * from glob('/etc/*')",
    "select * from read_parquet('/tmp/anything.parquet')",
])
def test_other_files_cannot_be_read(filled_store, sql):
    path, _ = filled_store
    with pytest.raises(QueryError, match="disabled"):
        query(path, sql)


def test_attach_install_load_and_settings_are_refused(filled_store, tmp_path):
    path, _ = filled_store
    other = tmp_path / "other.duckdb"
    for sql in (f"attach '{other}' as other", "install httpfs", "load httpfs",
                "set enable_external_access = true", "reset enable_external_access"):
        with pytest.raises(QueryError):
            query(path, sql)
    assert not other.exists()


def test_settings_cannot_be_reopened_within_one_call(filled_store, tmp_path):
    path, _ = filled_store
    target = tmp_path / "leak.csv"
    with pytest.raises(QueryError):
        query(path, f"set enable_external_access = true; copy slides to '{target}'")
    assert not target.exists()
