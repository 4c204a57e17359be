"""``query``: exactly one read-only SELECT, from the argument, @FILE or --file; every
documented query of docs/queries/ runs through ``query --file``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from immunodig.errors import QueryError
from immunodig.store import Store, query
from tests.store.test_docs_queries import QUERIES, filled_store  # noqa: F401 (fixture)


@pytest.mark.parametrize("path", QUERIES, ids=[p.stem for p in QUERIES])
def test_every_documented_query_runs_through_query_file(cli, filled_store, path):  # noqa: F811
    text = path.read_text()
    assert text.startswith("--")
    match = re.search(r"^-- params: (\{.*\})$", text, flags=re.M)
    params = [f"--param={k}={v}" for k, v in (json.loads(match.group(1)) if match else {}).items()]
    res = cli("query", "--file", path, "--store", filled_store, "--format", "json", *params)
    assert res.code == 0, res.err
    assert len(json.loads(res.out)) >= 1, f"{path.name} returned no rows"


def test_leading_comment_and_at_file_work(cli, filled_store, tmp_path):  # noqa: F811
    sql = "-- how many patients\nselect count(*) as n from patients"
    as_argument = cli("query", sql, "--store", filled_store, "--format", "csv")
    assert as_argument.code == 0, as_argument.err
    (tmp_path / "n.sql").write_text(sql)
    at_file = cli("query", f"@{tmp_path / 'n.sql'}", "--store", filled_store, "--format", "csv")
    assert at_file.code == 0 and at_file.out == as_argument.out == "n\n12\n"


@pytest.mark.parametrize("args, needle", [
    (["select 1", "--file", "x.sql"], "not both"),
    ([], "either as the argument or with --file"),
    (["--file", "missing.sql"], "SQL file not found"),
    (["--stor"], "no such option: --stor"),
])
def test_bad_sql_sources_exit_2_with_one_line(cli, filled_store, args, needle):  # noqa: F811
    res = cli("query", *args, "--store", filled_store)
    assert res.code == 2 and needle in res.err and res.out == ""


@pytest.mark.parametrize("sql, needle", [
    ("select 1; select 2", "one statement per query, got 2"),
    ("create temp table t as select 1", "not a CREATE statement"),
    ("checkpoint", "not a CALL statement"),
    ("vacuum", "not a VACUUM statement"),
    ("begin", "not a TRANSACTION statement"),
    ("pragma version", "not a PRAGMA statement"),
    ("-- only a comment", "no SQL statement"),
])
def test_cli_runs_exactly_one_select(cli, filled_store, sql, needle):  # noqa: F811
    res = cli("query", sql, "--store", filled_store)
    assert res.code == 2, res.out
    assert needle in res.err and res.out == ""


def test_api_refuses_before_opening_the_store(tmp_path):
    # the statement check needs no store: a missing store is not even looked at
    with pytest.raises(QueryError, match="one statement per query"):
        query(tmp_path / "absent.duckdb", "select 1; select 2")
    assert not (tmp_path / "absent.duckdb").exists()


def test_store_query_of_a_read_only_store_is_checked_too(filled_store):  # noqa: F811
    with Store.open(Path(filled_store), read_only=True) as store:
        with pytest.raises(QueryError, match="not a VACUUM"):
            store.query("vacuum")
        assert store.query("with a as (select 1 as x) select * from a").rows() == [(1,)]
