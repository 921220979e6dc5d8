"""The admin pages' frame: login required, CSRF on every form, GETs change nothing, headers,
and errors as HTML pages."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth import users
from database.sql import db
from database.sql.identity import ApiKey, RefreshFamily, Role, User
from tests.support.accounts import PASSWORD, make_user
from tests.support.admin import csrf_token, submit, text

PAGES = [
    "/admin/",
    "/admin/users",
    "/admin/users?q=ad&page=1",
    "/admin/users/new",
    "/admin/users/{ada}",
    "/admin/users/{ada}/delete",
    "/admin/users/{ada}/logins",
    "/admin/roles",
    "/admin/api-keys",
    "/admin/api-keys?owner=ada&include_revoked=y",
    "/admin/access-log",
]
ACTIONS = [
    ("/admin/users/new", {"username": "bob", "password": PASSWORD, "confirm": PASSWORD}),
    ("/admin/users/{ada}", {"username": "ada2"}),
    ("/admin/users/{ada}/roles", {"roles": "admin"}),
    ("/admin/users/{ada}/password", {"password": PASSWORD + "x", "confirm": PASSWORD + "x"}),
    ("/admin/users/{ada}/deactivate", {}),
    ("/admin/users/{ada}/activate", {}),
    ("/admin/users/{ada}/delete", {}),
    ("/admin/users/{ada}/logins/revoke-all", {}),
    ("/admin/users/{ada}/logins/{login}/revoke", {}),
    ("/admin/roles", {"name": "auditor"}),
    ("/admin/api-keys", {"name": "k", "owner_kind": "service", "service": "ci"}),
    ("/admin/api-keys/{key}/revoke", {}),
    ("/admin/logout", {}),
]
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def ids(app: Flask) -> dict[str, str]:
    """Values for the URL placeholders: ada's id, one of her logins, a service key."""
    client = app.test_client()
    response = client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200
    with app.app_context():
        ada = users.find_user("ada")
        login = db.session.scalars(db.select(RefreshFamily.id)).first()
        from auth.apikeys import api_keys

        key = api_keys().create("probe", [], service="probe").record.id
        return {"ada": ada.id, "login": str(login), "key": key}


def snapshot(app: Flask) -> tuple[object, ...]:
    """Everything the pages could change, to compare before and after."""
    with app.app_context():
        db.session.expire_all()
        return (
            sorted(
                (u.username, u.email, u.is_active, u.password_hash)
                for u in db.session.scalars(db.select(User))
            ),
            sorted((u.username, sorted(u.role_names)) for u in db.session.scalars(db.select(User))),
            sorted(r.name for r in db.session.scalars(db.select(Role))),
            sorted((f.id, f.revoked_at) for f in db.session.scalars(db.select(RefreshFamily))),
            sorted((k.id, k.revoked_at) for k in db.session.scalars(db.select(ApiKey))),
        )


@pytest.mark.parametrize("page", PAGES)
def test_every_page_needs_an_administrator(admin_app: Flask, page: str) -> None:
    path = page.format(**ids(admin_app))
    response = admin_app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=/admin/")


def test_actions_without_a_login_change_nothing(admin_app: Flask) -> None:
    values = ids(admin_app)
    client = admin_app.test_client()
    before = snapshot(admin_app)
    for path, data in ACTIONS:
        response = submit(client, path.format(**values), data, page="/admin/login")
        assert response.status_code == 302, path
        assert response.headers["Location"] == "/admin/login", path
    assert snapshot(admin_app) == before
    assert "Your admin session has ended" in text(client.get("/admin/login"))


@pytest.mark.parametrize(("path", "data"), ACTIONS)
def test_every_form_is_refused_without_its_csrf_token(
    admin_app: Flask, admin: FlaskClient, path: str, data: dict[str, object]
) -> None:
    path = path.format(**ids(admin_app))
    csrf_token(admin, "/admin/users")  # the session holds a token, as after any page
    before = snapshot(admin_app)
    refused = admin.post(path, data=data)
    assert refused.status_code == 400
    assert refused.mimetype == "text/html"
    assert "The CSRF token is missing" in text(refused)
    forged = admin.post(path, data={**data, "csrf_token": "not-a-token"})
    assert forged.status_code == 400 and "The CSRF token is invalid" in text(forged)
    assert snapshot(admin_app) == before


def test_a_token_from_another_session_is_refused(admin_app: Flask, admin: FlaskClient) -> None:
    stranger = admin_app.test_client()
    their_token = csrf_token(stranger)  # an attacker's own valid token
    response = admin.post("/admin/roles", data={"name": "auditor", "csrf_token": their_token})
    assert response.status_code == 400
    with admin_app.app_context():
        assert Role.by_name("auditor") is None


def test_get_requests_change_nothing(admin_app: Flask, admin: FlaskClient) -> None:
    values = ids(admin_app)
    before = snapshot(admin_app)
    for page in PAGES:
        response = admin.get(page.format(**values))
        assert response.status_code in (200, 302), page
    # Even a GET of an action's URL does nothing: it is not an allowed method there.
    for path, _ in ACTIONS:
        assert admin.get(path.format(**values)).status_code in (200, 405), path
    assert snapshot(admin_app) == before


def test_pages_have_their_own_strict_headers(admin: FlaskClient) -> None:
    page = admin.get("/admin/users")
    assert page.headers["Content-Security-Policy"] == POLICY
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"
    html = page.get_data(as_text=True)
    # Nothing inline for the policy to block, and nothing from another site.
    assert "<script>" not in html and " style=" not in html and "<style" not in html
    assert "http://" not in html and "https://" not in html
    for asset in ("admin.css", "admin.js", "favicon.svg"):
        response = admin.get(f"/admin/static/{asset}")
        assert response.status_code == 200, asset
        assert f'/admin/static/{asset}"' in html
    # The API keeps its own policy.
    assert admin.get("/").headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_errors_are_pages(admin: FlaskClient) -> None:
    missing = admin.get("/admin/users/no-such-id")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert "Not found" in text(missing) and "request id" in text(missing)
    wrong_method = admin.delete("/admin/users/new")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["Allow"]
    assert wrong_method.mimetype == "text/html"


def test_https_forms_need_a_same_origin_referrer(make_accounts_app: Callable[..., Flask]) -> None:
    app = make_accounts_app(
        APP_ENV="production", SECRET_KEY=base64.b64encode(bytes(range(48))).decode()
    )
    make_user(app, "root", roles=("admin",))
    client = app.test_client()
    page = client.get("/admin/login", base_url="https://admin.example")
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    token = csrf_token(client, "https://admin.example/admin/login")
    form = {"username": "root", "password": PASSWORD, "csrf_token": token}
    no_referrer = client.post("/admin/login", data=form, base_url="https://admin.example")
    assert no_referrer.status_code == 400 and "referrer" in text(no_referrer)
    other_site = {"Referer": "https://evil.example/"}
    assert (
        client.post(
            "/admin/login", data=form, base_url="https://admin.example", headers=other_site
        ).status_code
        == 400
    )
    same_site = {"Referer": "https://admin.example/admin/login"}
    accepted = client.post(
        "/admin/login", data=form, base_url="https://admin.example", headers=same_site
    )
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/admin/users"
