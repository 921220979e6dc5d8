"""/api/auth on PostgreSQL and Redis: login, refresh rotation and reuse, logout, me, password."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth import users
from auth.errors import INVALID_CREDENTIALS
from database.sql import db
from database.sql.identity import RefreshFamily
from database.sql.types import aware_utc_now
from tests.conftest import get_token
from tests.support.accounts import OTHER_PASSWORD, PASSWORD, bearer, login, make_user


@pytest.fixture
def client(accounts_app: Flask) -> FlaskClient:
    """A client of the accounts app, with the user ada (no role) created."""
    make_user(accounts_app, "ada")
    return accounts_app.test_client()


def assert_error(response, status: int, code: str | None = None) -> dict[str, object]:
    """The standard error body with that status (and code)."""
    body = response.get_json()
    assert response.status_code == status, body
    assert body["error"] == status and body["success"] is False and body["message"]
    if code is not None:
        assert body["code"] == code
    return body


def me(client: FlaskClient, tokens: dict[str, str]):
    """GET /api/auth/me with the access token."""
    return client.get("/api/auth/me", headers=bearer(tokens))


def refresh(client: FlaskClient, refresh_token: str):
    """POST /api/auth/refresh."""
    return client.post("/api/auth/refresh", json={"refresh_token": refresh_token})


def test_login_returns_tokens_that_open_protected_routes(client: FlaskClient) -> None:
    response = client.post("/api/auth/login", json={"username": " ADA ", "password": PASSWORD})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.get_json()
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    assert tokens["access_token"].count(".") == 4  # a JWE, like session tokens
    assert "Set-Cookie" not in response.headers  # access tokens are not bound to a cookie
    body = me(client, tokens).get_json()
    assert set(body) == {"id", "username", "email", "roles", "scopes"}
    assert body["username"] == "ada" and body["roles"] == [] and body["email"] is None
    restricted = client.get("/api/restricted", headers=bearer(tokens))
    assert restricted.status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"username": "ada"}, 422),
        ({"username": "ada", "password": "", "extra": 1}, 422),
        ({"username": "ada", "password": "x" * 2000}, 422),
        ("not an object", 422),
    ],
)
def test_bad_login_bodies(client: FlaskClient, body: object, status: int) -> None:
    assert_error(client.post("/api/auth/login", json=body), status)
    assert_error(client.post("/api/auth/login", data="{", content_type="application/json"), 400)


def timed_login(client: FlaskClient, username: str, password: str) -> tuple[float, dict]:
    """One failing login: the CPU time it took (all threads) and its body.

    CPU time, not the wall clock: what matters is the work done (one argon2 verification for
    every case), which other processes on a busy machine do not stretch.
    """
    started = time.process_time()
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    elapsed = time.process_time() - started
    assert response.status_code == 401
    return elapsed, response.get_json()


def test_unknown_inactive_and_wrong_password_look_alike(
    accounts_app: Flask, client: FlaskClient
) -> None:
    make_user(accounts_app, "bea")
    with accounts_app.app_context():
        users.deactivate_user(users.find_user("bea"))
    cases = {
        "wrong password": ("ada", OTHER_PASSWORD),
        "unknown user": ("nobody-here", OTHER_PASSWORD),
        "inactive user": ("bea", PASSWORD),
    }
    medians, bodies = {}, {}
    for case, (username, password) in cases.items():
        runs = [timed_login(client, username, password) for _ in range(5)]
        medians[case] = statistics.median(elapsed for elapsed, _ in runs)
        bodies[case] = {(b["code"], b["message"]) for _, b in runs}
    assert set().union(*bodies.values()) == {
        (INVALID_CREDENTIALS["code"], INVALID_CREDENTIALS["description"])
    }
    # Each verifies one argon2 hash (tens of ms); skipping it for unknown users would be ~15x
    # faster, far outside this band.
    assert max(medians.values()) / min(medians.values()) < 2.0, medians


def test_login_is_rate_limited_per_ip(make_accounts_app: Callable[..., Flask]) -> None:
    app = make_accounts_app(RATELIMIT_ENABLED="1", RATELIMIT_LOGIN_IP="3/minute")
    make_user(app, "ada")
    client = app.test_client()
    for username in ("ada", "x1", "x2"):
        client.post("/api/auth/login", json={"username": username, "password": "wrong-one-1"})
    response = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert_error(response, 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    other_ip = app.test_client()
    other_ip.environ_base["REMOTE_ADDR"] = "203.0.113.7"
    assert login(other_ip, "ada")


def test_login_is_rate_limited_per_username_across_ips(
    make_accounts_app: Callable[..., Flask],
) -> None:
    app = make_accounts_app(RATELIMIT_ENABLED="1", RATELIMIT_LOGIN_USERNAME="2/minute")
    make_user(app, "ada")
    make_user(app, "bea")

    def attempt(ip: str, username: str, password: str = "wrong-one-1"):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = ip
        return client.post("/api/auth/login", json={"username": username, "password": password})

    assert attempt("203.0.113.1", "ada").status_code == 401
    assert attempt("203.0.113.2", "ADA").status_code == 401  # same username, any case
    assert_error(attempt("203.0.113.3", "ada", PASSWORD), 429)
    assert attempt("203.0.113.3", "bea", PASSWORD).status_code == 200


def test_password_changes_and_logins_share_the_username_limit(
    make_accounts_app: Callable[..., Flask],
) -> None:
    app = make_accounts_app(RATELIMIT_ENABLED="1", RATELIMIT_LOGIN_USERNAME="3/minute")
    make_user(app, "ada")
    client = app.test_client()
    headers = bearer(login(client, "ada"))  # one check
    wrong = {"current_password": "wrong-one-1", "new_password": OTHER_PASSWORD}
    for _ in range(2):  # two more checks, on another endpoint
        assert client.put("/api/auth/password", json=wrong, headers=headers).status_code == 422
    response = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert_error(response, 429)


def test_refresh_rotates_and_the_new_tokens_work(client: FlaskClient) -> None:
    first = login(client, "ada")
    second = refresh(client, first["refresh_token"]).get_json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert me(client, second).status_code == 200
    assert me(client, first).status_code == 200  # same login: its access token lives on
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200 and third.headers["Cache-Control"] == "no-store"


def test_reuse_revokes_the_whole_family(make_accounts_app: Callable[..., Flask]) -> None:
    app = make_accounts_app(REFRESH_TOKEN_REUSE_GRACE_SECONDS="0")
    make_user(app, "ada")
    client = app.test_client()
    first = login(client, "ada")
    second = refresh(client, first["refresh_token"]).get_json()
    other_login = login(client, "ada")
    assert_error(refresh(client, first["refresh_token"]), 401, "refresh_token_reused")
    assert_error(me(client, second), 401, "token_revoked")
    assert_error(me(client, first), 401, "token_revoked")
    assert_error(refresh(client, second["refresh_token"]), 401, "token_revoked")
    assert me(client, other_login).status_code == 200  # another login is not touched


def test_within_the_grace_window_a_spent_token_is_refused_without_revoking(
    client: FlaskClient,
) -> None:
    first = login(client, "ada")
    second = refresh(client, first["refresh_token"]).get_json()
    assert_error(refresh(client, first["refresh_token"]), 401, "refresh_token_spent")
    assert me(client, second).status_code == 200
    assert refresh(client, second["refresh_token"]).status_code == 200


def test_grace_ends_and_the_spent_token_is_then_reuse(
    accounts_app: Flask, client: FlaskClient
) -> None:
    first = login(client, "ada")
    refresh(client, first["refresh_token"])
    with accounts_app.app_context():
        family = db.session.get(RefreshFamily, first["refresh_token"].split(".")[0])
        family.rotated_at = aware_utc_now() - timedelta(seconds=4)
        db.session.commit()
    assert_error(refresh(client, first["refresh_token"]), 401, "refresh_token_reused")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "00000000-0000-0000-0000-000000000000." + "A" * 43,  # well formed, unknown family
        "x" * 300,
    ],
)
def test_unknown_refresh_tokens(client: FlaskClient, token: str) -> None:
    response = refresh(client, token)
    assert response.status_code in (401, 422)
    if response.status_code == 401:
        assert_error(response, 401, "invalid_refresh_token")


@pytest.mark.parametrize("column", ["expires_at", "absolute_expires_at"])
def test_expired_refresh_token(accounts_app: Flask, client: FlaskClient, column: str) -> None:
    tokens = login(client, "ada")
    with accounts_app.app_context():
        family = db.session.get(RefreshFamily, tokens["refresh_token"].split(".")[0])
        setattr(family, column, aware_utc_now() - timedelta(seconds=1))
        db.session.commit()
    assert_error(refresh(client, tokens["refresh_token"]), 401, "refresh_token_expired")


def test_logout_revokes_the_access_and_refresh_tokens(client: FlaskClient) -> None:
    tokens = login(client, "ada")
    other = login(client, "ada")
    assert me(client, tokens).status_code == 200  # cached as alive now
    response = client.post("/api/auth/logout", headers=bearer(tokens))
    assert response.status_code == 204 and response.data == b""
    assert_error(me(client, tokens), 401, "token_revoked")
    assert_error(client.get("/api/restricted", headers=bearer(tokens)), 401, "token_revoked")
    assert_error(refresh(client, tokens["refresh_token"]), 401, "token_revoked")
    assert me(client, other).status_code == 200


def test_token_kinds_cannot_stand_in_for_one_another(client: FlaskClient) -> None:
    tokens = login(client, "ada")
    as_access = {"Authorization": f"Bearer {tokens['refresh_token']}"}
    assert_error(client.get("/api/auth/me", headers=as_access), 401, "invalid_token")
    assert_error(refresh(client, tokens["access_token"]), 422)
    session_token = get_token(client)
    assert_error(refresh(client, session_token), 422)
    session_headers = {"Authorization": f"Bearer {session_token}"}
    assert_error(client.get("/api/auth/me", headers=session_headers), 401)
    assert_error(client.post("/api/auth/logout", headers=session_headers), 401)
    assert_error(client.post("/api/auth/logout"), 401, "authorization_header_missing")


def test_token_of_a_deleted_user_is_refused(accounts_app: Flask, client: FlaskClient) -> None:
    tokens = login(client, "ada")
    assert me(client, tokens).status_code == 200
    with accounts_app.app_context():
        users.delete_user(users.find_user("ada"))
    assert_error(me(client, tokens), 401, "token_revoked")
    assert_error(refresh(client, tokens["refresh_token"]), 401, "invalid_refresh_token")


def change_password(client: FlaskClient, tokens: dict[str, str], current: str, new: str):
    """PUT /api/auth/password."""
    return client.put(
        "/api/auth/password",
        json={"current_password": current, "new_password": new},
        headers=bearer(tokens),
    )


def test_own_password_change_ends_the_other_logins(client: FlaskClient) -> None:
    here, elsewhere = login(client, "ada"), login(client, "ada")
    wrong = assert_error(change_password(client, here, "not-the-password", OTHER_PASSWORD), 422)
    assert wrong["errors"] == [
        {"field": "current_password", "message": "The current password is wrong."}
    ]
    weak = assert_error(change_password(client, here, PASSWORD, "password123"), 422)
    assert weak["errors"][0]["field"] == "new_password" and "too common" in str(weak["message"])
    assert me(client, elsewhere).status_code == 200  # refusals changed nothing
    assert change_password(client, here, PASSWORD, OTHER_PASSWORD).status_code == 204
    assert me(client, here).status_code == 200
    assert_error(me(client, elsewhere), 401, "token_revoked")
    assert_error(
        client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD}), 401
    )
    assert login(client, "ada", OTHER_PASSWORD)


def test_the_access_log_names_the_user(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = login(client, "ada")
    with caplog.at_level("INFO", logger="api.access"):
        me(client, tokens)
    fields = [r.args for r in caplog.records if r.name == "api.access"][-1]
    assert isinstance(fields, dict) and fields["user"] == "ada"
    assert "user=ada" in caplog.records[-1].getMessage()
    assert tokens["access_token"][:40] not in caplog.text and PASSWORD not in caplog.text
