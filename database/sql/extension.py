"""The Flask-SQLAlchemy and Flask-Migrate binding: ``setup_sql_db``, create/drop, health ping."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from flask import Flask, current_app, has_request_context, request
from flask.typing import ResponseReturnValue
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool
from sqlalchemy_utils import create_database, database_exists, drop_database

from database.errors import ConfigurationError, UnavailableError
from database.sql.dbtype import DBType
from database.sql.errors import translate, translated_errors
from database.sql.locks import database_lock
from database.sql.urls import (
    build_url,
    describe,
    engine_options,
    parse_url,
    require_mssql_driver,
)

logger = logging.getLogger(__name__)

EXTENSION = "sql"
TABLES_ON_FIRST_USE = "sql_create_tables"
MIGRATIONS_DIR = str(Path(__file__).resolve().parents[2] / "migrations")
MIGRATIONS_TABLE = "alembic_version"
# Sent to clients when the database does not exist (the log says what to run).
MISSING_DATABASE = (
    "The database is not set up: it does not exist on its server yet. The server log says "
    "how to create it."
)
MYSQL_UNKNOWN_DATABASE = 1049  # ER_BAD_DB_ERROR
MISSING_RECHECK_SECONDS = 30.0
_missing_answers: dict[str, tuple[float, bool]] = {}  # URL -> (when asked, missing?)
# The lock that serialises table creation between processes (see schema_lock).
SCHEMA_LOCK_NAME = "flask-jwe-api:create-tables"
SCHEMA_LOCK_TIMEOUT_SECONDS = 10
SCHEMA_LOCK_BUSY = (
    "Another process has been creating the database tables for a while; try again in a moment."
)
# What every SQLite database file starts with; the files SQLite keeps next to one in use.
SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_COMPANION_SUFFIXES = ("-journal", "-wal", "-shm")
# Used when the app was not built by api.create_app (whose settings set these keys).
CONFIG_DEFAULTS: dict[str, object] = {
    "DATABASE_URL": "",
    "MSSQL_ODBC_DRIVER": "ODBC Driver 18 for SQL Server",
    "SQL_CONNECT_TIMEOUT_SECONDS": 3,
    "SQL_POOL_RECYCLE_SECONDS": 1800,
    "SQL_QUERY_TIMEOUT_SECONDS": 15,
}


class Base(DeclarativeBase):
    """Declarative base: named constraints, so migrations can alter them on every database."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class _SQLAlchemy(SQLAlchemy):
    """Flask-SQLAlchemy, whose end-of-context teardown returns at once when no session exists.

    Every app context ends with ``session.remove()``, also on the many requests that never
    touch SQL; there it still looked up the context's scope twice. The scoped session's
    registry is empty when no session was made, and then there is nothing to close.
    """

    def _teardown_session(self, exc: BaseException | None) -> None:
        if getattr(self.session.registry, "registry", True):  # ScopedRegistry: {scope: session}
            self.session.remove()


db = _SQLAlchemy(model_class=Base)
migrate = Migrate()


def setup_sql_db(
    app: Flask,
    dbtype: DBType | str = DBType.SQLITE,
    username: str | None = None,
    password: str | None = None,
    host: str | None = None,
    database_name: str | None = None,
    port: int | None = None,
    **options: object,
) -> SQLAlchemy:
    """Bind the app to one SQL database; ``DATABASE_URL``, when set, wins over the arguments.

    With no arguments and no DATABASE_URL it is the SQLite file ``instance/app.db``.
    ``options`` go to ``create_engine`` on top of this project's pool and timeout defaults.
    """
    if EXTENSION in app.extensions or "sqlalchemy" in app.extensions:
        raise RuntimeError(
            "setup_sql_db was already called for this app; call it once (create_app in "
            "api/__init__.py does) and change that call instead of adding another."
        )
    for key, value in CONFIG_DEFAULTS.items():
        app.config.setdefault(key, value)
    driver = str(app.config["MSSQL_ODBC_DRIVER"])
    if app.config["DATABASE_URL"]:
        url = parse_url(str(app.config["DATABASE_URL"]), driver, app.instance_path)
    else:
        url = build_url(
            dbtype,
            username=username,
            password=password,
            host=host,
            database_name=database_name,
            port=port,
            instance_path=app.instance_path,
            odbc_driver=driver,
        )
    kind = DBType.from_backend(url.get_backend_name())
    if kind is DBType.MSSQL:
        require_mssql_driver(url)
    if kind is DBType.SQLITE and url.database and url.database != ":memory:":
        os.makedirs(os.path.dirname(url.database), exist_ok=True)
    connect_timeout = int(app.config["SQL_CONNECT_TIMEOUT_SECONDS"])
    engine = engine_options(
        url,
        connect_timeout=connect_timeout,
        pool_recycle=int(app.config["SQL_POOL_RECYCLE_SECONDS"]),
        query_timeout=app.config["SQL_QUERY_TIMEOUT_SECONDS"],
    )
    engine.update(options)
    # A URL object, not a string: its repr (and so any dump of app.config) hides the password.
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine
    app.config.setdefault("SQLALCHEMY_TRACK_MODIFICATIONS", False)

    import database.sql.identity  # (registers the accounts' tables)
    import database.sql.models  # noqa: F401 (registers the models' tables in db.metadata)

    db.init_app(app)
    with app.app_context():
        for bound in db.engines.values():
            event.listen(bound, "handle_error", _missing_database_check(connect_timeout))
    # render_as_batch: SQLite cannot ALTER columns; batch mode rebuilds the table instead.
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    app.register_error_handler(SQLAlchemyError, _translated_response)
    app.extensions[EXTENSION] = kind
    logger.info("SQL database: %s", describe(url))
    return db


def _missing_database_check(connect_timeout: int) -> Callable[[ExceptionContext], None]:
    """A ``handle_error`` listener: a connection refused because the database does not exist
    is logged with what to run, and raised as ConfigurationError instead of an outage."""

    def check(context: ExceptionContext) -> None:
        if context.connection is not None or context.engine is None:
            return  # not a failure to connect
        url = context.engine.url
        if _database_missing(url, context.original_exception, connect_timeout):
            logger.error(_missing_database_help(url))
            raise ConfigurationError(MISSING_DATABASE)

    return check


def _database_missing(url: URL, error: BaseException, connect_timeout: int) -> bool:
    """Whether a failed connect means the database does not exist (False when unsure)."""
    kind = DBType.from_backend(url.get_backend_name())
    if kind is DBType.MYSQL:
        return bool(error.args) and error.args[0] == MYSQL_UNKNOWN_DATABASE
    if kind is DBType.POSTGRESQL and url.database:
        # psycopg2 gives no SQLSTATE for errors while connecting, so ask the server; the
        # answer is kept a while, so an outage does not double every request's wait.
        key = describe(url)
        checked = _missing_answers.get(key)
        if checked is None or time.monotonic() - checked[0] > MISSING_RECHECK_SECONDS:
            checked = (time.monotonic(), _postgres_lacks(url, connect_timeout))
            _missing_answers[key] = checked
        return checked[1]
    return False


def _postgres_lacks(url: URL, connect_timeout: int) -> bool:
    """True when the server answers that the database does not exist; False when unsure."""
    maintenance = create_engine(
        url.set(database="postgres"),
        poolclass=NullPool,
        connect_args={"connect_timeout": connect_timeout},
    )
    try:
        with maintenance.connect() as connection:
            found = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            )
        return found is None
    except SQLAlchemyError:
        return False  # the server (or its maintenance database) is out of reach: an outage
    finally:
        maintenance.dispose()


def _missing_database_help(url: URL) -> str:
    """What to run when the database named by the URL does not exist (for the server log)."""
    name = url.database
    where = f"{url.host or 'localhost'}:{url.port or ''}".rstrip(":")
    kind = DBType.from_backend(url.get_backend_name())
    create = (
        f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4;"
        if kind is DBType.MYSQL
        else f'CREATE DATABASE "{name}";'
    )
    return (
        f"The database '{name}' does not exist on {where} ({kind.label}). In development, "
        "leave SQL_CREATE_TABLES unset (or set it to 1) and the first request creates it with "
        f"its tables. Otherwise create it on the server ({create}) and build its tables with "
        "`.venv/bin/flask db upgrade`; or point DATABASE_URL at an existing database."
    )


def _translated_response(exc: SQLAlchemyError) -> ResponseReturnValue:
    """An SQLAlchemy error escaping a view goes to the app's handler as the data-layer error.

    So a query written straight in a view (``Model.query...``) still answers 503 when the
    database is down and 409 on a conflict; anything else stays a logged 500.
    """
    translated = translate(exc)
    if translated is None:
        raise exc
    return current_app.handle_user_exception(translated)


def _database_url() -> URL:
    """The bound database's URL (in an app context)."""
    return db.engine.url


def db_create_all() -> None:
    """Create the database when it does not exist, then any missing tables (in an app context).

    For development and tests; deployed databases are built with ``flask db upgrade``. Safe
    when several processes run it at once (gunicorn workers): a database another process
    created first is fine, and tables are created under a database-wide lock.
    """
    with translated_errors():
        ensure_databases()
        for bind_key, metadata in db.metadatas.items():
            with schema_lock(db.engines[bind_key]) as connection:
                metadata.create_all(connection)


def ensure_databases() -> None:
    """Create each bound database that does not exist yet (in an app context)."""
    for engine in db.engines.values():
        _ensure_database(engine.url)


def _ensure_database(url: URL) -> None:
    """Create the database unless it exists; another process creating it first is fine."""
    if database_exists(url):
        return
    # MySQL's "utf8" is the 3-byte subset; utf8mb4 stores every character.
    is_mysql = DBType.from_backend(url.get_backend_name()) is DBType.MYSQL
    try:
        create_database(url, encoding="utf8mb4" if is_mysql else "utf8")
    except SQLAlchemyError:
        # A concurrent creator wins with "already exists" (or a unique violation) for us.
        if not database_exists(url):
            raise
        return
    logger.info("Created the database %s", describe(url))


@contextmanager
def schema_lock(engine: Engine) -> Iterator[Connection]:
    """A connection holding a database-wide lock, so one process at a time changes the schema.

    The wait is bounded by SCHEMA_LOCK_TIMEOUT_SECONDS (SQLite: by SQL_CONNECT_TIMEOUT_SECONDS);
    a lock still held elsewhere after it raises UnavailableError. See ``database_lock``.
    """
    with database_lock(engine, SCHEMA_LOCK_NAME, SCHEMA_LOCK_TIMEOUT_SECONDS) as connection:
        if connection is None:
            raise UnavailableError(SCHEMA_LOCK_BUSY)
        yield connection


def db_drop_all(testing: bool = False, conn: str | URL | None = None) -> None:
    """Drop the models' tables; with ``testing=True`` drop the whole database too.

    ``conn`` (with ``testing=True``) is the URL of the database to drop, as in the original
    project; by default it is the app's own. The caller's session is ended first (uncommitted
    changes are rolled back): its open transaction would hold locks that DROP waits for.
    """
    if conn is not None and not testing:
        raise ValueError(
            "db_drop_all: conn names the database to drop and is used only with testing=True; "
            "pass testing=True, or leave conn out to drop only the tables."
        )
    target = _database_url() if conn is None else _as_url(conn)
    db.session.remove()
    with translated_errors():
        db.drop_all()
        if testing:
            # Pooled connections would keep the database in use (MySQL waits for them).
            db.engine.dispose()
            drop_database_if_exists(target)


def drop_database_if_exists(url: URL) -> None:
    """Drop the database ``url`` names, if it exists (an in-memory one has nothing to drop).

    A SQLite database is its file, deleted with the journal files SQLite keeps next to it
    (``-journal``, ``-wal``, ``-shm``: another connection still open leaves them), and also
    when it is empty (a connection opened it and wrote nothing, as ``db_drop_all`` does on a
    database never created). A file that is not a SQLite database is refused, not deleted.
    """
    if url.database in (None, "", ":memory:"):
        return
    if DBType.from_backend(url.get_backend_name()) is not DBType.SQLITE:
        if database_exists(url):
            drop_database(url)
        return
    path = str(url.database)
    if os.path.isfile(path) and not _sqlite_file(path):
        raise ConfigurationError(
            f"{path} is not a SQLite database, so it was not deleted; check that DATABASE_URL "
            "(or the conn given to db_drop_all) names the test database."
        )
    for name in (path, *(path + suffix for suffix in SQLITE_COMPANION_SUFFIXES)):
        with suppress(FileNotFoundError):
            os.remove(name)


def _sqlite_file(path: str) -> bool:
    """True when the file at ``path`` is empty or starts with SQLite's header."""
    with open(path, "rb") as file:
        start = file.read(len(SQLITE_HEADER))
    return start in (b"", SQLITE_HEADER)


def _as_url(conn: str | URL) -> URL:
    """``conn`` as a URL with this project's drivers (a SQLite name lives under instance/)."""
    if isinstance(conn, URL):
        return conn
    return parse_url(conn, str(current_app.config["MSSQL_ODBC_DRIVER"]), current_app.instance_path)


def managed_by_migrations() -> bool:
    """True when ``flask db upgrade`` has run on the database (in an app context)."""
    with translated_errors():
        return inspect(db.engine).has_table(MIGRATIONS_TABLE)


def create_tables_on_first_request(app: Flask, exempt_blueprints: Collection[str] = ()) -> None:
    """Development convenience: run ``db_create_all`` once, before the first request (or the
    first account command, through ``create_tables_if_due``).

    Skipped on a database that migrations manage, so ``flask db migrate`` still sees every
    model change. Not at start-up, so that ``flask db upgrade`` on a fresh database works.
    Requests to ``exempt_blueprints`` (monitoring URLs) neither wait for it nor trigger it.
    Several workers starting at once are serialised by ``db_create_all``'s database lock.
    """
    lock = threading.Lock()
    done = threading.Event()

    @app.before_request
    def create_tables() -> None:
        if done.is_set():
            return
        if has_request_context() and request.blueprint in exempt_blueprints:
            return
        with lock:
            if not done.is_set():
                # An unreachable database answers 503 here and is tried again next request.
                with translated_errors():
                    ensure_databases()  # first: the migrations check needs the database
                if not managed_by_migrations():
                    db_create_all()
                done.set()

    app.extensions[TABLES_ON_FIRST_USE] = create_tables


def create_tables_if_due() -> None:
    """Create the tables now if this app creates them on first use (development), for a
    command that runs before any request, such as ``flask users create`` on a fresh clone."""
    create_tables: Callable[[], None] | None = current_app.extensions.get(TABLES_ON_FIRST_USE)
    if create_tables is not None:
        create_tables()


def ping_check(app: Flask) -> Callable[[], None]:
    """A health check for ``register_check``: ``SELECT 1`` on the app's engine, no app context."""
    with app.app_context():
        engine = db.engine

    def ping() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    return ping
