"""requires_auth over HTTP: header faults, token faults, session binding, logout, pass-through."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient

from auth.auth import create_enc_token, current_claims, decrypt, requires_auth
from auth.errors import AuthError
from auth.principal import current_principal
from database.errors import NotFoundError
from tests.conftest import get_token


def restricted(client: FlaskClient, token: str | None = None, header: str | None = None):
    """GET /api/restricted with ``Bearer token`` or a raw Authorization header."""
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.get("/api/restricted", headers=headers)


def assert_401(response, code: str) -> None:
    body = response.get_json()
    assert response.status_code == 401
    assert body["error"] == 401
    assert body["success"] is False
    assert body["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_then_restricted(client: FlaskClient) -> None:
    response = client.get("/api/public")
    body = response.get_json()
    assert body["message"] == "this is a public url."
    assert body["token"].count(".") == 4
    assert response.headers["Cache-Control"] == "no-store"
    ok = restricted(client, body["token"])
    assert ok.status_code == 200
    assert ok.get_json() == {"message": "this is a restricted url."}


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "authorization_header_missing"),
        ("Basic dXNlcjpwYXNz", "invalid_header"),
        ("Token abc", "invalid_header"),
        ("Bearer", "token_missing"),
        ("Bearer    ", "token_missing"),
        ("Bearer garbage", "invalid_token"),
        ("Bearer a.b.c.d.e", "invalid_token"),
    ],
)
def test_header_faults_have_distinct_codes(
    client: FlaskClient, header: str | None, code: str
) -> None:
    get_token(client)  # the session exists; only the header is wrong
    assert_401(restricted(client, header=header), code)


def test_missing_header_challenge_has_no_error_attribute(client: FlaskClient) -> None:
    response = restricted(client)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    bad = restricted(client, "garbage")
    assert bad.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'


@pytest.mark.parametrize("segment", range(5))
def test_tampered_token_is_refused(client: FlaskClient, segment: int) -> None:
    parts = get_token(client).split(".")
    middle = len(parts[segment]) // 2
    parts[segment] = (
        parts[segment][:middle]
        + ("A" if parts[segment][middle] != "A" else "B")
        + parts[segment][middle + 1 :]
    )
    assert_401(restricted(client, ".".join(parts)), "invalid_token")


@pytest.mark.parametrize(
    ("shift", "code"), [(900 + 11, "token_expired"), (-60, "token_not_yet_valid")]
)
def test_token_time_window(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, shift: int, code: str
) -> None:
    token = get_token(client)
    codec = app.extensions["auth"].codec
    real_clock = codec.clock
    monkeypatch.setattr(codec, "clock", lambda: real_clock() + shift)
    assert_401(restricted(client, token), code)


def test_token_without_its_session_is_refused(app: Flask, client: FlaskClient) -> None:
    token = get_token(client)
    stranger = app.test_client()  # no cookie at all
    assert_401(restricted(stranger, token), "session_invalid")


def test_token_with_another_clients_session_is_refused(app: Flask, client: FlaskClient) -> None:
    token = get_token(client)
    other = app.test_client()
    get_token(other)  # other has a live session of its own
    assert_401(restricted(other, token), "session_invalid")


def test_logout_revokes_every_token_of_the_session(client: FlaskClient) -> None:
    first, second = get_token(client), get_token(client)
    assert restricted(client, first).status_code == 200
    response = client.delete("/api/session")
    assert response.status_code == 200
    assert "session=;" in response.headers["Set-Cookie"]
    assert_401(restricted(client, first), "session_invalid")
    assert_401(restricted(client, second), "session_invalid")


def test_stolen_cookie_is_useless_after_logout(app: Flask, client: FlaskClient) -> None:
    token = get_token(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    client.delete("/api/session")
    thief = app.test_client()
    thief.set_cookie("session", cookie.value)
    assert_401(restricted(thief, token), "session_invalid")


def test_reissued_tokens_share_the_session_and_both_work(client: FlaskClient) -> None:
    first, second = get_token(client), get_token(client)
    assert first != second
    assert restricted(client, first).status_code == 200
    assert restricted(client, second).status_code == 200


def test_session_holds_only_the_uid(app: Flask, client: FlaskClient) -> None:
    get_token(client)
    with client.session_transaction() as stored:
        assert set(stored.keys()) - {"_permanent"} == {"uid"}
    cookie = client.get_cookie("session")
    assert cookie is not None and len(cookie.value) < 64  # an opaque id, no data


def test_decrypt_returns_uid(app: Flask, client: FlaskClient) -> None:
    token = get_token(client)
    with client.session_transaction() as stored:
        uid = stored["uid"]
    with app.app_context():
        assert decrypt(token) == uid
        with pytest.raises(AuthError):
            decrypt(token[:-2])


@pytest.fixture
def app_with_views(make_app: Callable[..., Flask]) -> Flask:
    """The app plus test-only views that show what requires_auth passes through."""
    app = make_app()
    seen = app.config["SEEN_PRINCIPALS"] = []

    @app.get("/t/items/<int:item_id>/<name>")
    @requires_auth()
    def item(item_id: int, name: str):
        claims = current_claims()
        assert claims is not None
        return jsonify(item_id=item_id, name=name, uid=claims.uid)

    @app.get("/t/boom")
    @requires_auth()
    def boom():
        raise RuntimeError("secret detail /etc/passwd")

    @app.get("/t/missing")
    @requires_auth()
    def missing():
        raise NotFoundError("No item has id 7.")

    @app.get("/t/admin")
    @requires_auth("admin")
    def admin():
        return jsonify(ok=True)

    @app.get("/t/principal")
    @requires_auth()
    def principal():
        found = current_principal()
        assert found is not None
        seen.append(found)
        try:
            found.claims["scopes"] = ["admin"]  # type: ignore[index]
        except TypeError:
            return jsonify(read_only=True, scopes=list(found.claims["scopes"]))
        return jsonify(read_only=False)

    @app.get("/t/admin-token")
    def admin_token():
        return jsonify(token=create_enc_token(permissions=["admin"]))

    return app


def test_view_arguments_pass_through(app_with_views: Flask) -> None:
    client = app_with_views.test_client()
    token = get_token(client)
    response = client.get("/t/items/42/bolt", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["item_id"] == 42 and body["name"] == "bolt" and len(body["uid"]) == 32


def test_view_errors_are_not_turned_into_401(app_with_views: Flask) -> None:
    client = app_with_views.test_client()
    headers = {"Authorization": f"Bearer {get_token(client)}"}
    crash = client.get("/t/boom", headers=headers)
    assert crash.status_code == 500
    assert "secret detail" not in crash.get_data(as_text=True)
    missing = client.get("/t/missing", headers=headers)
    assert missing.status_code == 404
    assert missing.get_json()["message"] == "No item has id 7."


def test_permission_is_checked(app_with_views: Flask) -> None:
    client = app_with_views.test_client()
    plain = {"Authorization": f"Bearer {get_token(client)}"}
    denied = client.get("/t/admin", headers=plain)
    assert denied.status_code == 403
    assert denied.get_json()["code"] == "permission_denied"
    admin = {"Authorization": f"Bearer {client.get('/t/admin-token').get_json()['token']}"}
    assert client.get("/t/admin", headers=admin).status_code == 200


def test_a_token_makes_one_read_only_principal_per_process(app_with_views: Flask) -> None:
    # Built once per token and shared by its requests, so no request can change it for the next.
    client = app_with_views.test_client()
    headers = {"Authorization": f"Bearer {get_token(client)}"}
    answers = [client.get("/t/principal", headers=headers).get_json() for _ in range(2)]
    assert answers == [{"read_only": True, "scopes": []}] * 2
    other = app_with_views.test_client()
    other_headers = {"Authorization": f"Bearer {get_token(other)}"}
    assert other.get("/t/principal", headers=other_headers).status_code == 200
    first, again, third = app_with_views.config["SEEN_PRINCIPALS"]
    assert first is again
    assert third is not first and third.subject != first.subject


def test_every_principal_has_read_only_claims() -> None:
    # API keys' Principals are cached and shared too, like the tokens' ones.
    from auth.principal import API_KEY, Principal

    principal = Principal(kind=API_KEY, subject="key-1", claims={"scopes": ["a"], "k": {"x": 1}})
    with pytest.raises(TypeError):
        principal.claims["scopes"] = ["admin"]  # type: ignore[index]
    with pytest.raises(TypeError):
        principal.claims["k"]["x"] = 2  # type: ignore[index]
    assert principal.claims["scopes"] == ("a",)
