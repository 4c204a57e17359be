"""The store: one DuckDB file, one writer at a time, any number of read-only readers after it.

Open it with :meth:`Store.open`. A read-write open takes DuckDB's file lock, applies pending
migrations and re-creates the views; a second read-write opener (another process, or the same
process) gets :class:`~immunodig.errors.StoreLockedError`. A read-only open disables every access
to files other than the store itself (``enable_external_access = false``, configuration locked),
so SQL typed by a user cannot read, write or attach anything else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from immunodig.errors import QueryError, StoreError, StoreLockedError
from immunodig.store import catalog_sync, ingest, migrations
from immunodig.store.writer_lock import WriterLock

#: DuckDB settings of every read-only connection.
READ_ONLY_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "lock_configuration": True,
}

_WRITERS: set[Path] = set()
_WRITERS_LOCK = threading.Lock()


def _locked_error(path: Path, exc: Exception) -> StoreLockedError:
    return StoreLockedError(
        f"store is locked by another process: {path} is open for writing elsewhere ({exc}). "
        "Wait for that command to finish, then retry; only one writer may use a store at a time."
    )


class Store:
    """An open immunodig store; use :meth:`open` (also a context manager).

    Examples
    --------
    >>> from immunodig.store import Store
    >>> with Store.open("cohort.duckdb") as store:          # doctest: +SKIP
    ...     store.sync_feature_catalog(catalog().values())
    ...     store.ingest_slide_dir("work/s_0123456789abcdef")
    """

    def __init__(self, con, path: Path, read_only: bool) -> None:
        self._con = con
        self.path = path
        self.read_only = read_only

    # -- opening and closing -------------------------------------------------------------------
    _writer: WriterLock | None = None

    @classmethod
    def open(cls, path: str | Path, read_only: bool = False) -> "Store":
        """Open (and, read-write, create and migrate) the store at ``path``.

        Parameters
        ----------
        path : str or Path
            The ``.duckdb`` file. Created on a read-write open when missing.
        read_only : bool
            Open for reading only, with external file access disabled.

        Raises
        ------
        StoreLockedError
            Another process (or another Store in this process) has it open for writing.
        StoreError
            The file is missing (read-only), not a DuckDB database, or its schema cannot be migrated.
        """
        import duckdb

        path = Path(path).expanduser().resolve()
        if read_only:
            if not path.is_file():
                raise StoreError(f"no store at {path}; create it with build-features or import-clinical")
            with _WRITERS_LOCK:
                if path in _WRITERS:
                    raise StoreLockedError(
                        f"store is locked: {path} is open for writing in this process; close it first"
                    )
            try:
                con = duckdb.connect(str(path), read_only=True, config=READ_ONLY_CONFIG)
            except duckdb.IOException as exc:
                if "lock" in str(exc).lower():
                    raise _locked_error(path, exc) from exc
                raise StoreError(f"{path} is not a readable DuckDB store: {exc}") from exc
            except duckdb.Error as exc:
                raise StoreError(f"{path} could not be opened read-only: {exc}") from exc
            return cls(con, path, read_only=True)

        with _WRITERS_LOCK:
            if path in _WRITERS:
                raise StoreLockedError(
                    f"store is locked: {path} is already open for writing in this process"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = WriterLock(path, "a read-write connection").acquire()
            try:
                con = _connect_writer(path)
            except BaseException:
                writer.release()
                raise
            _WRITERS.add(path)
        store = cls(con, path, read_only=False)
        store._writer = writer
        try:
            migrations.apply_migrations(con)
            con.execute("begin transaction")
            catalog_sync.refresh_views(con)
            con.execute("commit")
        except Exception:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Close the connection (idempotent) and release the write lock."""
        if self._con is None:
            return
        self._con.close()
        self._con = None
        if not self.read_only:
            with _WRITERS_LOCK:
                _WRITERS.discard(self.path)
            self._writer.release()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def connection(self):
        """The underlying ``duckdb.DuckDBPyConnection`` (for advanced use)."""
        if self._con is None:
            raise StoreError(f"store {self.path} is closed")
        return self._con

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"store {self.path} was opened read-only; open it read-write to change it")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Run the body in one transaction: everything is committed, or nothing on error."""
        self._require_writable()
        con = self.connection
        con.execute("begin transaction")
        try:
            yield con
        except BaseException:
            con.execute("rollback")
            raise
        con.execute("commit")

    # -- reading -------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        """Highest applied migration version (0 for an empty file)."""
        return max(migrations.applied(self.connection), default=0)

    def query(self, sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None):
        """Run one SELECT with bound parameters and return a ``polars.DataFrame``.

        Parameters
        ----------
        sql : str
            Exactly one ``SELECT`` / ``WITH`` statement
            (:func:`immunodig.store.query.single_select`); refer to values as ``$name`` (dict
            ``params``) or ``?`` (list ``params``).
        params : dict or list, optional
            Values bound by DuckDB, never formatted into the text.

        Raises
        ------
        QueryError
            Not exactly one SELECT, or DuckDB refused or failed the query.
        """
        import duckdb
        import polars as pl

        from immunodig.store.query import single_select

        single_select(sql)
        try:
            relation = self.connection.sql(sql, params=params)
            return relation.pl() if relation is not None else pl.DataFrame()
        except duckdb.Error as exc:
            raise QueryError(f"query failed on {self.path.name}: {exc}") from exc

    def counts(self) -> dict[str, int]:
        """Row counts of every base table (for logs, tests and the CLI)."""
        tables = [r[0] for r in self.connection.execute(
            "select table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema = 'main' order by 1"
        ).fetchall()]
        return {t: self.connection.execute(f'select count(*) from "{t}"').fetchall()[0][0] for t in tables}

    def run_checks(self) -> dict[str, Any]:
        """Run every ``sql/checks/*.sql`` query; return ``{name: polars.DataFrame of violations}``."""
        out = {}
        for path in sorted((migrations.sql_dir() / "checks").glob("*.sql")):
            out[path.stem] = self.query(path.read_text())
        return out

    # -- writing -------------------------------------------------------------------------------
    def sync_feature_catalog(self, specs: Iterable[Any]) -> int:
        """Upsert feature declarations and regenerate the wide views; see :mod:`catalog_sync`."""
        self._require_writable()
        return catalog_sync.sync_feature_catalog(self.connection, specs)

    def ingest_slide_dir(self, path: str | Path) -> "ingest.IngestResult":
        """Load one per-slide folder (manifest or failure) in one transaction; see :mod:`ingest`."""
        self._require_writable()
        return ingest.ingest_slide_dir(self.connection, path)

    def record_failure(
        self,
        *,
        run_id: str,
        reason: str,
        message: str,
        slide_id: str | None = None,
        path: str | Path | None = None,
        slide_key: str | None = None,
    ) -> None:
        """Record that a slide failed in a run (``slide_status`` row with status ``failed``;
        ``slide_key`` keys a row with neither id nor path)."""
        self._require_writable()
        with self.transaction() as con:
            ingest.record_failure(con, run_id=run_id, reason=reason, message=message,
                                  slide_id=slide_id, path=path, slide_key=slide_key)

    def record_run(
        self,
        *,
        run_id: str,
        code_version: str,
        config: Mapping[str, Any],
        config_hash: str,
        model_hashes: Mapping[str, str],
        started_at: Any = None,
    ) -> None:
        """Record the start of a build run (status ``running``); a no-op if it is already known."""
        self._require_writable()
        with self.transaction() as con:
            ingest.upsert_run(con, {
                "run_id": run_id, "code_version": code_version, "config": dict(config),
                "config_hash": config_hash, "model_hashes": dict(model_hashes),
                "started_at": started_at or datetime.now(timezone.utc).isoformat(), "finished_at": None,
            }, status="running")

    def mark_interrupted_runs(self) -> int:
        """Mark runs still ``running`` as ``interrupted``, with the number of slides they finished.

        Call only while holding the store's writer lock for a new build (no other build is then
        alive, so a ``running`` run is one whose driver was killed). Returns how many were marked.
        """
        self._require_writable()
        with self.transaction() as con:
            marked = con.execute("""
                update runs set status = 'interrupted',
                    n_slides_finished = (select count(*) from slide_status s
                                         where s.run_id = runs.run_id and s.status = 'done')
                where status = 'running' returning run_id""").fetchall()
        return len(marked)

    def finish_run(self, run_id: str, status: str = "done") -> None:
        """Mark a run ``done``, ``partial`` (some slides failed) or ``failed``, now."""
        self._require_writable()
        if status not in ("done", "partial", "failed"):
            raise StoreError(f"run status must be done, partial or failed, not {status!r}")
        with self.transaction() as con:
            updated = con.execute(
                "update runs set status = $status, finished_at = now() "
                "where run_id = $run_id returning run_id",
                {"status": status, "run_id": run_id},
            ).fetchall()
        if not updated:
            raise StoreError(f"run {run_id} is not recorded in {self.path.name}")


#: How long a writer holding the writer lock waits for read-only connections (other processes'
#: queries) to close before giving up, in seconds.
READER_WAIT_S = 120.0


def _connect_writer(path: Path):
    """Open DuckDB read-write. The caller holds the writer lock, so a DuckDB lock conflict can
    only be a reader (a query, a DBeaver session): wait for it instead of failing the writer."""
    import time

    import duckdb

    deadline = time.monotonic() + READER_WAIT_S
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise StoreError(f"{path} is not a writable DuckDB store: {exc}") from exc
            if time.monotonic() > deadline:
                raise _locked_error(path, exc) from exc
            time.sleep(0.25)
        except duckdb.Error as exc:
            raise StoreError(f"{path} could not be opened: {exc}") from exc
