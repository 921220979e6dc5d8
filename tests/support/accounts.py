"""Accounts in tests: users made through the services, logins over HTTP, clean tables."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from auth import users
from database.sql import db, db_create_all
from database.sql.identity import ApiKey, RefreshFamily, Role, User

# Passes the policy (long, not common, not the username).
PASSWORD = "amber-kettle-violin-42"
OTHER_PASSWORD = "copper-lantern-meadow-17"


def prepare_tables(app: Flask) -> None:
    """Create the tables if needed and empty the accounts' ones (this test's database only)."""
    with app.app_context():
        db_create_all()
        for model in (ApiKey, RefreshFamily):
            db.session.query(model).delete()
        for user in db.session.scalars(db.select(User)):
            db.session.delete(user)  # also its user_roles rows
        db.session.query(Role).delete()
        db.session.commit()


def make_user(
    app: Flask, username: str, roles: tuple[str, ...] = (), password: str = PASSWORD
) -> str:
    """Create the roles (when missing) and the user; return the user's id."""
    with app.app_context():
        for role in roles:
            if Role.by_name(role) is None:
                users.create_role(role, scopes=[f"{role}:read"])
        return users.create_user(username, password, roles=roles).id


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in (asserting 200) and return the token response."""
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    tokens: dict[str, str] = response.get_json()
    return tokens


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    """The Authorization header for a token response's access token."""
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def close_caches(app: Flask) -> None:
    """Drop the app's Redis tracking connections (tests build many apps)."""
    for name in ("auth_families", "session_cache"):
        cache = app.extensions.get(name)
        if cache is not None:
            cache.close()
    with app.app_context():
        db.engine.dispose()
