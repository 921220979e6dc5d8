"""A DATABASE_URL naming a database that does not exist: development creates it, production
says what to run; on PostgreSQL and MariaDB."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL
from sqlalchemy_utils import database_exists

from database.sql import db
from database.sql.dbtype import DBType
from tests.support.sql import force_drop, new_database_url, plain

HTTPS = "https://localhost"  # production cookies are Secure


@pytest.fixture(params=[DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def missing_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[URL]:
    """A URL whose database test_<hex> does not exist (removed afterwards if created)."""
    url = new_database_url(request.param, str(tmp_path))
    yield url
    force_drop(url)


def dispose(app: Flask) -> None:
    """Close the app's pooled connections (so the database can be dropped)."""
    with app.app_context():
        db.engine.dispose()


def test_development_creates_the_database_on_the_first_request(
    make_app: Callable[..., Flask],
    missing_url: URL,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    app = make_app(APP_ENV="development", SQL_CREATE_TABLES=True, DATABASE_URL=plain(missing_url))
    client = app.test_client()
    response = client.get("/api/items", headers=auth_headers(client))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["total"] == 0
    dispose(app)
    assert database_exists(missing_url)
    engine = create_engine(missing_url)
    assert {"test", "items"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_production_says_what_to_run(
    make_app: Callable[..., Flask],
    missing_url: URL,
    auth_headers: Callable[..., dict[str, str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A password in the URL must not reach the log (PostgreSQL trusts loopback, so it is
    # accepted; the MariaDB root account here has none).
    password = secrets.token_hex(8)
    trusting = missing_url.get_backend_name() == "postgresql"
    url = missing_url.set(password=password) if trusting else missing_url
    app = make_app(APP_ENV="production", DATABASE_URL=plain(url))
    client = app.test_client()
    assert client.get("/running").status_code == 200
    with caplog.at_level(logging.ERROR, logger="database.sql.extension"):
        response = client.get("/api/items", headers=auth_headers(client), base_url=HTTPS)
    body = response.get_json()
    assert response.status_code == 503, body
    assert "does not exist" in body["message"] and "server log" in body["message"]
    assert str(missing_url.database) not in body["message"]  # names stay in the log
    logged = caplog.text
    assert f"The database '{missing_url.database}' does not exist" in logged
    assert "CREATE DATABASE" in logged and "flask db upgrade" in logged
    assert password not in logged
    # Nothing was created behind the operator's back.
    dispose(app)
    assert not database_exists(missing_url)


def test_an_unreachable_server_is_still_an_outage(
    make_app: Callable[..., Flask], unused_port_url: str
) -> None:
    app = make_app(APP_ENV="production", DATABASE_URL=unused_port_url)
    client = app.test_client()
    response = client.get("/healthcheck")
    assert response.status_code == 503
    sql = next(result for result in response.get_json()["results"] if result["name"] == "sql")
    assert sql["error"] == "OperationalError"  # an outage, not "the database does not exist"


@pytest.fixture
def unused_port_url() -> str:
    """A PostgreSQL URL on a loopback port where nothing listens."""
    from tests.support.services import free_port

    return f"postgresql://postgres@127.0.0.1:{free_port()}/app"
