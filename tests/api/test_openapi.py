"""The OpenAPI document and /docs: valid, complete, committed, matching real bodies, offline."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from api.openapi import SKIPPED_METHODS, build_spec, documented
from api.routes.docs import canonical_document, render
from database.sql import db_create_all
from tests.conftest import get_token

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def document(app: Flask) -> dict:
    return app.test_client().get("/openapi.json").get_json()


def test_the_document_is_valid_openapi_3_1(document: dict) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_every_operation_exists(app: Flask, document: dict) -> None:
    registered = set()
    left_out = set()
    for rule in app.url_map.iter_rules():
        if not documented(app, rule):
            left_out.add(rule.endpoint)
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        registered |= {(path, m.lower()) for m in rule.methods - SKIPPED_METHODS}
    described = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert described == registered
    # Only static files and the admin pages (a PageBlueprint) are left out, nothing else.
    assert {endpoint.partition(".")[0] for endpoint in left_out} == {"static", "admin"}
    assert not any(path.startswith("/admin") for path in document["paths"])


def test_the_committed_document_is_current() -> None:
    committed = (ROOT / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(canonical_document()), (
        "openapi.json is out of date: run `make openapi` and commit the result."
    )


def test_security_and_statuses_follow_the_decorators(document: dict) -> None:
    create = document["paths"]["/api/items"]["post"]
    assert {"sessionToken": [], "sessionCookie": []} in create["security"]
    assert {"apiKey": []} in create["security"]
    assert {"201", "400", "401", "403", "409", "413", "415", "422", "503"} <= set(
        create["responses"]
    )
    principal = document["paths"]["/api/principals/{sub}"]["get"]
    assert {"apiKey": ["principal:read"]} in principal["security"]
    assert "principal:read" in principal["description"]
    admin = document["paths"]["/api/api-keys"]["get"]
    assert admin["security"] == [{"userToken": []}]
    assert "admin" in admin["description"]
    assert "429" in document["paths"]["/api/public"]["get"]["responses"]
    assert "security" not in document["paths"]["/"]["get"]
    assert document["paths"]["/running"]["get"]["tags"] == ["monitoring"]
    path_item = document["paths"]["/api/items/{item_id}"]["get"]
    assert path_item["parameters"][0]["schema"]["type"] == "integer"


def schema_of(document: dict, name: str) -> dict:
    """A component schema with its references resolvable."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "schema"),
    [
        ("get", "/api/restricted", None, 401, "AuthError"),
        ("get", "/nowhere", None, 404, "Error"),
        ("post", "/api/items", {"name": 3}, 422, "ValidationError"),
        ("post", "/api/items", {"name": "x", "description": False}, 422, "ValidationError"),
    ],
)
def test_real_error_bodies_match_their_schemas(
    app: Flask, document: dict, method: str, path: str, body: object, status: int, schema: str
) -> None:
    with app.app_context():
        db_create_all()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {get_token(client)}"} if path == "/api/items" else {}
    response = client.open(path, method=method, json=body, headers=headers)
    assert response.status_code == status, response.get_json()
    resolver_doc = schema_of(document, schema)
    jsonschema.validate(response.get_json(), resolver_doc)
    if status == 422:
        # Strict bodies: a JSON false is not a string, a number is not a name.
        assert {e["field"] for e in response.get_json()["errors"]} <= {"name", "description"}


def test_docs_page_is_offline_and_within_its_policy(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # no CDN
    assert "<script>" not in html  # no inline script: the policy forbids it
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    init = client.get("/docs/init.js")
    assert init.status_code == 200 and "validatorUrl: null" in init.get_data(as_text=True)
    for asset in re.findall(r'(?:href|src)="([^"]+)"', html):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/docs/assets/../../settings.py").status_code == 404
    assert client.get("/docs/assets/oauth2-redirect.html").status_code == 404
    # The API's own strict policy still applies everywhere else.
    assert client.get("/").headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    ("settings", "status"),
    [({"DOCS_ENABLED": "0"}, 404), ({"APP_ENV": "production"}, 404), ({}, 200)],
)
def test_docs_are_on_in_development_and_off_in_production(
    make_app: Callable[..., Flask], settings: dict, status: int
) -> None:
    if settings.get("APP_ENV") == "production":
        settings = {**settings, "SECRET_KEY": base64.b64encode(bytes(range(48))).decode()}
    client = make_app(**settings).test_client()
    assert client.get("/openapi.json").status_code == status
    assert client.get("/docs").status_code == status


def test_docs_token(make_app: Callable[..., Flask]) -> None:
    token = "docs-token-0123456789-abcdefghijkl"
    client = make_app(DOCS_TOKEN=token).test_client()
    refused = client.get("/openapi.json")
    assert refused.status_code == 401 and refused.get_json()["error"] == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert (
        client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    basic = base64.b64encode(f"me:{token}".encode()).decode()
    assert client.get("/docs", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    wrong = base64.b64encode(b"me:nope").decode()
    assert client.get("/docs", headers={"Authorization": f"Basic {wrong}"}).status_code == 401


def test_the_cli_writes_json(app: Flask, tmp_path: Path) -> None:
    target = tmp_path / "spec.json"
    result = app.test_cli_runner().invoke(args=["openapi", "write", str(target)])
    assert result.exit_code == 0, result.output
    assert json.loads(target.read_text()) == build_spec(app)


def test_configured_issuers_appear_as_security_schemes(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCS_TEST_ISSUER_KEY", "k" * 48)
    issuers = [
        {"name": "internal", "issuer": "https://auth.internal.example", "audience": "api",
         "hs_key_env": "DOCS_TEST_ISSUER_KEY", "algorithms": ["HS256"]},
    ]  # fmt: skip
    document = make_app(TOKEN_ISSUERS=issuers).test_client().get("/openapi.json").get_json()
    validate(document)
    scheme = document["components"]["securitySchemes"]["issuer_internal"]
    assert scheme["type"] == "http" and scheme["x-issuer"] == "https://auth.internal.example"
    assert {"issuer_internal": []} in document["paths"]["/api/items"]["get"]["security"]
    # Routes that take no third-party tokens do not list it.
    assert {"issuer_internal": []} not in document["paths"]["/api/api-keys"]["get"]["security"]
