"""Forward-only schema migrations read from ``sql/schema/NNN_name.sql``.

Each file is applied once, in version order, inside its own transaction, and recorded in
``schema_version`` with the SHA-256 of its text. A migration that was edited after it was applied is
an error: schema changes go into a new, higher-numbered file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from immunodig.errors import StoreError

_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


def sql_dir() -> Path:
    """Return the ``sql/`` folder (schema, views and checks).

    In a source checkout (and an editable install) this is the repository's ``sql/``, the single
    source of the definitions; an installed wheel carries a copy as ``immunodig/_sql``.

    Raises
    ------
    StoreError
        If neither is present (a broken installation).
    """
    package = Path(__file__).resolve().parents[1]
    for path in (package.parent / "sql", package / "_sql"):
        if (path / "schema").is_dir():
            return path
    raise StoreError(f"SQL definitions not found beside {package}; reinstall immunodig")


@dataclass(frozen=True)
class Migration:
    """One forward migration file.

    Parameters
    ----------
    version : int
        The ``NNN`` prefix of the file name.
    name : str
        The rest of the file name, without ``.sql``.
    sql : str
        The statements to run.
    """

    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        """SHA-256 of the migration text, recorded when it is applied."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(schema_dir: Path | None = None) -> list[Migration]:
    """Return the migrations under ``schema_dir`` (default ``sql/schema``) sorted by version."""
    schema_dir = schema_dir or sql_dir() / "schema"
    migrations = []
    for path in sorted(schema_dir.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise StoreError(f"{path}: migration files must be named NNN_lower_case_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise StoreError(f"{schema_dir}: two migration files share a version number")
    return migrations


def applied(con) -> dict[int, str]:
    """Return ``{version: sha256}`` of the migrations recorded in ``schema_version`` (empty if none)."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_name = 'schema_version' and table_schema = 'main'"
    ).fetchall()[0][0]
    if not exists:
        return {}
    return dict(con.execute("select version, sha256 from schema_version order by version").fetchall())


def apply_migrations(con, schema_dir: Path | None = None) -> list[int]:
    """Apply every pending migration, each in its own transaction.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        A read-write connection.
    schema_dir : Path, optional
        Folder of migration files; default ``sql/schema``.

    Returns
    -------
    list of int
        The versions applied now (empty when the store was up to date).

    Raises
    ------
    StoreError
        If an applied migration was edited since, or the store is newer than this package.
    """
    migrations = discover(schema_dir)
    done = applied(con)
    known = {m.version: m for m in migrations}
    for version, sha in done.items():
        if version not in known:
            raise StoreError(
                f"store has schema version {version}, unknown to this immunodig; upgrade immunodig"
            )
        if known[version].sha256 != sha:
            raise StoreError(
                f"migration {version:03d}_{known[version].name}.sql changed after it was applied "
                "to this store; migrations are forward-only: restore it and add a new file"
            )
    new = []
    for migration in migrations:
        if migration.version in done:
            continue
        con.execute("begin transaction")
        try:
            con.execute(migration.sql)
            con.execute(
                "insert into schema_version (version, name, sha256) values ($v, $n, $s)",
                {"v": migration.version, "n": migration.name, "s": migration.sha256},
            )
            con.execute("commit")
        except Exception as exc:
            con.execute("rollback")
            raise StoreError(
                f"migration {migration.version:03d}_{migration.name}.sql failed: {exc}"
            ) from exc
        new.append(migration.version)
    return new
