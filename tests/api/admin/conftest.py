"""Fixtures of the admin pages: an app on PostgreSQL and Redis with an administrator."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.accounts import make_user
from tests.support.admin import admin_login


@pytest.fixture
def admin_app(make_accounts_app: Callable[..., Flask]) -> Flask:
    """The accounts app with the administrator root and the plain user ada (role staff)."""
    app = make_accounts_app()
    make_user(app, "root", roles=("admin",))
    make_user(app, "ada", roles=("staff",))
    return app


@pytest.fixture
def admin(admin_app: Flask) -> FlaskClient:
    """A browser-like client logged in to the admin pages as root."""
    client = admin_app.test_client()
    assert admin_login(client, "root").status_code == 302
    return client
