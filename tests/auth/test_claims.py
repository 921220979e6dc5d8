"""Claims presets: each provider's token reaches rule-guarded routes with normalised claims."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable

import pytest
from flask import Flask
from pytest_httpserver import HTTPServer

from auth.claims import (
    HASURA_NAMESPACE,
    InvalidClaimsError,
    freeze,
    get_claims,
    has_user_role,
    mapping_for,
    normalise,
    normalize_claims,
    thaw,
)
from tests.auth.conftest import bearer
from tests.support.oidc import LocalIssuer, SigningKey

HASURA_CLAIMS = {
    "x-hasura-allowed-roles": ["reader", "user"],
    "x-hasura-default-role": "user",
    "X-Hasura-User-Id": "user-1",
}

# preset: (issuer entry fields, token claims, expected roles, expected scopes, expected name)
PRESET_CASES: dict[str, tuple[dict[str, object], dict[str, object], list, list, str]] = {
    "cognito-access": (
        {"preset": "cognito", "audience": "client-1"},
        {
            "aud": None,
            "token_use": "access",
            "client_id": "client-1",
            "scope": "orders:read openid",
            "cognito:groups": ["reader"],
            "username": "alice",
        },
        ["reader"],
        ["openid", "orders:read"],
        "alice",
    ),
    "cognito-id": (
        {"preset": "cognito", "audience": "client-1"},
        {
            "aud": "client-1",
            "token_use": "id",
            "cognito:groups": ["reader"],
            "cognito:username": "alice",
        },
        ["reader"],
        [],
        "alice",
    ),
    "hasura": (
        {"preset": "hasura"},
        {"sub": "auth0|abc", HASURA_NAMESPACE: json.dumps(HASURA_CLAIMS)},
        ["reader", "user"],
        [],
        "user-1",
    ),
    "auth0": (
        {"preset": "auth0"},
        {
            "https://api.example.test/roles": ["reader"],
            "https://api.example.test/team": "blue",
            "https://api.example.test/sub": "not-the-subject",
            "permissions": ["orders:read"],
            "scope": "openid profile",
            "nickname": "alice",
        },
        ["reader"],
        ["openid", "orders:read", "profile"],
        "alice",
    ),
    "azure_b2c": (
        {"preset": "azure_b2c"},
        {
            "sub": "pairwise-id",
            "oid": "user-1",
            "scp": "orders:read",
            "roles": ["reader"],
            "name": "Alice",
        },
        ["reader"],
        ["orders:read"],
        "Alice",
    ),
    "keycloak": (
        {"preset": "keycloak"},
        {
            "realm_access": {"roles": ["reader"]},
            "resource_access": {"api-1": {"roles": ["editor"]}, "other": {"roles": ["admin"]}},
            "scope": "orders:read email",
            "preferred_username": "alice",
        },
        ["editor", "reader"],
        ["email", "orders:read"],
        "alice",
    ),
}


@pytest.fixture
def preset_issuers(
    httpserver_ipv4: HTTPServer, rsa_key: SigningKey, ec_key: SigningKey
) -> dict[str, LocalIssuer]:
    """One local issuer per preset case, alternating RSA and EC keys."""
    keys = [rsa_key, ec_key]
    return {
        case: LocalIssuer(httpserver_ipv4, case, [keys[index % 2]])
        for index, case in enumerate(PRESET_CASES)
    }


@pytest.fixture
def preset_app(preset_issuers: dict[str, LocalIssuer], issuer_app: Callable[..., Flask]) -> Flask:
    """Every preset's issuer configured at once."""
    entries = [issuer.config(**PRESET_CASES[case][0]) for case, issuer in preset_issuers.items()]
    return issuer_app(*entries)


@pytest.mark.parametrize("case", PRESET_CASES)
def test_each_presets_token_reaches_a_rule_guarded_route(
    preset_app: Flask, preset_issuers: dict[str, LocalIssuer], case: str
) -> None:
    _, claims, roles, scopes, name = PRESET_CASES[case]
    issuer = preset_issuers[case]
    token = issuer.token(**claims)
    client = preset_app.test_client()
    # roles_present("reader") and the URL's user_id equal to the normalised subject.
    response = client.get("/ext/users/user-1", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["kind"], body["subject"], body["issuer"]) == ("external", "user-1", issuer.issuer)
    assert (body["roles"], body["scopes"], body["name"]) == (roles, scopes, name)
    # The scope-guarded route follows the normalised scopes.
    orders = client.get("/ext/orders", headers=bearer(token))
    assert orders.status_code == (200 if "orders:read" in scopes else 403)
    assert client.get("/ext/users/user-2", headers=bearer(token)).status_code == 403


def test_seed_helpers_see_the_normalised_claims(
    preset_app: Flask, preset_issuers: dict[str, LocalIssuer]
) -> None:
    _, claims, *_ = PRESET_CASES["hasura"]
    token = preset_issuers["hasura"].token(**claims)
    response = preset_app.test_client().get("/ext/claims", headers=bearer(token))
    body = response.get_json()
    assert body["reader"] is True and body["same"] is True
    assert body["claims"]["sub"] == "user-1"
    assert body["claims"]["x-hasura-default-role"] == "user"
    assert body["claims"]["roles"] == ["reader", "user"]


def test_normalize_claims_alone_needs_a_credential(preset_app: Flask) -> None:
    response = preset_app.test_client().get("/ext/claims")
    assert response.status_code == 401
    assert response.get_json()["code"] == "authorization_header_missing"


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("cognito-access", {"client_id": "another-client"}),
        ("cognito-access", {"token_use": None}),
        ("cognito-access", {"token_use": "refresh"}),
        ("cognito-id", {"aud": "another-client"}),
        ("hasura", {HASURA_NAMESPACE: "{not json"}),
        ("hasura", {HASURA_NAMESPACE: None}),
    ],
    ids=["access-client", "no-token-use", "other-token-use", "id-aud", "hasura-bad", "no-hasura"],
)
def test_preset_specific_faults_are_invalid_tokens(
    preset_app: Flask,
    preset_issuers: dict[str, LocalIssuer],
    case: str,
    changes: dict[str, object],
) -> None:
    claims = {**PRESET_CASES[case][1], **changes}
    token = preset_issuers[case].token(**claims)
    response = preset_app.test_client().get("/api/restricted", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_token"


def test_cognito_token_use_can_be_restricted(
    oidc: LocalIssuer, issuer_app: Callable[..., Flask]
) -> None:
    app = issuer_app(oidc.config(preset="cognito", audience="client-1", token_use=["access"]))
    access = oidc.token(aud=None, token_use="access", client_id="client-1")
    id_token = oidc.token(aud="client-1", token_use="id")
    client = app.test_client()
    assert client.get("/api/restricted", headers=bearer(access)).status_code == 200
    assert client.get("/api/restricted", headers=bearer(id_token)).status_code == 401


def test_claim_overrides_replace_the_preset() -> None:
    mapping = mapping_for(
        "keycloak",
        clients=["api-1"],
        subject_claim="email",
        roles_claim="groups",
        scopes_claim="perms",
        scopes_separator=",",
    )
    payload = {"sub": "s", "email": "a@b.test", "groups": ["g"], "perms": "x,y", "scope": "z"}
    result = normalise(payload, mapping)
    assert (result.subject, result.roles, result.scopes) == ("a@b.test", {"g"}, {"x", "y"})


def test_generic_mapping_reads_dotted_paths_and_lists() -> None:
    mapping = mapping_for("", roles_claim="app.roles", scopes_claim="scp")
    payload = {"sub": "s", "app": {"roles": ["a", 3, "b"]}, "scp": ["x", "y"]}
    result = normalise(payload, mapping)
    assert (result.roles, result.scopes, result.name) == ({"a", "b"}, {"x", "y"}, "s")


def test_a_token_without_subject_is_refused_by_normalise() -> None:
    with pytest.raises(InvalidClaimsError, match="no subject"):
        normalise({"oid": 5}, mapping_for("azure_b2c"))


def test_frozen_claims_cannot_be_changed_and_thaw_to_plain_json() -> None:
    frozen = freeze({"a": [1, {"b": ["c"]}]})
    with pytest.raises(TypeError):
        frozen["a"] = 1
    assert thaw(frozen) == {"a": [1, {"b": ["c"]}]}
    assert json.dumps(thaw(frozen))


@pytest.mark.parametrize(
    ("claims", "expected"),
    [({"roles": ["reader"]}, True), ({"roles": ["writer"]}, False), ({}, False)],
)
def test_has_user_role(claims: dict[str, object], expected: bool) -> None:
    assert has_user_role("reader", claims) is expected


def test_seed_helper_names_are_kept() -> None:
    assert list(inspect.signature(has_user_role).parameters) == ["role", "claims"]
    assert list(inspect.signature(get_claims).parameters) == []
    assert list(inspect.signature(normalize_claims).parameters) == ["view"]
