"""/api/users (role admin) on PostgreSQL and Redis: CRUD, search, and revocation on change."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from auth import users
from tests.api.test_auth_routes import assert_error
from tests.support.accounts import OTHER_PASSWORD, PASSWORD, bearer, login, make_user

Headers = dict[str, str]


@pytest.fixture
def client(accounts_app: Flask) -> FlaskClient:
    """A client of the accounts app with the admin root and the plain user ada."""
    make_user(accounts_app, "root", roles=("admin",))
    make_user(accounts_app, "ada", roles=("staff",))
    return accounts_app.test_client()


@pytest.fixture
def admin(client: FlaskClient) -> Headers:
    """The admin's Authorization header."""
    return bearer(login(client, "root"))


def user_id(client: FlaskClient, admin: Headers, username: str) -> str:
    """The id of ``username``, found through the search."""
    items = client.get(f"/api/users?q={username}", headers=admin).get_json()["items"]
    return next(item["id"] for item in items if item["username"] == username)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/users"), ("POST", "/api/users"), ("GET", "/api/users/x"),
     ("PATCH", "/api/users/x"), ("DELETE", "/api/users/x"), ("PUT", "/api/users/x/password"),
     ("PUT", "/api/users/x/roles")],
)  # fmt: skip
def test_admin_role_is_required(client: FlaskClient, method: str, path: str) -> None:
    assert_error(client.open(path, method=method, json={}), 401)
    plain = bearer(login(client, "ada"))
    denied = assert_error(client.open(path, method=method, json={}, headers=plain), 403)
    assert denied["code"] == "permission_denied" and "admin" in str(denied["message"])


def test_create_read_list_search_update_delete(client: FlaskClient, admin: Headers) -> None:
    response = client.post(
        "/api/users",
        json={
            "username": "Bea",
            "password": PASSWORD,
            "email": "Bea@Example.org",
            "roles": ["staff"],
        },
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()
    bea = response.get_json()
    assert (bea["username"], bea["email"], bea["roles"]) == ("bea", "bea@example.org", ["staff"])
    assert bea["scopes"] == ["staff:read"] and bea["is_active"] and bea["last_login"] is None
    assert "password_hash" not in bea and PASSWORD not in response.get_data(as_text=True)
    assert response.headers["Location"] == f"/api/users/{bea['id']}"
    assert client.get(response.headers["Location"], headers=admin).get_json() == bea

    page = client.get("/api/users?per_page=2&page=1", headers=admin).get_json()
    assert page["total"] == 3 and [u["username"] for u in page["items"]] == ["ada", "bea"]
    found = client.get("/api/users?q=EXAMPLE.org", headers=admin).get_json()
    assert [u["username"] for u in found["items"]] == ["bea"]
    assert client.get("/api/users?q=%25", headers=admin).get_json()["total"] == 0  # literal %

    changed = client.patch(f"/api/users/{bea['id']}", json={"email": None}, headers=admin)
    assert changed.status_code == 200 and changed.get_json()["email"] is None
    assert client.delete(f"/api/users/{bea['id']}", headers=admin).status_code == 204
    assert_error(client.get(f"/api/users/{bea['id']}", headers=admin), 404)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "ada", "password": PASSWORD}, 409, None),
        ({"username": "new1", "password": "password123"}, 422, "password"),
        ({"username": "newnewnew1", "password": "NewNewNew1"}, 422, "password"),
        ({"username": "no spaces", "password": PASSWORD}, 422, "username"),
        ({"username": "new1", "password": PASSWORD, "roles": ["ghost"]}, 422, "roles"),
        ({"username": "new1", "password": PASSWORD, "email": "not-an-email"}, 422, "email"),
        ({"username": "new1"}, 422, "password"),
    ],
)
def test_create_refusals(
    client: FlaskClient, admin: Headers, body: dict, status: int, field: str | None
) -> None:
    error = assert_error(client.post("/api/users", json=body, headers=admin), status)
    if field is not None:
        assert field in {e["field"] for e in error["errors"]}  # type: ignore[union-attr]
    if status == 409:
        # The username clashes; the unset (NULL) email of both users does not.
        assert str(error["message"]).startswith("This username is already taken")


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"is_active": False}),
        ("PATCH", "", {"username": "ada2"}),
        ("DELETE", "", None),
        ("PUT", "/password", {"password": OTHER_PASSWORD}),
        ("PUT", "/roles", {"roles": ["admin"]}),
    ],
)
def test_changes_to_a_user_end_their_logins(
    client: FlaskClient, admin: Headers, method: str, suffix: str, body: object
) -> None:
    ada = login(client, "ada")
    assert client.get("/api/auth/me", headers=bearer(ada)).status_code == 200
    target = user_id(client, admin, "ada")
    response = client.open(f"/api/users/{target}{suffix}", method=method, json=body, headers=admin)
    assert response.status_code in (200, 204), response.get_json()
    assert_error(client.get("/api/auth/me", headers=bearer(ada)), 401, "token_revoked")
    assert client.get("/api/users", headers=admin).status_code == 200  # the admin's login lives


def test_new_roles_show_in_the_next_login(client: FlaskClient, admin: Headers) -> None:
    target = user_id(client, admin, "ada")
    response = client.put(f"/api/users/{target}/roles", json={"roles": ["admin"]}, headers=admin)
    assert response.get_json()["roles"] == ["admin"]
    assert client.get("/api/users", headers=bearer(login(client, "ada"))).status_code == 200
    assert_error(
        client.put(f"/api/users/{target}/roles", json={"roles": ["ghost"]}, headers=admin), 422
    )


def test_deactivated_users_cannot_log_in_and_reactivation_restores(
    client: FlaskClient, admin: Headers
) -> None:
    target = user_id(client, admin, "ada")
    client.patch(f"/api/users/{target}", json={"is_active": False}, headers=admin)
    assert_error(
        client.post("/api/auth/login", json={"username": "ada", "password": PASSWORD}),
        401,
        "invalid_credentials",
    )
    client.patch(f"/api/users/{target}", json={"is_active": True}, headers=admin)
    assert login(client, "ada")
    assert_error(client.patch(f"/api/users/{target}", json={}, headers=admin), 422)
    assert_error(client.patch(f"/api/users/{target}", json={"is_active": None}, headers=admin), 422)


# Each way of removing an administrator, and how the refusal names it.
REMOVALS = pytest.mark.parametrize(
    ("method", "suffix", "body", "change"),
    [
        ("PUT", "/roles", {"roles": ["staff"]}, "taking the admin role from them"),
        ("PATCH", "", {"is_active": False}, "deactivating them"),
        ("DELETE", "", None, "deleting them"),
    ],
    ids=["roles", "deactivate", "delete"],
)


@REMOVALS
def test_the_last_active_admin_cannot_be_removed(
    accounts_app: Flask,
    client: FlaskClient,
    admin: Headers,
    method: str,
    suffix: str,
    body: object,
    change: str,
) -> None:
    # A deactivated administrator does not count: they cannot log in.
    make_user(accounts_app, "bea", roles=("admin",))
    with accounts_app.app_context():
        users.deactivate_user(users.find_user("bea"))
    root = user_id(client, admin, "root")
    response = client.open(f"/api/users/{root}{suffix}", method=method, json=body, headers=admin)
    error = assert_error(response, 409)
    assert error["message"] == (
        f"root is the last active administrator, so {change} would leave no one who can "
        "manage users and roles. Give another active user the admin role first."
    )
    # Nothing changed, and the refusal came before the admin's logins could be ended.
    after = client.get(f"/api/users/{root}", headers=admin)
    assert after.status_code == 200
    assert (after.get_json()["roles"], after.get_json()["is_active"]) == (["admin"], True)


@REMOVALS
def test_an_admin_may_be_removed_while_another_is_active(
    client: FlaskClient, admin: Headers, method: str, suffix: str, body: object, change: str
) -> None:
    ada = user_id(client, admin, "ada")
    promoted = client.put(f"/api/users/{ada}/roles", json={"roles": ["admin"]}, headers=admin)
    assert promoted.status_code == 200
    # root removes themselves; ada is the active administrator left.
    root = user_id(client, admin, "root")
    response = client.open(f"/api/users/{root}{suffix}", method=method, json=body, headers=admin)
    assert response.status_code in (200, 204), response.get_json()
    # ada is now the last active administrator herself.
    ada_admin = bearer(login(client, "ada"))
    assert_error(client.delete(f"/api/users/{ada}", headers=ada_admin), 409)
