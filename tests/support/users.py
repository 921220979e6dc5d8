"""An administrator for tests that need one: created through the services, logged in over HTTP."""

from __future__ import annotations

import uuid

from flask import Flask

from tests.support.accounts import bearer, login, make_user


def admin_headers(app: Flask) -> dict[str, str]:
    """``Authorization`` for a new administrator of ``app`` (its tables must exist)."""
    username = f"admin-{uuid.uuid4().hex[:8]}"
    make_user(app, username, roles=("admin",))
    return bearer(login(app.test_client(), username))
