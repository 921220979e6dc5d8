"""Which real driver errors are outages (503) and which are bugs (500), on each database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from database.errors import UnavailableError
from database.sql.dbtype import DBType
from database.sql.errors import translate
from tests.support.sql import created_database, server_url


def raised_by(url: URL | str, *statements: str, **connect_args: object) -> SQLAlchemyError:
    """The SQLAlchemy error the last statement raises on a real connection."""
    engine = create_engine(url, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(text(statement))
    except SQLAlchemyError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{statements[-1]!r} did not fail")


@pytest.mark.parametrize("kind", [DBType.SQLITE, DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def test_a_mistake_in_the_sql_is_a_bug_not_an_outage(kind: DBType) -> None:
    # SQLite and PyMySQL raise OperationalError for this one; it must still reach the 500 path.
    url = "sqlite://" if kind is DBType.SQLITE else server_url(kind)
    exc = raised_by(url, "SELECT no_such_column FROM (SELECT 1 AS a) AS t")
    assert translate(exc) is None


def test_sqlite_lock_and_missing_folder_are_outages(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        locked = raised_by(f"sqlite:///{path}", "SELECT * FROM t", timeout=0)
    finally:
        holder.close()
    unopenable = raised_by(f"sqlite:///{tmp_path / 'missing' / 'x.db'}", "SELECT 1")
    for exc in (locked, unopenable):
        assert isinstance(exc, OperationalError) and isinstance(translate(exc), UnavailableError)


def test_mysql_lock_wait_timeout_is_an_outage(tmp_path: Path) -> None:
    with created_database(DBType.MYSQL, str(tmp_path)) as url:
        holder = create_engine(url)
        try:
            with holder.begin() as connection:
                connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY) ENGINE=InnoDB"))
                connection.execute(text("INSERT INTO t VALUES (1)"))
            with holder.begin() as connection:
                connection.execute(text("SELECT id FROM t WHERE id = 1 FOR UPDATE"))
                exc = raised_by(
                    url,
                    "SET SESSION innodb_lock_wait_timeout = 1",
                    "UPDATE t SET id = 2 WHERE id = 1",
                )
        finally:
            holder.dispose()
    assert isinstance(exc.orig, Exception) and exc.orig.args[0] == 1205
    assert isinstance(translate(exc), UnavailableError)
