"""Third-party tokens over HTTP: what is accepted, what is refused and with which code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from pytest_httpserver import HTTPServer

from auth import protected_route
from auth.issuers import EXTENSION
from tests.auth.conftest import bearer, principal_response
from tests.support.oidc import LocalIssuer, SigningKey, request_log_paths

IssuerApp = Callable[..., Flask]


def assert_refused(response, code: str, status: int = 401) -> None:
    """The standard error body with ``code``; 401s carry the Bearer challenge."""
    body = response.get_json()
    assert response.status_code == status, body
    assert (body["error"], body["success"], body["code"]) == (status, False, code)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_valid_token_reaches_requires_auth_and_rules(oidc: LocalIssuer, issuer_app: IssuerApp):
    client = issuer_app(oidc.config()).test_client()
    token = oidc.token(sub="user-1", roles=["reader"])
    assert client.get("/api/restricted", headers=bearer(token)).status_code == 200
    response = client.get("/ext/users/user-1", headers=bearer(token))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["kind"], body["subject"], body["issuer"]) == ("external", "user-1", oidc.issuer)
    assert body["roles"] == ["reader"]
    # Another user's record: authenticated, but the rule fails.
    assert_refused(client.get("/ext/users/user-2", headers=bearer(token)), "permission_denied", 403)


TIME_CLAIMS = ("exp", "iat", "nbf")


def now() -> int:
    """The current Unix time."""
    return int(time.time())


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        # Whole numbers under exp/iat/nbf are seconds from the moment the test runs.
        ({"exp": -60, "iat": -400, "nbf": -400}, "token_expired"),
        ({"nbf": 3600}, "token_not_yet_valid"),
        ({"iat": 3600}, "token_not_yet_valid"),
        ({"aud": "another-api"}, "invalid_token"),
        ({"aud": None}, "invalid_token"),
        ({"exp": None}, "invalid_token"),
        ({"exp": "tomorrow"}, "invalid_token"),
        ({"sub": None}, "invalid_token"),
        ({"iss": "https://idp.invalid/tenant"}, "unknown_issuer"),
        ({"iss": None}, "unknown_issuer"),
    ],
    ids=[
        "expired",
        "nbf-future",
        "iat-future",
        "wrong-aud",
        "no-aud",
        "no-exp",
        "exp-not-number",
        "no-sub",
        "unknown-iss",
        "no-iss",
    ],
)
def test_bad_claims_are_refused(
    oidc: LocalIssuer, issuer_app: IssuerApp, claims: dict[str, object], code: str
) -> None:
    client = issuer_app(oidc.config(leeway=5)).test_client()
    timed = {
        name: now() + value if name in TIME_CLAIMS and type(value) is int else value
        for name, value in claims.items()
    }
    assert_refused(client.get("/api/restricted", headers=bearer(oidc.token(**timed))), code)


def test_leeway_tolerates_small_clock_skew(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    client = issuer_app(oidc.config(leeway=30)).test_client()
    token = oidc.token(exp=now() - 10)
    assert client.get("/api/restricted", headers=bearer(token)).status_code == 200


def test_issuer_must_match_exactly(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    client = issuer_app(oidc.config()).test_client()
    token = oidc.token(iss=oidc.issuer + "/")
    assert_refused(client.get("/api/restricted", headers=bearer(token)), "unknown_issuer")


def test_token_signed_by_another_issuers_key_is_refused(
    httpserver_ipv4: HTTPServer, issuer_app: IssuerApp, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    first = LocalIssuer(httpserver_ipv4, "first", [rsa_key])
    second = LocalIssuer(httpserver_ipv4, "second", [ec_key])
    client = issuer_app(first.config(), second.config()).test_client()
    # Claims the second issuer but is signed with the first one's key (its kid included).
    forged = second.token(key=rsa_key)
    assert_refused(client.get("/api/restricted", headers=bearer(forged)), "invalid_token")


def forge(oidc: LocalIssuer, header: dict[str, object], key: bytes | None, alg: str) -> str:
    """A token for ``oidc`` with a chosen header, signed by PyJWT with ``key`` and ``alg``."""
    return jwt.encode(oidc.claims(), key, algorithm=alg, headers=header)


def public_pem(key: SigningKey) -> bytes:
    """The public key as PEM: what an attacker has."""
    return key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_alg_none_is_refused(oidc: LocalIssuer, issuer_app: IssuerApp, rsa_key: SigningKey):
    client = issuer_app(oidc.config()).test_client()
    token = forge(oidc, {"kid": rsa_key.kid}, None, "none")
    assert token.endswith(".")  # really unsigned
    assert_refused(client.get("/api/restricted", headers=bearer(token)), "invalid_token")


def hs256_signed(key: bytes, header: dict[str, object], claims: dict[str, object]) -> str:
    """A compact JWS made by hand (PyJWT rightly refuses to HMAC with a PEM public key)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_hs256_signed_with_the_public_key_is_refused(
    oidc: LocalIssuer, issuer_app: IssuerApp, rsa_key: SigningKey
) -> None:
    client = issuer_app(oidc.config()).test_client()
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}
    token = hs256_signed(public_pem(rsa_key), header, oidc.claims())
    assert_refused(client.get("/api/restricted", headers=bearer(token)), "invalid_token")


def test_missing_kid_is_refused(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    client = issuer_app(oidc.config()).test_client()
    token = oidc.token(headers={"kid": None})
    assert "kid" not in jwt.get_unverified_header(token)
    assert_refused(client.get("/api/restricted", headers=bearer(token)), "invalid_token")


def test_algorithm_outside_the_allow_list_is_refused(
    oidc: LocalIssuer, issuer_app: IssuerApp, rsa_key: SigningKey
) -> None:
    client = issuer_app(oidc.config()).test_client()  # RS256 only
    ps256 = jwt.encode(oidc.claims(), rsa_key.private, algorithm="PS256", headers={"kid": "rsa-1"})
    assert_refused(client.get("/api/restricted", headers=bearer(ps256)), "invalid_token")


@pytest.mark.parametrize("parameter", ["jku", "x5u"])
def test_key_url_headers_are_never_fetched(
    oidc: LocalIssuer,
    issuer_app: IssuerApp,
    httpserver_ipv4: HTTPServer,
    rsa_key: SigningKey,
    parameter: str,
) -> None:
    attacker_key = SigningKey.ec("attacker")
    attacker = LocalIssuer(httpserver_ipv4, "attacker", [attacker_key])
    client = issuer_app(oidc.config(algorithms=["RS256", "ES256"])).test_client()
    # A genuine token still works (the header is ignored) ...
    genuine = oidc.token(headers={parameter: attacker.jwks_uri})
    assert client.get("/api/restricted", headers=bearer(genuine)).status_code == 200
    # ... a token signed by the key behind the header does not, and that URL is never read.
    forged = oidc.token(key=attacker_key, headers={parameter: attacker.jwks_uri})
    assert_refused(client.get("/api/restricted", headers=bearer(forged)), "invalid_token")
    assert attacker.served == {"/.well-known/openid-configuration": 0, "/jwks.json": 0}
    assert all("/attacker/" not in path for path in request_log_paths(httpserver_ipv4))


def test_embedded_jwk_header_is_not_trusted(
    oidc: LocalIssuer, issuer_app: IssuerApp, rsa_key: SigningKey
) -> None:
    attacker_key = SigningKey.rsa("rsa-1")  # same kid, different key
    client = issuer_app(oidc.config()).test_client()
    forged = oidc.token(key=attacker_key, headers={"jwk": attacker_key.jwk()})
    assert_refused(client.get("/api/restricted", headers=bearer(forged)), "invalid_token")


@pytest.mark.parametrize(
    "token",
    ["a.b.c", "e30.e30.", "x" * 9000 + ".a.b", "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln"],
    ids=["garbage", "empty-json", "too-long", "payload-not-json"],
)
def test_malformed_tokens_are_401_not_500(
    oidc: LocalIssuer, issuer_app: IssuerApp, token: str
) -> None:
    client = issuer_app(oidc.config()).test_client()
    response = client.get("/api/restricted", headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["code"] in ("invalid_token", "unknown_issuer")


def test_two_issuers_at_once_rsa_and_ec(
    httpserver_ipv4: HTTPServer, issuer_app: IssuerApp, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    rsa_issuer = LocalIssuer(httpserver_ipv4, "rsa-tenant", [rsa_key])
    ec_issuer = LocalIssuer(httpserver_ipv4, "ec-tenant", [ec_key])
    app = issuer_app(rsa_issuer.config(), ec_issuer.config(discovery=True, jwks_uri=None))
    app.add_url_rule(
        "/ext/rsa-only",
        "rsa_only",
        protected_route(allowed_issuers=[rsa_issuer.issuer])(principal_response),
    )
    client = app.test_client()
    for issuer in (rsa_issuer, ec_issuer):
        body = client.get("/api/restricted", headers=bearer(issuer.token()))
        assert body.status_code == 200, body.get_json()
    rsa_only = client.get("/ext/rsa-only", headers=bearer(rsa_issuer.token()))
    assert rsa_only.get_json()["issuer"] == rsa_issuer.issuer
    refused = client.get("/ext/rsa-only", headers=bearer(ec_issuer.token()))
    assert_refused(refused, "permission_denied", 403)
    assert ec_issuer.served["/.well-known/openid-configuration"] == 1


def test_shared_key_issuer(
    issuer_app: IssuerApp, oidc: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "internal-issuer-shared-key-0123456789abcdef"
    monkeypatch.setenv("TEST_INTERNAL_ISSUER_KEY", secret)
    internal = {"issuer": "internal-service", "audience": "api-1"}
    app = issuer_app({**internal, "hs_key_env": "TEST_INTERNAL_ISSUER_KEY"}, oidc.config())
    client = app.test_client()
    claims = {**oidc.claims(), "iss": "internal-service", "roles": ["reader"]}
    token = jwt.encode(claims, secret, algorithm="HS256")
    assert client.get("/ext/users/user-1", headers=bearer(token)).status_code == 200
    wrong = jwt.encode(claims, secret + "x", algorithm="HS256")
    assert_refused(client.get("/api/restricted", headers=bearer(wrong)), "invalid_token")
    # The JWKS issuer never accepts HS256, whatever key signed it.
    hs_for_jwks = jwt.encode(oidc.claims(), secret, algorithm="HS256", headers={"kid": "rsa-1"})
    assert_refused(client.get("/api/restricted", headers=bearer(hs_for_jwks)), "invalid_token")


def test_without_issuers_a_jwt_is_refused(make_app: Callable[..., Flask], oidc: LocalIssuer):
    client = make_app().test_client()
    assert_refused(client.get("/api/restricted", headers=bearer(oidc.token())), "invalid_token")
    assert oidc.jwks_fetches == 0


def test_verification_is_cached_but_time_is_checked_on_every_use(
    oidc: LocalIssuer, issuer_app: IssuerApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = issuer_app(oidc.config(leeway=0))
    client = app.test_client()
    token = oidc.token(exp=now() + 60)
    verifier = app.extensions[EXTENSION]
    for _ in range(3):
        assert client.get("/api/restricted", headers=bearer(token)).status_code == 200
    info = verifier._verify_cached.cache_info()
    assert (info.hits, info.misses) == (2, 1)
    monkeypatch.setattr(verifier, "clock", lambda: time.time() + 61)
    assert_refused(client.get("/api/restricted", headers=bearer(token)), "token_expired")


def test_principal_names_the_token(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    client = issuer_app(oidc.config()).test_client()
    jti = uuid.uuid4().hex
    token = oidc.token(jti=jti, roles=["reader"], preferred_username="alice")
    body = client.get("/ext/users/user-1", headers=bearer(token)).get_json()
    assert (body["credential_id"], body["name"]) == (jti, "alice")


def test_issuers_check_prints_discovery_and_keys(
    httpserver_ipv4: HTTPServer,
    issuer_app: IssuerApp,
    rsa_key: SigningKey,
    ec_key: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = LocalIssuer(httpserver_ipv4, "checked", [rsa_key, ec_key])
    monkeypatch.setenv("TEST_CHECK_KEY", "k" * 40)
    internal = {"issuer": "internal", "audience": "x", "hs_key_env": "TEST_CHECK_KEY"}
    app = issuer_app(provider.config(discovery=True, jwks_uri=None), internal)
    result = app.test_cli_runner().invoke(args=["issuers", "check"])
    assert result.exit_code == 0, result.output
    assert f"discovery {provider.issuer}/.well-known/openid-configuration: issuer matches" in (
        result.output
    )
    assert f"jwks {provider.jwks_uri}: 2 signing key(s)" in result.output
    assert "kid rsa-1: RSA RS256" in result.output
    assert "kid ec-1: EC ES256" in result.output
    assert "shared key from $TEST_CHECK_KEY (HS256); nothing to fetch" in result.output
    assert "k" * 40 not in result.output


def test_issuers_check_fails_when_a_provider_is_down(
    oidc: LocalIssuer, issuer_app: IssuerApp
) -> None:
    oidc.available = False
    result = issuer_app(oidc.config()).test_cli_runner().invoke(args=["issuers", "check"])
    assert result.exit_code == 1
    assert f"FAILED: GET {oidc.jwks_uri} failed" in result.output


def test_issuers_commands_without_issuers_say_how_to_configure(
    make_app: Callable[..., Flask],
) -> None:
    result = make_app().test_cli_runner().invoke(args=["issuers", "check"])
    assert result.exit_code != 0
    assert "set TOKEN_ISSUERS or TOKEN_ISSUERS_FILE" in result.output
