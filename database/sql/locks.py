"""Cluster-wide locks held by the database itself, for jobs that every host may start at once.

PostgreSQL: ``pg_try_advisory_xact_lock`` in a transaction kept open on its own connection;
MySQL/MariaDB: ``GET_LOCK`` with no wait. Both are released by the server when the holder's
connection ends, so a crashed job never leaves a lock behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from database.sql.dbtype import DBType
from database.sql.errors import translated_errors
from database.sql.extension import db

__all__ = ["scoped_lock_name", "try_database_lock"]


def scoped_lock_name(name: str) -> str:
    """``name`` made specific to the bound database, for locks shared by other databases'
    apps (MySQL's GET_LOCK names and Redis keys are server-wide); at most 64 characters."""
    digest = hashlib.sha256(f"{name}\0{db.engine.url.database}".encode()).hexdigest()
    return f"{name[:30]}:{digest[:32]}"


@contextmanager
def try_database_lock(name: str) -> Iterator[bool | None]:
    """Try once to take the lock ``name`` of this database; hold it for the ``with`` block.

    Yields True when held, False when another session holds it, None when the database has
    no such lock (SQLite, SQL Server): the caller then decides (e.g. a Redis lock).
    """
    kind = DBType.from_backend(db.engine.url.get_backend_name())
    lock_name = scoped_lock_name(name)
    if kind is DBType.POSTGRESQL:
        key = int.from_bytes(hashlib.sha256(lock_name.encode()).digest()[:8], "big", signed=True)
        with translated_errors(), db.engine.connect() as connection, connection.begin():
            query = text("SELECT pg_try_advisory_xact_lock(:key)")
            yield bool(connection.scalar(query, {"key": key}))
        return
    if kind is DBType.MYSQL:
        with translated_errors(), db.engine.connect() as connection:
            held = connection.scalar(text("SELECT GET_LOCK(:name, 0)"), {"name": lock_name}) == 1
            try:
                yield held
            finally:
                if held:
                    connection.scalar(text("SELECT RELEASE_LOCK(:name)"), {"name": lock_name})
        return
    yield None
