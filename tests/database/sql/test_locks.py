"""database_lock and try_database_lock on PostgreSQL, MariaDB and SQLite: one holder at a time."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from database.sql import setup_sql_db
from database.sql.dbtype import DBType
from database.sql.locks import database_lock, scoped_lock_name, try_database_lock
from tests.support.sql import created_database, new_database_url, plain

SERVERS = [DBType.POSTGRESQL, DBType.MYSQL]


@pytest.fixture(params=SERVERS, ids=str)
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one fresh database of the server, as two processes would hold."""
    with created_database(request.param, str(tmp_path)) as url:
        first, second = create_engine(url), create_engine(url)
        yield first, second
        first.dispose()
        second.dispose()


def unique_lock() -> str:
    """A lock name no other test run takes."""
    return f"test-lock-{uuid.uuid4().hex}"


@pytest.mark.parametrize("wait_seconds", [0, 1])
def test_a_lock_held_elsewhere_is_refused_after_the_wait(
    engines: tuple[Engine, Engine], wait_seconds: int
) -> None:
    holder, other = engines
    name = unique_lock()
    with database_lock(holder, name, wait_seconds=0) as connection:
        assert connection is not None
        assert connection.scalar(text("SELECT 1")) == 1  # the holder's connection works
        started = time.monotonic()
        with database_lock(other, name, wait_seconds=wait_seconds) as refused:
            assert refused is None
        waited = time.monotonic() - started
    assert wait_seconds - 0.1 <= waited < wait_seconds + 3
    with database_lock(other, name, wait_seconds=0) as connection:
        assert connection is not None  # released with the holder's block


def test_a_waiting_taker_gets_the_lock_when_it_is_released(
    engines: tuple[Engine, Engine],
) -> None:
    holder, other = engines
    name = unique_lock()
    taken, release = threading.Event(), threading.Event()

    def hold_a_moment() -> None:
        with database_lock(holder, name, wait_seconds=0) as connection:
            assert connection is not None
            taken.set()
            release.wait(5)

    thread = threading.Thread(target=hold_a_moment, daemon=True)
    thread.start()
    assert taken.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with database_lock(other, name, wait_seconds=5) as connection:
        assert connection is not None
        assert release.is_set() and time.monotonic() - started >= 0.25
        # Taken after a wait, it is held as firmly as one taken at once.
        with database_lock(holder, name, wait_seconds=0) as refused:
            assert refused is None
    thread.join(5)


@pytest.mark.parametrize("kind", SERVERS, ids=str)
def test_a_lock_name_belongs_to_one_database(kind: DBType, tmp_path: Path) -> None:
    # MySQL's lock names are server-wide: the same name in two databases are two locks.
    name = unique_lock()
    with (
        created_database(kind, str(tmp_path)) as first_url,
        created_database(kind, str(tmp_path)) as second_url,
    ):
        first, second = create_engine(first_url), create_engine(second_url)
        try:
            assert scoped_lock_name(name, first) != scoped_lock_name(name, second)
            with (
                database_lock(first, name, wait_seconds=0) as held_first,
                database_lock(second, name, wait_seconds=0) as held_second,
            ):
                assert held_first is not None and held_second is not None
        finally:
            first.dispose()
            second.dispose()


def test_scoped_lock_names_fit_mysql() -> None:
    engine = create_engine(f"sqlite:///{'d' * 200}.db")
    assert len(scoped_lock_name("n" * 100, engine)) <= 64


def test_sqlite_offers_no_job_lock(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["DATABASE_URL"] = plain(new_database_url(DBType.SQLITE, str(tmp_path)))
    setup_sql_db(app)
    with app.app_context(), try_database_lock(unique_lock()) as held:
        assert held is None
