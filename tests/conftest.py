"""Shared fixtures: ``make_app``, ``app``, ``client``, ``auth_headers``; accounts on
PostgreSQL and Redis: ``accounts_database``, ``make_accounts_app``, ``accounts_app``."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from database.sql.dbtype import DBType
from tests.support.accounts import close_caches, prepare_tables
from tests.support.operations import (  # noqa: F401 (fixtures)
    access_log_pg_url,
    delete_redis_keys,
    ratelimit_prefix,
    redis_unique,
    redis_url,
    redis_url_or_skip,
)
from tests.support.sql import created_database, plain

# Development tests share this readable key; production refuses it (a placeholder), so
# production tests get a real random key, new in every run.
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
PRODUCTION_SECRET_KEY = secrets.token_urlsafe(48)


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Flask]:
    """Build an app with test settings; keyword arguments override them."""

    def build(**overrides: object) -> Flask:
        config: dict[str, object] = {
            "TESTING": True,
            "SECRET_KEY": PRODUCTION_SECRET_KEY
            if overrides.get("APP_ENV") == "production"
            else TEST_SECRET_KEY,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SESSION_TYPE": "filesystem",
        }
        config.update(overrides)
        return create_app(config)

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with default test settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client that keeps cookies, like a browser or a requests.Session."""
    return app.test_client()


def get_token(client: FlaskClient) -> str:
    """Fetch a token for the client's session."""
    response = client.get("/api/public")
    assert response.status_code == 200, response.get_json()
    token: str = response.get_json()["token"]
    return token


@pytest.fixture
def auth_headers() -> Callable[[FlaskClient], dict[str, str]]:
    """``auth_headers(client)`` -> the Authorization header for a fresh token of that client."""

    def headers(client: FlaskClient) -> dict[str, str]:
        return {"Authorization": f"Bearer {get_token(client)}"}

    return headers


@pytest.fixture(scope="session")
def accounts_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One PostgreSQL database test_<hex> for the accounts tests (dropped at the end)."""
    with created_database(DBType.POSTGRESQL, str(tmp_path_factory.mktemp("accounts"))) as url:
        yield plain(url)


@pytest.fixture
def make_accounts_app(
    make_app: Callable[..., Flask], accounts_database: str
) -> Iterator[Callable[..., Flask]]:
    """Build apps on the accounts database and Redis (rate limits off unless overridden);
    the accounts' tables start empty in each test."""
    built: list[Flask] = []
    prefix = f"test-{uuid.uuid4().hex}"

    def build(**overrides: object) -> Flask:
        settings: dict[str, object] = {
            "DATABASE_URL": accounts_database,
            "REDIS_URL": redis_url_or_skip(),
            "RATELIMIT_ENABLED": "0",
            "RATELIMIT_KEY_PREFIX": prefix,
        }
        settings.update(overrides)
        app = make_app(**settings)
        if not built:
            prepare_tables(app)
        built.append(app)
        return app

    yield build
    for app in built:
        close_caches(app)
    delete_redis_keys(redis_url_or_skip(), prefix)


@pytest.fixture
def accounts_app(make_accounts_app: Callable[..., Flask]) -> Flask:
    """An app on the accounts database and Redis, its accounts' tables empty."""
    return make_accounts_app()
