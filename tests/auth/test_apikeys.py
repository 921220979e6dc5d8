"""API keys: format and storage, every fault's status, owner caps, CLI, revocation everywhere."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask, jsonify
from flask.testing import FlaskClient

import auth.apikeys
from api.ops import rate_limit
from auth.apikeys import KEY_FORMAT, ApiKeyError, api_keys
from auth.auth import current_principal, requires_api_key
from auth.policies import protected_route
from database.sql import db, db_create_all
from database.sql.identity import ApiKey, Role, User
from database.sql.types import aware_utc_now
from tests.conftest import TEST_SECRET_KEY, get_token
from tests.support.gunicorn import gunicorn

DEPLOY = "/t/deploy"


def add_test_routes(app: Flask) -> None:
    """Routes with each kind of protection this file needs."""

    @app.get(DEPLOY)
    @requires_api_key(scopes=["deploy"])
    def deploy() -> object:
        principal = current_principal()
        assert principal is not None
        return jsonify(
            kind=principal.kind, subject=principal.subject, scopes=sorted(principal.scopes)
        )

    @app.get("/t/tokens-only")
    @protected_route(credentials="token")
    def tokens_only() -> object:
        return jsonify(ok=True)

    @app.get("/t/either")
    @protected_route(credentials=("token", "api_key"))
    def either() -> object:
        principal = current_principal()
        assert principal is not None
        return jsonify(kind=principal.kind)

    @app.get("/t/limited")
    @protected_route(credentials="api_key")
    @rate_limit("2/minute")
    def limited() -> object:
        return jsonify(ok=True)


@pytest.fixture
def keys_app(make_app: Callable[..., Flask]) -> Flask:
    """The app on its own SQLite file, tables created, with the test routes."""
    app = make_app()
    with app.app_context():
        db_create_all()
    add_test_routes(app)
    return app


@pytest.fixture
def client(keys_app: Flask) -> FlaskClient:
    return keys_app.test_client()


def service_key(app: Flask, *scopes: str, **options: object) -> str:
    """A new key of the service 'ci' with these scopes; returns the full key."""
    with app.app_context():
        return api_keys().create("ci key", scopes, service="ci", **options).secret  # type: ignore[arg-type]


def make_user(app: Flask, username: str, scopes: str, active: bool = True) -> str:
    """A user holding one role that grants ``scopes``; returns the user's id."""
    with app.app_context():
        role = Role(name=f"role-{username}", scopes=scopes).insert()
        user = User(username=username, password_hash="unused", is_active=active, roles=[role])
        return user.insert().id


def call(client: FlaskClient, key: str | None, path: str = DEPLOY):
    headers = {"X-Api-Key": key} if key is not None else {}
    return client.get(path, headers=headers)


def assert_error(response, status: int, code: str) -> None:
    body = response.get_json()
    assert response.status_code == status, body
    assert body["error"] == status and body["success"] is False and body["code"] == code


def test_a_valid_key_reaches_the_route(keys_app: Flask, client: FlaskClient) -> None:
    key = service_key(keys_app, "deploy")
    assert KEY_FORMAT.fullmatch(key) and key.startswith("fja_")
    response = call(client, key)
    assert response.status_code == 200
    assert response.get_json() == {"kind": "api_key", "subject": "service:ci", "scopes": ["deploy"]}


def test_missing_key_is_401_and_names_the_header(client: FlaskClient) -> None:
    response = call(client, None)
    assert_error(response, 401, "api_key_missing")
    assert "X-Api-Key" in response.get_json()["message"]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "fault", ["garbage", "malformed", "unknown id", "wrong secret", "expired", "revoked"]
)
def test_every_bad_key_is_403_api_key_invalid(
    keys_app: Flask, client: FlaskClient, fault: str
) -> None:
    key = service_key(keys_app, "deploy")
    prefix, key_id, secret = key.split("_", 2)
    if fault == "garbage":
        key = "not-a-key"
    elif fault == "malformed":
        key = f"{prefix}_{key_id}_{secret[:-1]}"
    elif fault == "unknown id":
        key = f"{prefix}_{'z' * len(key_id)}_{secret}"
    elif fault == "wrong secret":
        key = f"{prefix}_{key_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    elif fault == "expired":
        with keys_app.app_context():
            record = ApiKey.lookup(key_id)
            assert record is not None
            record.expires_at = aware_utc_now() - timedelta(seconds=1)
            record.update()
    elif fault == "revoked":
        with keys_app.app_context():
            api_keys().revoke(key_id)
    assert_error(call(client, key), 403, "api_key_invalid")


def test_the_stored_value_is_not_the_key(keys_app: Flask) -> None:
    key = service_key(keys_app, "deploy")
    _, key_id, secret = key.split("_", 2)
    with keys_app.app_context():
        row = db.session.execute(db.select(ApiKey.__table__).where(ApiKey.id == key_id)).one()
    stored = " ".join(str(value) for value in row)
    assert secret not in stored and key not in stored
    # An HMAC under a derived key: a plain hash of the secret does not match either.
    assert hashlib.sha256(secret.encode()).hexdigest() not in stored


def test_a_missing_scope_is_403_permission_denied(keys_app: Flask, client: FlaskClient) -> None:
    key = service_key(keys_app, "items:read")
    response = call(client, key)
    assert_error(response, 403, "permission_denied")
    assert "deploy" in response.get_json()["message"]


def test_routes_choose_the_credentials_they_accept(keys_app: Flask, client: FlaskClient) -> None:
    key = service_key(keys_app, "deploy")
    assert_error(call(client, key, "/t/tokens-only"), 401, "credential_not_accepted")
    assert call(client, key, "/t/either").get_json() == {"kind": "api_key"}
    token = get_token(client)
    session_call = client.get("/t/either", headers={"Authorization": f"Bearer {token}"})
    assert session_call.get_json() == {"kind": "session"}
    # An API-key-only route with a token but no key: the key is what is missing.
    token_only = client.get(DEPLOY, headers={"Authorization": f"Bearer {token}"})
    assert_error(token_only, 401, "api_key_missing")


def test_a_users_key_is_capped_by_the_users_current_scopes(
    keys_app: Flask, client: FlaskClient
) -> None:
    user_id = make_user(keys_app, "ann", "deploy items:read")
    with keys_app.app_context():
        owner = db.session.get(User, user_id)
        key = api_keys().create("ann's", ["deploy"], owner=owner).secret
        with pytest.raises(ApiKeyError, match="does not hold"):
            api_keys().create("too much", ["admin:all"], owner=owner)
    ok = call(client, key)
    assert ok.status_code == 200 and ok.get_json()["subject"] == user_id
    with keys_app.app_context():
        role = Role.query.filter_by(name="role-ann").one()
        role.scopes = "items:read"
        role.update()
        api_keys().forget_owner(user_id)
    assert_error(call(client, key), 403, "permission_denied")
    with keys_app.app_context():
        owner = db.session.get(User, user_id)
        owner.is_active = False
        owner.update()
        api_keys().forget_owner(user_id)
    assert_error(call(client, key), 403, "api_key_invalid")


def test_last_use_is_recorded_at_most_once_per_interval(
    keys_app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = service_key(keys_app, "deploy")
    key_id = key.split("_")[1]

    def last_used():
        with keys_app.app_context():
            record = ApiKey.lookup(key_id)
            assert record is not None
            return record.last_used_at

    assert last_used() is None
    assert call(client, key).status_code == 200
    first = last_used()
    assert first is not None
    assert call(client, key).status_code == 200
    assert last_used() == first  # not written again within the interval
    monkeypatch.setattr(auth.apikeys, "LAST_USED_INTERVAL", timedelta(0))
    assert call(client, key).status_code == 200
    assert last_used() > first


def test_lifetime_limits(keys_app: Flask) -> None:
    with keys_app.app_context(), pytest.raises(ApiKeyError, match="within 365 days"):
        api_keys().create("long", ["deploy"], service="ci", expires_in=timedelta(days=400))
    with keys_app.app_context():
        issued = api_keys().create("default", ["deploy"], service="ci")
        lifetime = issued.record.expires_at - aware_utc_now()
    assert timedelta(days=89) < lifetime <= timedelta(days=90)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": " ", "service": "ci"}, "name"),
        ({"service": "ci", "owner": "self"}, "owner"),
        ({"service": "ci", "scopes": ["no spaces allowed"]}, "scopes"),
        ({"owner": "self", "scopes": ["deploy", "items:write"]}, "scopes"),
        ({"service": "ci", "expires_in": timedelta(days=0)}, "expires_in"),
    ],
)
def test_refusals_name_the_input_at_fault(keys_app: Flask, options: dict, field: str) -> None:
    make_user(keys_app, "kim", "deploy")
    with keys_app.app_context():
        arguments = {"name": "k", "scopes": ["deploy"], **options}
        if arguments.get("owner") == "self":
            arguments["owner"] = User.by_username("kim")
        with pytest.raises(ApiKeyError) as refused:
            api_keys().create(arguments.pop("name"), arguments.pop("scopes"), **arguments)
    assert refused.value.field == field


def test_cli_create_list_revoke(keys_app: Flask, client: FlaskClient) -> None:
    runner = keys_app.test_cli_runner()
    made = runner.invoke(
        args=["api-keys", "create", "deployer", "--service", "ci", "--scope", "deploy",
              "--expires", "30d"]
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert KEY_FORMAT.fullmatch(key)
    key_id = key.split("_")[1]
    assert call(client, key).status_code == 200

    listed = runner.invoke(args=["api-keys", "list"])
    assert listed.exit_code == 0 and key_id in listed.output and "deployer" in listed.output
    assert key.split("_")[2] not in listed.output  # the secret is shown only at creation

    revoked = runner.invoke(args=["api-keys", "revoke", key_id])
    assert revoked.exit_code == 0, revoked.output
    assert_error(call(client, key), 403, "api_key_invalid")
    assert key_id not in runner.invoke(args=["api-keys", "list"]).output
    assert "revoked" in runner.invoke(args=["api-keys", "list", "--all"]).output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        # A usage mistake exits 2 (click); a refusal of the services exits 1 (api.cli.explained).
        (["api-keys", "create", "k", "--scope", "deploy"], 2, "--owner USERNAME or --service NAME"),
        (["api-keys", "create", "k", "--service", "ci", "--expires", "soon"], 2, "not an age"),
        (["api-keys", "create", "k", "--owner", "nobody"], 1, "There is no user called 'nobody'"),
        (["api-keys", "create", "k", "--service", "ci", "--scope", "bad scope!"], 1, "not valid"),
        (["api-keys", "create", " ", "--service", "ci"], 1, "Give the key a name"),
        (["api-keys", "list", "--owner", "nobody"], 1, "There is no user called 'nobody'"),
        (["api-keys", "revoke", "doesnotexist"], 1, "No API key has the id"),
    ],
)  # fmt: skip
def test_cli_refusals_say_what_to_do(
    keys_app: Flask, args: list[str], code: int, message: str
) -> None:
    result = keys_app.test_cli_runner().invoke(args=args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert result.output.startswith(("Error: ", "Usage: "))


def test_accepted_api_key_single_key_mode(make_app: Callable[..., Flask]) -> None:
    shared = "k" * 8 + "Zq3-x9_LmP4vR7tY2wE5uI8oA1sD6fG0"
    app = make_app(ACCEPTED_API_KEY=shared, ACCEPTED_API_KEY_SCOPES="deploy")
    with app.app_context():
        db_create_all()
    add_test_routes(app)
    client = app.test_client()
    response = call(client, shared)
    assert response.status_code == 200
    assert response.get_json()["scopes"] == ["deploy"]
    assert_error(call(client, shared[:-1] + "!"), 403, "api_key_invalid")


@pytest.fixture
def redis_instances(
    make_app: Callable[..., Flask], redis_url: str, tmp_path: Path
) -> Iterator[tuple[Flask, Flask]]:
    """Two instances sharing one database and one Redis (as on two machines)."""
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_app(DATABASE_URL=database, REDIS_URL=redis_url)
    second = make_app(DATABASE_URL=database, REDIS_URL=redis_url)
    with first.app_context():
        db_create_all()
    for app in (first, second):
        add_test_routes(app)
    yield first, second
    for app in (first, second):
        app.extensions["api_keys"]._cache.close()


def test_revocation_on_one_instance_is_seen_by_the_other_at_once(
    redis_instances: tuple[Flask, Flask],
) -> None:
    first, second = redis_instances
    key = service_key(first, "deploy")
    reader = first.test_client()
    assert [call(reader, key).status_code for _ in range(3)] == [200] * 3
    cache = first.extensions["api_keys"]._cache
    assert cache.hits >= 2  # served from memory, no database query per request
    with second.app_context():
        api_keys().revoke(key.split("_")[1])
    assert_error(call(reader, key), 403, "api_key_invalid")


@pytest.mark.slow
def test_revocation_is_seen_by_every_gunicorn_worker(
    make_app: Callable[..., Flask], redis_url: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    admin = make_app(DATABASE_URL=database, REDIS_URL=redis_url)
    with admin.app_context():
        db_create_all()
    key = service_key(admin, "principal:read")
    env = {
        "APP_ENV": "development",
        "SECRET_KEY": TEST_SECRET_KEY,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": "0",
    }
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2) as server:
        url = f"{server.url}/api/principals/service:ci"
        with requests.Session() as http:
            before = [http.get(url, headers={"X-Api-Key": key}, timeout=5) for _ in range(30)]
            assert {r.status_code for r in before} == {200}, before[0].text
            with admin.app_context():
                api_keys().revoke(key.split("_")[1])
            after = [http.get(url, headers={"X-Api-Key": key}, timeout=5) for _ in range(30)]
    assert {r.status_code for r in after} == {403}
    assert {r.json()["code"] for r in after} == {"api_key_invalid"}
    assert "Traceback" not in server.log()


def test_rate_limits_count_per_api_key(keys_app: Flask, client: FlaskClient) -> None:
    first = service_key(keys_app, "deploy")
    second = service_key(keys_app, "deploy")
    assert [call(client, first, "/t/limited").status_code for _ in range(3)] == [200, 200, 429]
    # Same client address, another key: its own budget.
    assert call(client, second, "/t/limited").status_code == 200
