"""Locks held by the database itself: one process at a time, across every host.

``database_lock`` takes a named lock of an engine's database, waiting a bounded time (0: try
once), and holds it for a ``with`` block; the schema lock of ``db_create_all`` and the
cluster-wide jobs' ``try_database_lock`` are both made of it. Every kind is released by the
server when the holder's connection ends, so a crashed process never leaves a lock behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from database.sql.dbtype import DBType
from database.sql.errors import translated_errors

__all__ = ["database_lock", "scoped_lock_name", "try_database_lock"]

# SQLSTATE of a lock wait that ran out of lock_timeout.
POSTGRES_LOCK_NOT_AVAILABLE = "55P03"
# The kinds whose lock try_database_lock offers: SQLite's is the file's write lock, which
# would block the job's own writes; on SQL Server the caller takes its own (Redis) lock.
JOB_LOCK_KINDS = frozenset({DBType.POSTGRESQL, DBType.MYSQL})


def scoped_lock_name(name: str, engine: Engine | None = None) -> str:
    """``name`` made specific to a database (by default the app's), for locks shared by other
    databases' apps (MySQL's GET_LOCK names and Redis keys are server-wide); at most 64
    characters."""
    database = (engine or _app_engine()).url.database
    digest = hashlib.sha256(f"{name}\0{database}".encode()).hexdigest()
    return f"{name[:30]}:{digest[:32]}"


@contextmanager
def database_lock(engine: Engine, name: str, wait_seconds: int) -> Iterator[Connection | None]:
    """Take the lock ``name`` of the engine's database, waiting at most ``wait_seconds``
    (0: try once), and hold it for the ``with`` block.

    Yields the connection holding it (work done on it is committed with the block's end), or
    None when another session held the lock for the whole wait. PostgreSQL: a transaction-
    scoped advisory lock (DDL is transactional there). MySQL and MariaDB: GET_LOCK, held by the
    session because DDL commits implicitly. SQL Server: sp_getapplock, owned by the
    transaction. SQLite: the file's own write lock, taken by BEGIN IMMEDIATE; its wait is the
    driver's busy timeout (SQL_CONNECT_TIMEOUT_SECONDS), after which the driver's error says
    the database is locked.
    """
    kind = DBType.from_backend(engine.url.get_backend_name())
    lock_name = scoped_lock_name(name, engine)
    if kind is DBType.SQLITE:
        with engine.connect() as connection:
            # The driver must not open transactions itself, or BEGIN IMMEDIATE would nest.
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
    elif kind is DBType.MYSQL:
        with engine.connect() as connection:
            acquired = connection.scalar(
                text("SELECT GET_LOCK(:name, :seconds)"),
                {"name": lock_name, "seconds": wait_seconds},
            )
            if acquired != 1:
                yield None
                return
            try:
                yield connection
            finally:
                connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": lock_name})
    elif kind is DBType.POSTGRESQL:
        with engine.connect() as connection, connection.begin():
            held = _postgres_advisory_lock(connection, lock_name, wait_seconds)
            yield connection if held else None
    else:
        with engine.begin() as connection:
            status = connection.scalar(
                text(
                    # NOCOUNT: pyodbc would otherwise see a row count before the result.
                    "SET NOCOUNT ON; DECLARE @status int; "
                    "EXEC @status = sp_getapplock @Resource = :name, "
                    "@LockMode = 'Exclusive', @LockOwner = 'Transaction', "
                    "@LockTimeout = :milliseconds; SELECT @status"
                ),
                {"name": lock_name, "milliseconds": wait_seconds * 1000},
            )
            yield None if status is None or status < 0 else connection


def _postgres_advisory_lock(connection: Connection, lock_name: str, wait_seconds: int) -> bool:
    """Take the transaction's advisory lock for ``lock_name``; False when the wait ran out.

    The wait is the transaction's lock_timeout, so it also bounds the locks the holder's own
    statements wait for (the schema lock's DDL).
    """
    # Advisory locks are numbers; 64 bits of a hash make a collision with another name moot.
    key = int.from_bytes(hashlib.sha256(lock_name.encode()).digest()[:8], "big", signed=True)
    if not wait_seconds:
        return bool(connection.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(wait_seconds)}s'")
    try:
        # In a savepoint, so a wait that runs out leaves the transaction usable.
        with connection.begin_nested():
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    except OperationalError as exc:
        if getattr(exc.orig, "pgcode", None) != POSTGRES_LOCK_NOT_AVAILABLE:
            raise
        return False
    return True


@contextmanager
def try_database_lock(name: str) -> Iterator[bool | None]:
    """Try once to take the lock ``name`` of this database; hold it for the ``with`` block.

    Yields True when held, False when another session holds it, None when the database has
    no lock for such jobs (SQLite, SQL Server): the caller then decides (e.g. a Redis lock).
    """
    engine = _app_engine()
    if DBType.from_backend(engine.url.get_backend_name()) not in JOB_LOCK_KINDS:
        yield None
        return
    with translated_errors(), database_lock(engine, name, wait_seconds=0) as connection:
        yield connection is not None


def _app_engine() -> Engine:
    """The app's engine (in an app context)."""
    # Imported here: the extension module takes its schema lock from this one.
    from database.sql.extension import db

    return db.engine
