"""Safe read-only queries: ``query(store_path, sql, params)``.

The store is opened read-only with external access disabled and the configuration locked, so a
query can read the store's tables and views and nothing else: ``COPY ... TO``, ``read_csv`` of
other files, ``ATTACH``, ``INSTALL``/``LOAD`` and any DDL or DML fail with
:class:`~immunodig.errors.QueryError`.

Before anything runs, DuckDB's own parser splits the text into statements
(:func:`single_select`): exactly one statement, of type ``SELECT`` (which covers ``WITH ...
SELECT``, ``VALUES``, ``FROM t``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``), is accepted. Several
statements (``select 1; select 2`` would show only the last result), ``CREATE TEMP TABLE``,
``CHECKPOINT``, ``VACUUM``, ``BEGIN``, ``SET``, ``PRAGMA`` ... are refused with the statement
type named. Comments anywhere, a leading ``--`` comment included, are fine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from immunodig.errors import QueryError
from immunodig.store.connection import Store


def single_select(sql: str) -> str:
    """Return ``sql`` if DuckDB parses it as exactly one ``SELECT`` statement, else raise.

    Parameters
    ----------
    sql : str
        Query text; comments and one trailing ``;`` are allowed.

    Raises
    ------
    QueryError
        The text does not parse, holds no statement (only comments), several statements, or
        one statement of another type (``CREATE``, ``CALL`` for ``CHECKPOINT``, ``VACUUM``,
        ``TRANSACTION`` for ``BEGIN``, ``SET``, ``PRAGMA``, ``COPY``, ``ATTACH`` ...).
    """
    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"query does not parse: {exc}") from exc
    if not statements:
        raise QueryError("no SQL statement given (only blanks or comments)")
    if len(statements) > 1:
        raise QueryError(f"one statement per query, got {len(statements)}: run them one at a time "
                         "(only the last result would be shown)")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryError(f"only a read-only SELECT (or WITH ... SELECT) can be run, not a "
                         f"{kind.name} statement")
    return sql


def query(
    store_path: str | Path,
    sql: str,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
):
    """Run one read-only ``SELECT`` against the store and return a ``polars.DataFrame``.

    Parameters
    ----------
    store_path : str or Path
        The ``.duckdb`` file.
    sql : str
        Exactly one ``SELECT`` / ``WITH`` statement (:func:`single_select`). Refer to values as
        ``$name`` and pass them in ``params``.
    params : dict or list, optional
        Bound values (``{"pid": "P_0001"}`` for ``$pid``); never formatted into the SQL.

    Returns
    -------
    polars.DataFrame

    Raises
    ------
    QueryError
        Not exactly one SELECT, or the query failed or tried to write, read other files or
        change settings.
    StoreLockedError
        A writer holds the store.

    Examples
    --------
    >>> query("cohort.duckdb", "select * from outcomes where best_response = $r", {"r": "PD"})  # doctest: +SKIP
    """
    single_select(sql)
    with Store.open(store_path, read_only=True) as store:
        return store.query(sql, params)
