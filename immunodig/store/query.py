"""Safe read-only queries: ``query(store_path, sql, params)``.

The store is opened read-only with external access disabled and the configuration locked, so a
query can read the store's tables and views and nothing else: ``COPY ... TO``, ``read_csv`` of
other files, ``ATTACH``, ``INSTALL``/``LOAD`` and any DDL or DML fail with
:class:`~immunodig.errors.QueryError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from immunodig.store.connection import Store


def query(
    store_path: str | Path,
    sql: str,
    params: Mapping[str, Any] | Sequence[Any] | None = None,
):
    """Run ``sql`` read-only against the store and return a ``polars.DataFrame``.

    Parameters
    ----------
    store_path : str or Path
        The ``.duckdb`` file.
    sql : str
        One query. Refer to values as ``$name`` and pass them in ``params``.
    params : dict or list, optional
        Bound values (``{"pid": "P_0001"}`` for ``$pid``); never formatted into the SQL.

    Returns
    -------
    polars.DataFrame

    Raises
    ------
    QueryError
        The query failed or tried to write, read other files or change settings.
    StoreLockedError
        A writer holds the store.

    Examples
    --------
    >>> query("cohort.duckdb", "select * from outcomes where best_response = $r", {"r": "PD"})  # doctest: +SKIP
    """
    with Store.open(store_path, read_only=True) as store:
        return store.query(sql, params)
