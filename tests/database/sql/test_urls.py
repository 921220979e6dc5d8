"""URL building for each database, DATABASE_URL forms, and the messages for wrong settings."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from database.errors import ConfigurationError
from database.sql import db, setup_sql_db
from database.sql.dbtype import DBType
from database.sql.urls import build_url, describe, parse_url

ODBC = "ODBC Driver 18 for SQL Server"
AWKWARD_PASSWORD = "p@ss/w:o%rd?#&="


@pytest.mark.parametrize(
    ("kind", "drivername", "query"),
    [
        (DBType.POSTGRESQL, "postgresql+psycopg2", {}),
        (DBType.MYSQL, "mysql+pymysql", {"charset": "utf8mb4"}),
        (DBType.MSSQL, "mssql+pyodbc", {"driver": ODBC}),
    ],
)
def test_server_urls_escape_credentials_and_keep_the_port(
    kind: DBType, drivername: str, query: dict[str, str]
) -> None:
    url = build_url(
        kind, username="us@er", password=AWKWARD_PASSWORD, host="db.internal", port=6543,
        database_name="app",
    )  # fmt: skip
    assert (url.drivername, url.host, url.port, url.database) == (
        drivername,
        "db.internal",
        6543,
        "app",
    )
    assert dict(url.query) == query
    # The rendered string parses back to exactly the same credentials.
    again = make_url(url.render_as_string(hide_password=False))
    assert (again.username, again.password) == ("us@er", AWKWARD_PASSWORD)
    assert AWKWARD_PASSWORD not in describe(url) and "***" in describe(url)


def test_dbtype_accepts_names_and_members() -> None:
    assert DBType.parse("PostgreSQL") is DBType.POSTGRESQL
    assert DBType.parse("mariadb") is DBType.MYSQL
    assert DBType.parse(DBType.SQLITE) is DBType.SQLITE
    assert DBType.MYSQL == "mysql"


@pytest.mark.parametrize("bad", ["oracle", "", "mongodb"])
def test_unknown_dbtype_lists_the_supported_ones(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="postgresql, mysql, mssql, sqlite"):
        build_url(bad, database_name="app")


def test_unknown_database_url_lists_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"'oracle' is not supported.*postgresql, mysql"):
        parse_url("oracle://scott:tiger@db/app", ODBC, str(tmp_path))


def test_invalid_database_url_is_explained_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_url("not a url with s3cret", ODBC, str(tmp_path))
    assert "DATABASE_URL is not a valid URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:p@h/d", "postgresql+psycopg2://u:***@h/d"),
        ("postgresql://u@h:5433/d", "postgresql+psycopg2://u@h:5433/d"),
        ("mysql://root@h/d", "mysql+pymysql://root@h/d?charset=utf8mb4"),
        ("mariadb://root@h/d", "mariadb+pymysql://root@h/d?charset=utf8mb4"),
        ("mysql+pymysql://root@h/d?charset=latin1", "mysql+pymysql://root@h/d?charset=latin1"),
        ("mssql://u:p@h:1433/d", f"mssql+pyodbc://u:***@h:1433/d?driver={ODBC.replace(' ', '+')}"),
        ("sqlite://", "sqlite://"),
        ("sqlite:////abs/app.db", "sqlite:////abs/app.db"),
    ],
)
def test_database_url_forms(text: str, expected: str) -> None:
    assert describe(parse_url(text, ODBC, "/instance")) == expected


def test_sqlite_names_live_in_the_instance_folder(tmp_path: Path) -> None:
    assert build_url(DBType.SQLITE, instance_path=str(tmp_path)).database == str(
        tmp_path / "app.db"
    )
    url = parse_url("sqlite:///data.db", ODBC, str(tmp_path))
    assert url.database == str(tmp_path / "data.db")


def test_sqlite_refuses_server_arguments() -> None:
    with pytest.raises(ConfigurationError, match="SQLite is a file and takes no host, port"):
        build_url(DBType.SQLITE, host="db", port=5432)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"host": "db"}, "PostgreSQL needs database_name"),
        ({"database_name": "app", "port": 70000}, "The port 70000 is not valid"),
    ],
)
def test_server_arguments_are_checked(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_url(DBType.POSTGRESQL, **arguments)  # type: ignore[arg-type]


def test_mssql_without_its_driver_says_what_to_install(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["MSSQL_ODBC_DRIVER"] = "No Such ODBC Driver"
    with pytest.raises(ConfigurationError) as caught:
        setup_sql_db(app, DBType.MSSQL, username="sa", password="pw", host="h", database_name="d")
    message = str(caught.value)
    assert "msodbcsql18" in message and "tdsodbc" in message and "unixodbc" in message
    assert "sqlalchemy" not in app.extensions


def test_database_url_wins_over_arguments(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'chosen.db'}"
    setup_sql_db(app, DBType.POSTGRESQL, host="elsewhere", database_name="ignored")
    with app.app_context():
        assert db.engine.url.database == str(tmp_path / "chosen.db")


def test_setup_twice_is_refused(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    setup_sql_db(app)
    with pytest.raises(RuntimeError, match="setup_sql_db was already called"):
        setup_sql_db(app)


def test_password_never_reaches_config_dumps_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = Flask(__name__, instance_path=str(tmp_path))
    setup_sql_db(app, DBType.POSTGRESQL, username="u", password=AWKWARD_PASSWORD, host="h",
                 database_name="d")  # fmt: skip
    config_text = repr(dict(app.config))
    assert "%40" not in config_text and AWKWARD_PASSWORD not in config_text
    assert "postgresql+psycopg2://u:***@h/d" in caplog.text


def test_engine_options_bound_connections_and_timeouts(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["SQL_CONNECT_TIMEOUT_SECONDS"] = 2
    setup_sql_db(app, DBType.MYSQL, username="root", host="h", database_name="d", echo=False)
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_pre_ping"] is True and options["pool_recycle"] == 1800
    assert options["connect_args"] == {
        "connect_timeout": 2, "read_timeout": 15, "write_timeout": 15,
    }  # fmt: skip
    assert options["echo"] is False
