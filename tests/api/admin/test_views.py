"""Each admin page and action, through the Flask test client, on PostgreSQL and Redis."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient

import api.admin.views
from auth import users
from auth.apikeys import api_keys
from database.sql.access_log import AccessLogStore
from database.sql.identity import ApiKey, User
from tests.support.accounts import OTHER_PASSWORD, PASSWORD, bearer, login, make_user
from tests.support.admin import admin_login, submit, text

KEY = re.compile(r'value="(fja_[a-z0-9]{12}_[A-Za-z0-9]{43})"')


def user(app: Flask, username: str) -> User | None:
    """The user as the database has it now."""
    with app.app_context():
        return User.by_username(username)


def user_id(app: Flask, username: str) -> str:
    """The id of an existing user."""
    found = user(app, username)
    assert found is not None
    return found.id


def field_error(response: object, field: str) -> str:
    """The error message shown next to ``field``."""
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    match = re.search(rf'<p class="error" id="{field}-error">(.*?)</p>', html, re.S)
    assert match is not None, f"no error next to {field}"
    return " ".join(unescape(match.group(1)).split())


def last_admin(change: str) -> str:
    """The refusal of ``change`` to root, the only administrator (as the API words it too)."""
    return (
        f"root is the last active administrator, so {change} would leave no one who can "
        "manage users and roles. Give another active user the admin role first."
    )


# --- users -------------------------------------------------------------------------------


def test_users_list_searches_and_pages(
    admin_app: Flask, admin: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.admin.views, "PER_PAGE", 2)
    make_user(admin_app, "bea")
    page = admin.get("/admin/users")
    assert page.status_code == 200
    assert "3 users" in text(page) and "Page 1 of 2" in text(page)
    assert "ada" in text(page) and "bea" in text(page) and "Next page" in text(page)
    second = admin.get("/admin/users?page=2")
    assert "root" in text(second) and "bea" not in text(second)
    found = admin.get("/admin/users?q=AD")
    assert "1 user matching “AD”" in text(found) and "ada" in text(found)
    assert "No users match this search" in text(admin.get("/admin/users?q=zz%25"))
    assert admin.get("/admin/users?page=0").status_code == 400
    assert admin.get("/admin/users?page=abc").status_code == 400


def test_add_a_user_with_roles(admin_app: Flask, admin: FlaskClient) -> None:
    form = {
        "username": "Bob",
        "email": "bob@example.org",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "roles": ["staff", "admin"],
        "is_active": "y",
    }
    response = submit(admin, "/admin/users/new", form, page="/admin/users/new")
    bob = user(admin_app, "bob")
    assert bob is not None and bob.role_names == {"staff", "admin"} and bob.is_active
    assert response.headers["Location"] == f"/admin/users/{bob.id}"
    assert "Added the user bob." in text(admin.get(response.headers["Location"]))
    # Recorded as made by the administrator (the pages set the request's Principal).
    assert bob.created_by == user_id(admin_app, "root")
    assert login(admin_app.test_client(), "bob")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"username": "ADA"}, "username", "already taken"),
        ({"username": "a b"}, "username", "The username must be"),
        ({"email": "nope"}, "email", "not an email address"),
        ({"password": "password123", "confirm": "password123"}, "password", "common"),
        (
            {"username": "robertson7", "password": "Robertson7", "confirm": "Robertson7"},
            "password",
            "must not be the same as the username",
        ),
        ({"confirm": "something-else-1"}, "confirm", "The passwords differ."),
        ({"roles": ["ghost"]}, "roles", "not a valid choice"),
        ({"username": ""}, "username", "Enter a username."),
    ],
)
def test_add_user_refusals_sit_by_their_field(
    admin_app: Flask, admin: FlaskClient, change: dict, field: str, message: str
) -> None:
    form = {"username": "bob", "password": PASSWORD, "confirm": PASSWORD, **change}
    response = submit(admin, "/admin/users/new", form, page="/admin/users/new")
    assert response.status_code == 422
    assert message in field_error(response, field)
    assert "There is a problem" in text(response)  # and the summary above the form says so
    assert user(admin_app, "bob") is None and user(admin_app, "robertson7") is None


def test_edit_details_and_refusals(admin_app: Flask, admin: FlaskClient) -> None:
    ada = user_id(admin_app, "ada")
    page = f"/admin/users/{ada}"
    tokens = login(admin_app.test_client(), "ada")
    response = submit(admin, page, {"username": "adele", "email": "a@example.org"}, page=page)
    assert response.status_code == 302
    renamed = user(admin_app, "adele")
    assert renamed is not None and renamed.email == "a@example.org"
    # A rename ends the user's logins.
    assert admin_app.test_client().get("/api/auth/me", headers=bearer(tokens)).status_code == 401
    make_user(admin_app, "bea")
    with admin_app.app_context():
        users.update_user(users.find_user("bea"), email="b@example.org")
    taken = submit(admin, page, {"username": "adele", "email": "B@example.org"}, page=page)
    assert taken.status_code == 422 and "already taken" in field_error(taken, "email")
    cleared = submit(admin, page, {"username": "adele", "email": ""}, page=page)
    assert cleared.status_code == 302 and user(admin_app, "adele").email is None  # type: ignore[union-attr]


def test_set_roles_and_keep_the_last_admin_role(admin_app: Flask, admin: FlaskClient) -> None:
    ada = user_id(admin_app, "ada")
    tokens = login(admin_app.test_client(), "ada")
    response = submit(admin, f"/admin/users/{ada}/roles", {"roles": ["admin", "staff"]})
    assert response.status_code == 302
    assert user(admin_app, "ada").role_names == {"admin", "staff"}  # type: ignore[union-attr]
    assert admin_app.test_client().get("/api/auth/me", headers=bearer(tokens)).status_code == 401
    assert submit(admin, f"/admin/users/{ada}/roles", {}).status_code == 302
    assert user(admin_app, "ada").role_names == set()  # type: ignore[union-attr]
    root = user_id(admin_app, "root")
    refused = submit(admin, f"/admin/users/{root}/roles", {"roles": ["staff"]})
    assert refused.status_code == 422
    assert field_error(refused, "roles") == last_admin("taking the admin role from them")
    assert user(admin_app, "root").role_names == {"admin"}  # type: ignore[union-attr]


def test_another_active_admin_lets_root_give_up_the_role(
    admin_app: Flask, admin: FlaskClient
) -> None:
    make_user(admin_app, "bea", roles=("admin",))
    root = user_id(admin_app, "root")
    assert submit(admin, f"/admin/users/{root}/roles", {"roles": ["staff"]}).status_code == 302
    assert user(admin_app, "root").role_names == {"staff"}  # type: ignore[union-attr]
    # The role change ended root's logins, this admin session among them.
    assert admin.get("/admin/users").headers["Location"].startswith("/admin/login")


def test_set_a_password(admin_app: Flask, admin: FlaskClient) -> None:
    ada = user_id(admin_app, "ada")
    page = f"/admin/users/{ada}"
    tokens = login(admin_app.test_client(), "ada")
    weak = submit(admin, f"{page}/password", {"password": "ada", "confirm": "ada"}, page=page)
    assert weak.status_code == 422 and "10" in field_error(weak, "password")
    data = {"password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD}
    assert submit(admin, f"{page}/password", data, page=page).status_code == 302
    assert admin_app.test_client().get("/api/auth/me", headers=bearer(tokens)).status_code == 401
    assert login(admin_app.test_client(), "ada", OTHER_PASSWORD)


def test_deactivate_and_reactivate(admin_app: Flask, admin: FlaskClient) -> None:
    ada = user_id(admin_app, "ada")
    assert submit(admin, f"/admin/users/{ada}/deactivate").status_code == 302
    assert user(admin_app, "ada").is_active is False  # type: ignore[union-attr]
    assert "deactivated" in text(admin.get(f"/admin/users/{ada}"))
    refused = admin_app.test_client().post(
        "/api/auth/login", json={"username": "ada", "password": PASSWORD}
    )
    assert refused.status_code == 401
    assert submit(admin, f"/admin/users/{ada}/activate").status_code == 302
    assert login(admin_app.test_client(), "ada")
    root = user_id(admin_app, "root")
    submit(admin, f"/admin/users/{root}/deactivate")
    assert user(admin_app, "root").is_active is True  # type: ignore[union-attr]
    assert last_admin("deactivating them") in text(admin.get(f"/admin/users/{root}"))


def test_delete_asks_first(admin_app: Flask, admin: FlaskClient) -> None:
    ada = user_id(admin_app, "ada")
    with admin_app.app_context():
        api_keys().create("ada's", [], owner=users.find_user("ada"))
    question = admin.get(f"/admin/users/{ada}/delete")
    assert question.status_code == 200 and "Delete ada?" in text(question)
    assert user(admin_app, "ada") is not None  # asking deletes nothing
    response = submit(admin, f"/admin/users/{ada}/delete")
    assert response.headers["Location"] == "/admin/users"
    assert user(admin_app, "ada") is None
    with admin_app.app_context():
        assert ApiKey.listed(ada, include_revoked=True) == []
    root = user_id(admin_app, "root")
    refused = submit(admin, f"/admin/users/{root}/delete")
    assert refused.headers["Location"] == f"/admin/users/{root}"
    assert user(admin_app, "root") is not None
    assert last_admin("deleting them") in text(admin.get(f"/admin/users/{root}"))


# --- logins ------------------------------------------------------------------------------


def test_logins_listed_and_revoked_one_or_all(admin_app: Flask, admin: FlaskClient) -> None:
    api = admin_app.test_client()
    first, second, third = (login(api, "ada") for _ in range(3))
    ada = user_id(admin_app, "ada")
    page = admin.get(f"/admin/users/{ada}/logins")
    assert page.status_code == 200 and "3 logins" in text(page)
    assert text(page).count("active") == 3
    login_ids = re.findall(r"/logins/([0-9a-f-]{36})/revoke", page.get_data(as_text=True))
    assert len(login_ids) == 3
    oldest = login_ids[-1]  # newest first
    response = submit(admin, f"/admin/users/{ada}/logins/{oldest}/revoke")
    assert response.headers["Location"] == f"/admin/users/{ada}/logins"
    assert api.get("/api/auth/me", headers=bearer(first)).status_code == 401
    assert api.get("/api/auth/me", headers=bearer(second)).status_code == 200
    assert "revoked (revoked by an administrator)" in text(admin.get(f"/admin/users/{ada}/logins"))
    # Another user's login id under ada's URL is a 404, and nothing is revoked.
    root = user_id(admin_app, "root")
    assert submit(admin, f"/admin/users/{root}/logins/{login_ids[0]}/revoke").status_code == 404
    assert api.get("/api/auth/me", headers=bearer(third)).status_code == 200
    assert submit(admin, f"/admin/users/{ada}/logins/revoke-all").status_code == 302
    assert api.get("/api/auth/me", headers=bearer(third)).status_code == 401
    assert "Revoked every login of ada" in text(admin.get(f"/admin/users/{ada}/logins"))


# --- roles -------------------------------------------------------------------------------


def test_roles_listed_and_created(admin_app: Flask, admin: FlaskClient) -> None:
    form = {"name": "auditor", "description": "Reads logs", "scopes": "logs:read  items:read"}
    response = submit(admin, "/admin/roles", form, page="/admin/roles")
    assert response.status_code == 302
    page = admin.get("/admin/roles")
    assert "auditor items:read logs:read Reads logs" in text(page)
    again = submit(admin, "/admin/roles", form, page="/admin/roles")
    assert again.status_code == 422 and "already taken" in field_error(again, "name")
    bad = submit(admin, "/admin/roles", {"name": "Bad Name"}, page="/admin/roles")
    assert bad.status_code == 422 and "A role name is" in field_error(bad, "name")
    scopes = submit(admin, "/admin/roles", {"name": "x", "scopes": 'a"b'}, page="/admin/roles")
    assert scopes.status_code == 422 and "cannot hold" in field_error(scopes, "scopes")


# --- API keys ----------------------------------------------------------------------------


def test_api_key_created_shown_once_and_revoked(admin_app: Flask, admin: FlaskClient) -> None:
    form = {"name": "reports", "owner_kind": "user", "owner": "ada", "scopes": "staff:read"}
    created = submit(admin, "/admin/api-keys", form, page="/admin/api-keys")
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    match = KEY.search(created.get_data(as_text=True))
    assert match is not None
    key = match.group(1)
    assert "shown only this once" in text(created)
    assert 'data-copy="new-key"' in created.get_data(as_text=True)
    api = admin_app.test_client()
    assert api.get("/api/auth/me", headers={"X-Api-Key": key}).status_code in (401, 403)
    # The key works where API keys are accepted, and the list never shows it again.
    principal = api.get(f"/api/principals/{user_id(admin_app, 'ada')}", headers={"X-Api-Key": key})
    assert principal.status_code == 403  # staff:read is not principal:read: but the key is valid
    assert principal.get_json()["code"] == "permission_denied"
    listing = admin.get("/admin/api-keys")
    assert key not in listing.get_data(as_text=True)
    assert "reports" in text(listing) and "ada" in text(listing)
    key_id = key.split("_")[1]
    assert submit(admin, f"/admin/api-keys/{key_id}/revoke").status_code == 302
    refused = api.get(f"/api/principals/{user_id(admin_app, 'ada')}", headers={"X-Api-Key": key})
    assert refused.get_json()["code"] == "api_key_invalid"
    assert "No API keys." in text(admin.get("/admin/api-keys"))
    assert "revoked" in text(admin.get("/admin/api-keys?include_revoked=y"))
    assert submit(admin, "/admin/api-keys/nokey/revoke").status_code == 404


def test_a_service_key_and_the_owner_filter(admin_app: Flask, admin: FlaskClient) -> None:
    form = {"name": "deploy", "owner_kind": "service", "service": "ci", "expires_in_days": "7"}
    assert submit(admin, "/admin/api-keys", form, page="/admin/api-keys").status_code == 201
    with admin_app.app_context():
        (record,) = api_keys().listed()
        assert record.owner_service == "ci"
        lifetime = record.expires_at - datetime.now(UTC)
        assert timedelta(days=6) < lifetime <= timedelta(days=7)
    assert "service ci" in text(admin.get("/admin/api-keys"))
    assert "No API keys." in text(admin.get("/admin/api-keys?owner=ada"))
    unknown = admin.get("/admin/api-keys?owner=nobody")
    assert unknown.status_code == 400 and "no user called" in field_error(unknown, "filter-owner")


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"owner": "nobody"}, "owner", "There is no user called 'nobody'"),
        ({"owner": ""}, "owner", "Enter the username"),
        ({"scopes": "items:write"}, "scopes", "does not hold the scopes items:write"),
        ({"scopes": "bad scope!"}, "scopes", "not valid"),
        ({"expires_in_days": "0"}, "expires_in_days", "between 1 and 3650"),
        ({"expires_in_days": "9999"}, "expires_in_days", "between 1 and 3650"),
        ({"expires_in_days": "400"}, "expires_in_days", "within 365 days"),
        ({"owner_kind": "service"}, "service", "Enter the name of the service"),
        ({"owner_kind": "robot"}, "owner_kind", "Not a valid choice"),
        ({"name": ""}, "name", "Give the key a name"),
    ],
)
def test_api_key_refusals_sit_by_their_field(
    admin_app: Flask, admin: FlaskClient, change: dict, field: str, message: str
) -> None:
    form = {"name": "k", "owner_kind": "user", "owner": "ada", "scopes": "staff:read", **change}
    response = submit(admin, "/admin/api-keys", form, page="/admin/api-keys")
    assert response.status_code == 422
    assert message.lower() in field_error(response, field).lower()
    with admin_app.app_context():
        assert api_keys().listed(include_revoked=True) == []


# --- access log --------------------------------------------------------------------------


def test_access_log_page_says_when_records_are_not_stored(admin: FlaskClient) -> None:
    page = admin.get("/admin/access-log")
    assert page.status_code == 200 and "ACCESS_LOG_DB=1" in text(page)


@pytest.fixture
def logged_app(make_accounts_app: Callable[..., Flask], tmp_path) -> Iterator[tuple[Flask, str]]:
    """The accounts app storing its access log in a SQLite file, with root and ada."""
    url = f"sqlite:///{tmp_path / 'access.db'}"
    app = make_accounts_app(ACCESS_LOG_DB="1", ACCESS_LOG_DB_URL=url)
    make_user(app, "root", roles=("admin",))
    make_user(app, "ada", roles=("staff",))
    yield app, url
    app.extensions["access_log"].close()
    app.extensions["access_log_reader"].close()


def record(minutes_ago: int, status: int, uid: str | None, path: str) -> dict[str, object]:
    """A stored access record."""
    return {
        "time": datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=minutes_ago),
        "method": "GET",
        "route": path,
        "path": path,
        "status": status,
        "duration_ms": 2.5,
        "remote_ip": "192.0.2.1",
        "uid": uid,
        "request_id": f"req-{path.strip('/')}-{status}",
        "user_agent": None,
    }


def test_access_log_filters_by_user_status_and_time(logged_app: tuple[Flask, str]) -> None:
    app, url = logged_app
    ada = user_id(app, "ada")
    store = AccessLogStore(url)
    store.write(
        [
            record(5, 200, ada, "/ada-ok"),
            record(90, 404, ada, "/ada-missing"),
            record(30, 503, None, "/down"),
        ]
    )
    store.close()
    admin = app.test_client()
    admin_login(admin, "root")
    everything = text(admin.get("/admin/access-log"))
    assert "/ada-ok" in everything and "/down" in everything and "ada" in everything
    by_user = text(admin.get("/admin/access-log?user=ada"))
    assert "/ada-ok" in by_user and "/ada-missing" in by_user and "/down" not in by_user
    errors = text(admin.get("/admin/access-log?status=4XX"))
    assert "/ada-missing" in errors and "/ada-ok" not in errors
    exact = text(admin.get("/admin/access-log?status=503"))
    assert "/down" in exact and "1 request," in exact
    since = (datetime.now(UTC) - timedelta(minutes=60)).strftime("%Y-%m-%dT%H:%M")
    recent = text(admin.get(f"/admin/access-log?since={since}"))
    assert "/ada-ok" in recent and "/ada-missing" not in recent
    # The admin's own page views are stored, under the administrator's id.
    app.extensions["access_log"].flush(10)
    assert "/admin/access-log" in text(admin.get("/admin/access-log?user=root"))


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("status=600", "status", "Write a status (404) or a class (4xx)."),
        ("status=4xxx", "status", "Write a status (404) or a class (4xx)."),
        ("since=yesterday", "since", "Not a valid datetime value"),
        ("since=2026-01-02T00:00&until=2026-01-01T00:00", "until", "must come after"),
        ("user=nobody", "user", "There is no user called 'nobody'"),
        ("page=-1", "page", "between 1 and"),
    ],
)
def test_access_log_bad_filters_are_400(
    logged_app: tuple[Flask, str], query: str, field: str, message: str
) -> None:
    app, _ = logged_app
    admin = app.test_client()
    admin_login(admin, "root")
    response = admin.get(f"/admin/access-log?{query}")
    assert response.status_code == 400
    assert "There is a problem" in text(response)
    if field == "page":  # no input of its own: the summary above says it
        assert message in text(response)
    else:
        assert message.lower() in field_error(response, field).lower()
