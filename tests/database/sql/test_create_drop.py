"""db_create_all and db_drop_all on SQLite, PostgreSQL and MariaDB: bounded, never hanging;
a dropped SQLite database leaves no file behind."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy_utils import database_exists

from database.errors import ConfigurationError, UnavailableError
from database.sql import db, db_create_all, db_drop_all, extension, setup_sql_db
from database.sql.dbtype import DBType
from database.sql.extension import schema_lock
from database.sql.models import Test
from tests.support.sql import database_gone, force_drop, new_database_url, plain

KINDS = [DBType.SQLITE, DBType.POSTGRESQL, DBType.MYSQL]
# db_drop_all takes well under a second; a hang (a lock wait) must fail the test, not CI.
BOUND_SECONDS = 10


def finish_within(seconds: float, work: Callable[[], None]) -> None:
    """Run ``work`` in a daemon thread; fail if it raises or has not returned in time."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"did not finish within {seconds} s (a lock wait?)")
    if errors:
        raise errors[0]


@pytest.fixture(params=KINDS, ids=str)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """A URL for a database test_<hex> that does not exist yet; removed afterwards."""
    url = new_database_url(request.param, str(tmp_path))
    yield url
    force_drop(url)


def sql_app(url: URL, instance: Path) -> Flask:
    """A bare app bound to ``url``."""
    app = Flask(__name__, instance_path=str(instance))
    app.config["DATABASE_URL"] = plain(url)
    setup_sql_db(app)
    return app


def test_drop_after_a_query_in_the_same_context(database_url: URL, tmp_path: Path) -> None:
    app = sql_app(database_url, tmp_path)

    def teardown_like_the_original() -> None:
        with app.app_context():
            db_create_all()
            Test(title="x").insert()
            assert Test.query.count() == 1  # leaves the session's transaction open
            db_drop_all(testing=True)

    finish_within(BOUND_SECONDS, teardown_like_the_original)
    assert database_gone(database_url)


def test_drop_tables_only_keeps_the_database(database_url: URL, tmp_path: Path) -> None:
    app = sql_app(database_url, tmp_path)

    def drop_tables() -> None:
        with app.app_context():
            db_create_all()
            Test.query.count()
            db_drop_all()
            # The tables are gone and can be made again: the database is still there.
            db_create_all()
            assert Test.query.count() == 0

    finish_within(BOUND_SECONDS, drop_tables)
    assert database_exists(database_url)


# SQL Server too, where MSSQL_URL names one (skipped otherwise).
@pytest.mark.parametrize("database_url", [*KINDS, DBType.MSSQL], ids=str, indirect=True)
def test_schema_lock_admits_one_holder_at_a_time(database_url: URL, tmp_path: Path) -> None:
    app = sql_app(database_url, tmp_path)
    with app.app_context():
        db_create_all()
        engine = db.engine
    order: list[str] = []

    def second_holder() -> None:
        with schema_lock(engine):
            order.append("second in")

    with schema_lock(engine):
        waiting = threading.Thread(target=second_holder, daemon=True)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive(), "the second holder got in while the first held the lock"
        order.append("first out")
    waiting.join(BOUND_SECONDS)
    assert order == ["first out", "second in"]
    engine.dispose()


@pytest.mark.parametrize("database_url", [DBType.POSTGRESQL, DBType.MYSQL], ids=str, indirect=True)
def test_schema_lock_held_too_long_is_an_outage(
    database_url: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extension, "SCHEMA_LOCK_TIMEOUT_SECONDS", 1)
    app = sql_app(database_url, tmp_path)
    with app.app_context():
        db_create_all()
        engine = db.engine
    second = create_engine(database_url)

    def take_it_too() -> None:
        with schema_lock(second):
            pass

    try:
        with schema_lock(engine), pytest.raises(UnavailableError) as raised:
            finish_within(BOUND_SECONDS, take_it_too)
        assert str(raised.value) == extension.SCHEMA_LOCK_BUSY
        with schema_lock(second) as connection:  # free again once the holder is done
            assert connection.scalar(text("SELECT 1")) == 1
    finally:
        second.dispose()
        engine.dispose()


@pytest.mark.parametrize("form", ["url", "text"])
def test_conn_names_the_database_to_drop(database_url: URL, tmp_path: Path, form: str) -> None:
    app = sql_app(database_url, tmp_path)
    with app.app_context():
        db_create_all()
        conn = app.config["SQLALCHEMY_DATABASE_URI"] if form == "url" else plain(database_url)
        db_drop_all(testing=True, conn=conn)
    assert database_gone(database_url)


def test_a_sqlite_database_goes_with_its_journal_files(tmp_path: Path) -> None:
    url = new_database_url(DBType.SQLITE, str(tmp_path))
    app = sql_app(url, tmp_path)
    with app.app_context():
        db_create_all()
        Test(title="x").insert()
        # Another connection (another process, a hung test) keeps WAL mode's -wal and -shm.
        other = sqlite3.connect(str(url.database))
        other.execute("PRAGMA journal_mode=WAL")
        other.execute("INSERT INTO test (title) VALUES ('y')").connection.commit()
        Path(f"{url.database}-journal").touch()  # a crashed writer's journal
        assert {path.name for path in tmp_path.iterdir()} >= {
            f"{Path(str(url.database)).name}{suffix}" for suffix in ("", "-wal", "-shm", "-journal")
        }
        db_drop_all(testing=True)
    other.close()
    assert database_gone(url)


def test_dropping_a_sqlite_database_never_created_leaves_no_file(tmp_path: Path) -> None:
    # Dropping the tables opens the file, which SQLite creates empty: it must go too.
    url = new_database_url(DBType.SQLITE, str(tmp_path))
    with sql_app(url, tmp_path).app_context():
        db_drop_all(testing=True)
    assert database_gone(url)


def test_a_file_that_is_not_a_sqlite_database_is_not_deleted(tmp_path: Path) -> None:
    url = new_database_url(DBType.SQLITE, str(tmp_path))
    with sql_app(url, tmp_path).app_context():
        db_create_all()
        notes = tmp_path / "notes.txt"
        notes.write_text("not a database")
        with pytest.raises(ConfigurationError, match=r"notes\.txt is not a SQLite database"):
            db_drop_all(testing=True, conn=f"sqlite:///{notes}")
    assert notes.read_text() == "not a database"


def test_conn_without_testing_is_refused(tmp_path: Path) -> None:
    app = sql_app(new_database_url(DBType.SQLITE, str(tmp_path)), tmp_path)
    with app.app_context(), pytest.raises(ValueError, match="only with testing=True"):
        db_drop_all(conn="sqlite:///other.db")


def test_each_app_context_ends_its_session(make_app: Callable[..., Flask]) -> None:
    # The end-of-context teardown closes the session a request made, and does nothing when
    # the request made none (it skips the lookups then, not the closing).
    app = make_app()
    client = app.test_client()
    registry = db.session.registry.registry  # type: ignore[attr-defined]
    assert client.get("/").status_code == 200
    assert registry == {}
    with app.app_context():
        db.session.execute(text("SELECT 1"))
        session = db.session()
        assert registry
    assert registry == {}
    assert not session.in_transaction()
