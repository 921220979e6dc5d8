"""SQL test servers: their URLs (from the tests' own variables) and throwaway test databases."""

from __future__ import annotations

import glob
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from database.sql.dbtype import DBType
from database.sql.extension import drop_database_if_exists
from tests.support.services import port_open, unavailable

# The tests' own variables (not app settings); the defaults match the local servers.
SERVER_URL_VARIABLES = {
    DBType.POSTGRESQL: (
        "POSTGRES_TEST_URL",
        "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
    ),
    DBType.MYSQL: ("MYSQL_TEST_URL", "mysql+pymysql://root@127.0.0.1:3306/mysql"),
    DBType.MSSQL: ("MSSQL_URL", ""),
}
DEFAULT_PORTS = {DBType.POSTGRESQL: 5432, DBType.MYSQL: 3306, DBType.MSSQL: 1433}


def server_url(kind: DBType) -> URL:
    """The server's admin URL, or skip (fail with REQUIRE_SERVICES=1) when it is unreachable.

    MSSQL is only tried when MSSQL_URL is set: no SQL Server exists on most machines, so its
    absence is a skip even with REQUIRE_SERVICES=1.
    """
    variable, default = SERVER_URL_VARIABLES[kind]
    text = os.environ.get(variable, default)
    if not text:
        import unittest

        raise unittest.SkipTest(f"{kind.label}: set {variable} to run these tests.")
    url = make_url(text)
    host, port = url.host or "127.0.0.1", url.port or DEFAULT_PORTS[kind]
    if not port_open(host, port):
        unavailable(kind.label, f"nothing listens on {host}:{port} (set {variable})")
    return url


def unique_name() -> str:
    """A database name no other run uses: test_<hex>."""
    return f"test_{uuid.uuid4().hex}"


def new_database_url(kind: DBType, directory: str) -> URL:
    """A URL for a fresh, not yet created database: test_<hex> on the server, or a SQLite file."""
    if kind is DBType.SQLITE:
        return URL.create("sqlite", database=os.path.join(directory, f"{unique_name()}.db"))
    return server_url(kind).set(database=unique_name())


def database_gone(url: URL) -> bool:
    """True when the database no longer exists; for SQLite, when no file of it is left: no
    file whose name starts with the database file's (empty or not; -journal, -wal, -shm)."""
    from sqlalchemy_utils import database_exists

    if DBType.from_backend(url.get_backend_name()) is DBType.SQLITE:
        path = Path(str(url.database))
        return not any(path.parent.glob(glob.escape(path.name) + "*"))
    return not database_exists(url)


def force_drop(url: URL) -> None:
    """Drop the test database even while connections (a hung test's) still use it."""
    from sqlalchemy import create_engine, text

    kind = DBType.from_backend(url.get_backend_name())
    if kind is DBType.POSTGRESQL:
        engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            quoted = engine.dialect.identifier_preparer.quote(str(url.database))
            connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        engine.dispose()
    elif kind is DBType.MYSQL:
        engine = create_engine(url._replace(database=None))  # set() keeps it
        with engine.connect() as connection:
            sessions = connection.execute(
                text("SELECT id FROM information_schema.processlist WHERE db = :name"),
                {"name": url.database},
            )
            for (session_id,) in sessions.all():
                connection.execute(text(f"KILL {int(session_id)}"))
        engine.dispose()
        drop_database_if_exists(url)
    else:
        drop_database_if_exists(url)


@contextmanager
def created_database(kind: DBType, directory: str) -> Iterator[URL]:
    """A fresh database test_<hex> (created now, with utf8mb4 on MySQL), dropped afterwards."""
    from sqlalchemy_utils import create_database

    url = new_database_url(kind, directory)
    create_database(url, encoding="utf8mb4" if kind is DBType.MYSQL else "utf8")
    try:
        yield url
    finally:
        drop_database_if_exists(url)


def plain(url: URL) -> str:
    """The URL as a string with its password, for DATABASE_URL in tests."""
    return url.render_as_string(hide_password=False)
