"""Logging in to the admin pages: who may, the session it starts, how it ends, rate limits."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth import families, users
from database.sql.identity import RefreshFamily
from tests.support.accounts import OTHER_PASSWORD, PASSWORD, make_user
from tests.support.admin import admin_login, csrf_token, submit, text


def session_cookie(client: FlaskClient) -> str:
    """The value of the client's session cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_an_administrator_logs_in_with_a_new_session_id(admin_app: Flask) -> None:
    client = admin_app.test_client()
    csrf_token(client)  # the login page starts an anonymous session
    before = session_cookie(client)
    response = admin_login(client, "root")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert session_cookie(client) != before  # no session fixation
    page = client.get("/admin/users")
    assert page.status_code == 200 and "Logged in as root." in text(page)
    # The old session id is gone from the store: it gives an anonymous session.
    thief = admin_app.test_client()
    thief.set_cookie("session", before)
    assert thief.get("/admin/users").status_code == 302
    # The login shows among root's logins, as "this admin session".
    with admin_app.app_context():
        root = users.find_user("root")
        (login,) = families.user_logins(root.id)
        assert families.login_state(login) == families.ACTIVE
    logins = client.get(f"/admin/users/{root.id}/logins")
    assert "(this admin session)" in text(logins)


@pytest.mark.parametrize(
    ("username", "password"),
    [("root", OTHER_PASSWORD), ("nobody", PASSWORD), ("", ""), ("root", "x" * 5000)],
)
def test_wrong_credentials_are_a_form_error(admin_app: Flask, username: str, password: str) -> None:
    client = admin_app.test_client()
    response = admin_login(client, username, password)
    assert response.status_code == 422
    assert "There is a problem" in text(response)
    assert client.get("/admin/users").status_code == 302


def test_a_user_without_the_admin_role_gets_a_403_page(admin_app: Flask) -> None:
    client = admin_app.test_client()
    response = admin_login(client, "ada")
    assert response.status_code == 403 and response.mimetype == "text/html"
    assert "ada has no admin role" in text(response)
    assert client.get("/admin/users").status_code == 302  # no session was started
    with admin_app.app_context():
        assert families.user_logins(users.find_user("ada").id) == []


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/admin/users/new", "/admin/users/new"),
        ("/admin/access-log?status=4xx", "/admin/access-log?status=4xx"),
        ("//evil.example/admin/", "/admin/users"),
        ("https://evil.example/admin/", "/admin/users"),
        ("/api/users", "/admin/users"),
        ("/\\evil.example", "/admin/users"),
    ],
)
def test_login_returns_to_the_page_asked_for_and_only_to_admin_pages(
    admin_app: Flask, target: str, landing: str
) -> None:
    client = admin_app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/admin/login",
        data={"username": "root", "password": PASSWORD, "next": target, "csrf_token": token},
    )
    assert response.headers["Location"] == landing


def test_the_login_page_sends_an_administrator_on(admin: FlaskClient) -> None:
    response = admin.get("/admin/login?next=/admin/roles")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/roles"


def test_logout_ends_the_login(admin_app: Flask, admin: FlaskClient) -> None:
    cookie = session_cookie(admin)
    response = submit(admin, "/admin/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert "You are logged out." in text(admin.get("/admin/login"))
    assert admin.get("/admin/users").status_code == 302
    with admin_app.app_context():
        (login,) = families.user_logins(users.find_user("root").id)
        assert login.revoked_reason == families.LOGOUT
    replay = admin_app.test_client()
    replay.set_cookie("session", cookie)
    assert replay.get("/admin/users").status_code == 302


@pytest.mark.parametrize(
    "change",
    [
        lambda root: users.set_password(root, OTHER_PASSWORD),
        lambda root: users.set_roles(root, []),
        lambda root: users.deactivate_user(root),
        lambda root: families.revoke_user_families(root.id, families.BY_ADMINISTRATOR),
        lambda root: users.delete_user(root),
    ],
    ids=["password", "roles", "deactivated", "revoked", "deleted"],
)
def test_changes_to_the_administrator_end_their_session(
    admin_app: Flask, admin: FlaskClient, change: Callable[[object], None]
) -> None:
    make_user(admin_app, "bea", roles=("admin",))  # root is not the last administrator
    assert admin.get("/admin/users").status_code == 200
    with admin_app.app_context():
        change(users.find_user("root"))
    response = admin.get("/admin/users")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")


def test_a_live_login_without_the_admin_role_is_a_403(admin_app: Flask, admin: FlaskClient) -> None:
    # Defence in depth: a role change ends the logins anyway; this admin's role vanishes
    # without that (a direct database change).
    from database.sql import db

    with admin_app.app_context():
        root = users.find_user("root")
        root.roles = []
        db.session.commit()
    response = admin.get("/admin/users")
    assert response.status_code == 403 and "no longer has the admin role" in text(response)


def test_admin_login_is_rate_limited_like_the_api_login(
    make_accounts_app: Callable[..., Flask], ratelimit_prefix: str
) -> None:
    app = make_accounts_app(
        RATELIMIT_ENABLED="1",
        RATELIMIT_KEY_PREFIX=ratelimit_prefix,
        RATELIMIT_LOGIN_USERNAME="2/minute",
        RATELIMIT_LOGIN_IP="100/minute",
    )
    make_user(app, "root", roles=("admin",))
    client = app.test_client()
    for _ in range(2):
        assert admin_login(client, "root", OTHER_PASSWORD).status_code == 422
    limited = admin_login(client, "root")
    assert limited.status_code == 429 and limited.mimetype == "text/html"
    assert int(limited.headers["Retry-After"]) > 0
    assert "Too many requests" in text(limited)
    # The same counter as the API's: the API login of root is refused too.
    api = client.post("/api/auth/login", json={"username": "root", "password": PASSWORD})
    assert api.status_code == 429
    # Showing the login page is not an attempt.
    assert client.get("/admin/login").status_code == 200


def test_admin_login_counts_per_client_ip(
    make_accounts_app: Callable[..., Flask], ratelimit_prefix: str
) -> None:
    app = make_accounts_app(
        RATELIMIT_ENABLED="1",
        RATELIMIT_KEY_PREFIX=ratelimit_prefix,
        RATELIMIT_LOGIN_IP="2/minute",
    )
    client = app.test_client()
    for name in ("a1", "a2"):
        assert admin_login(client, name).status_code == 422
    assert admin_login(client, "a3").status_code == 429


def test_setting_ones_own_password_keeps_this_session(admin_app: Flask, admin: FlaskClient) -> None:
    with admin_app.app_context():
        root_id = users.find_user("root").id
    page = f"/admin/users/{root_id}"
    data = {"password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}
    response = submit(admin, f"{page}/password", data, page=page)
    assert response.status_code == 302
    assert admin.get(page).status_code == 200  # still logged in
    with admin_app.app_context():
        states = {f.revoked_at is None for f in RefreshFamily.of_user(root_id, 10)}
    assert states == {True}
