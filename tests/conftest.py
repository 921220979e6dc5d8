"""Shared fixtures: ``make_app``, ``app``, ``client``, ``auth_headers``."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from tests.support.operations import access_log_pg_url, ratelimit_prefix, redis_url  # noqa: F401

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
