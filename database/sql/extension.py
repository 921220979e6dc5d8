"""The Flask-SQLAlchemy and Flask-Migrate binding: ``setup_sql_db``, create/drop, health ping."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from flask import Flask, current_app
from flask.typing import ResponseReturnValue
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy_utils import create_database, database_exists, drop_database

from database.sql.dbtype import DBType
from database.sql.errors import translate, translated_errors
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


db = SQLAlchemy(model_class=Base)
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
    engine = engine_options(
        url,
        connect_timeout=int(app.config["SQL_CONNECT_TIMEOUT_SECONDS"]),
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
    # render_as_batch: SQLite cannot ALTER columns; batch mode rebuilds the table instead.
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    app.register_error_handler(SQLAlchemyError, _translated_response)
    app.extensions[EXTENSION] = kind
    logger.info("SQL database: %s", describe(url))
    return db


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

    For development and tests; deployed databases are built with ``flask db upgrade``.
    """
    url = _database_url()
    with translated_errors():
        if not database_exists(url):
            # MySQL's "utf8" is the 3-byte subset; utf8mb4 stores every character.
            is_mysql = DBType.from_backend(url.get_backend_name()) is DBType.MYSQL
            create_database(url, encoding="utf8mb4" if is_mysql else "utf8")
            logger.info("Created the database %s", describe(url))
        db.create_all()


def db_drop_all(testing: bool = False) -> None:
    """Drop the models' tables; with ``testing=True`` drop the whole database too."""
    with translated_errors():
        db.drop_all()
        if testing:
            url = _database_url()
            db.session.remove()
            db.engine.dispose()
            if url.database not in (None, "", ":memory:"):
                drop_database(url)


def managed_by_migrations() -> bool:
    """True when ``flask db upgrade`` has run on the database (in an app context)."""
    with translated_errors():
        return inspect(db.engine).has_table(MIGRATIONS_TABLE)


def create_tables_on_first_request(app: Flask) -> None:
    """Development convenience: run ``db_create_all`` once, before the first request (or the
    first account command, through ``create_tables_if_due``).

    Skipped on a database that migrations manage, so ``flask db migrate`` still sees every
    model change. Not at start-up, so that ``flask db upgrade`` on a fresh database works.
    """
    lock = threading.Lock()
    done = threading.Event()

    @app.before_request
    def create_tables() -> None:
        if done.is_set():
            return
        with lock:
            if not done.is_set():
                # An unreachable database answers 503 here and is tried again next request.
                if not managed_by_migrations():
                    try:
                        db_create_all()
                    except SQLAlchemyError:
                        # Another worker created a table between this one's check and its
                        # CREATE TABLE; a second pass finds it there (an outage is not caught
                        # here: it is an UnavailableError, a 503).
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
