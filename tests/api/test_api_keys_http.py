"""API keys over HTTP: administrators manage any key, users their own; revocation at once."""

from __future__ import annotations

from flask import Flask

from auth.apikeys import KEY_FORMAT
from tests.support.accounts import bearer, login, make_user


def test_admin_creates_lists_and_revokes_keys(accounts_app: Flask) -> None:
    make_user(accounts_app, "root", roles=("admin",))
    make_user(accounts_app, "ann", roles=("reports",))  # role "reports" grants reports:read
    client = accounts_app.test_client()
    admin = bearer(login(client, "root"))

    made = client.post(
        "/api/api-keys",
        json={"name": "ci", "service": "ci", "scopes": ["principal:read"], "expires_in_days": 7},
        headers=admin,
    )
    assert made.status_code == 201, made.get_json()
    assert made.headers["Cache-Control"] == "no-store"
    body = made.get_json()
    key, key_id = body["key"], body["id"]
    assert KEY_FORMAT.fullmatch(key) and body["service"] == "ci" and body["owner"] is None

    for_ann = client.post(
        "/api/api-keys", json={"name": "ann's", "owner": "ann", "scopes": ["reports:read"]},
        headers=admin,
    )  # fmt: skip
    assert for_ann.status_code == 201 and for_ann.get_json()["owner"] == "ann"
    beyond = client.post(
        "/api/api-keys", json={"name": "x", "owner": "ann", "scopes": ["admin:all"]}, headers=admin
    )
    assert beyond.status_code == 422 and "does not hold" in beyond.get_json()["message"]
    both = client.post(
        "/api/api-keys", json={"name": "x", "owner": "ann", "service": "ci"}, headers=admin
    )
    assert both.status_code == 422
    nobody = client.post("/api/api-keys", json={"name": "x", "owner": "zed"}, headers=admin)
    assert nobody.status_code == 404
    assert nobody.get_json()["message"] == "There is no user called 'zed'."

    listed = client.get("/api/api-keys", headers=admin).get_json()["api_keys"]
    assert {k["id"] for k in listed} >= {key_id, for_ann.get_json()["id"]}
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    only_ann = client.get("/api/api-keys?owner=ann", headers=admin).get_json()["api_keys"]
    assert [k["owner"] for k in only_ann] == ["ann"]
    # Owners are named as users log in: case and surrounding spaces do not matter.
    as_typed = client.get("/api/api-keys?owner=%20Ann%20", headers=admin).get_json()["api_keys"]
    assert as_typed == only_ann

    use = client.get("/api/principals/service:ci", headers={"X-Api-Key": key})
    assert use.status_code == 200
    assert client.delete(f"/api/api-keys/{key_id}", headers=admin).status_code == 204
    refused = client.get("/api/principals/service:ci", headers={"X-Api-Key": key})
    assert refused.status_code == 403 and refused.get_json()["code"] == "api_key_invalid"
    assert client.delete("/api/api-keys/unknown", headers=admin).status_code == 404
    revoked = client.get("/api/api-keys?include_revoked=true", headers=admin).get_json()
    assert any(k["id"] == key_id and k["revoked_at"] for k in revoked["api_keys"])


def test_only_administrators_manage_every_key(accounts_app: Flask) -> None:
    make_user(accounts_app, "ann", roles=("reports",))
    client = accounts_app.test_client()
    user = bearer(login(client, "ann"))
    for method, path in (("get", "/api/api-keys"), ("post", "/api/api-keys"),
                         ("delete", "/api/api-keys/x")):  # fmt: skip
        response = getattr(client, method)(path, json={"name": "x", "service": "s"}, headers=user)
        assert response.status_code == 403 and response.get_json()["code"] == "permission_denied"
        assert getattr(client, method)(path).status_code == 401


def test_users_manage_their_own_keys(accounts_app: Flask) -> None:
    make_user(accounts_app, "ann", roles=("reports",))
    make_user(accounts_app, "bob", roles=("reports",))
    client = accounts_app.test_client()
    ann, bob = bearer(login(client, "ann")), bearer(login(client, "bob"))

    made = client.post(
        "/api/auth/api-keys", json={"name": "laptop", "scopes": ["reports:read"]}, headers=ann
    )
    assert made.status_code == 201
    key_id = made.get_json()["id"]
    too_much = client.post(
        "/api/auth/api-keys", json={"name": "x", "scopes": ["admin:all"]}, headers=ann
    )
    assert too_much.status_code == 422
    mine = client.get("/api/auth/api-keys", headers=ann).get_json()["api_keys"]
    assert [k["id"] for k in mine] == [key_id]
    assert client.get("/api/auth/api-keys", headers=bob).get_json()["api_keys"] == []
    # Another user's key is not found, not revoked.
    assert client.delete(f"/api/auth/api-keys/{key_id}", headers=bob).status_code == 404
    assert client.delete(f"/api/auth/api-keys/{key_id}", headers=ann).status_code == 204
    assert client.get("/api/auth/api-keys", headers=ann).get_json()["api_keys"] == []
    # An API key cannot mint more keys.
    key = client.post(
        "/api/auth/api-keys", json={"name": "k", "scopes": ["reports:read"]}, headers=ann
    ).get_json()["key"]
    refused = client.post("/api/auth/api-keys", json={"name": "x"}, headers={"X-Api-Key": key})
    assert refused.status_code == 401 and refused.get_json()["code"] == "credential_not_accepted"


def test_role_change_and_deletion_reach_the_users_keys(accounts_app: Flask) -> None:
    make_user(accounts_app, "root", roles=("admin",))
    ann_id = make_user(accounts_app, "ann", roles=("reports", "principal"))
    client = accounts_app.test_client()
    admin = bearer(login(client, "root"))
    ann = bearer(login(client, "ann"))
    key = client.post(
        "/api/auth/api-keys", json={"name": "k", "scopes": ["principal:read"]}, headers=ann
    ).get_json()["key"]
    path = f"/api/principals/{ann_id}"
    assert client.get(path, headers={"X-Api-Key": key}).status_code == 200
    assert client.put(f"/api/users/{ann_id}/roles", json={"roles": ["reports"]},
                      headers=admin).status_code == 200  # fmt: skip
    capped = client.get(path, headers={"X-Api-Key": key})
    assert capped.status_code == 403 and capped.get_json()["code"] == "permission_denied"
    assert client.delete(f"/api/users/{ann_id}", headers=admin).status_code == 204
    gone = client.get(path, headers={"X-Api-Key": key})
    assert gone.status_code == 403 and gone.get_json()["code"] == "api_key_invalid"
