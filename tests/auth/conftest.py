"""Fixtures for third-party issuer tests: keys (made once), a local OIDC issuer, test routes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Blueprint, Flask, Response, jsonify
from pytest_httpserver import HTTPServer

from auth import and_, match_keys, protected_route, roles_present
from auth.claims import get_claims, has_user_role, normalize_claims
from auth.principal import current_principal
from tests.support.oidc import LocalIssuer, SigningKey

external_bp = Blueprint("external_test", __name__)


def principal_response() -> Response:
    """What the caller's Principal says, for the tests to compare."""
    principal = current_principal()
    assert principal is not None
    return jsonify(
        kind=principal.kind,
        subject=principal.subject,
        roles=sorted(principal.roles),
        scopes=sorted(principal.scopes),
        issuer=principal.issuer,
        name=principal.name,
        credential_id=principal.credential_id,
    )


@external_bp.get("/ext/users/<user_id>")
@protected_route(and_(roles_present("reader"), match_keys(user_id="sub")), credentials="external")
def user_resource(user_id: str) -> Response:
    """Readers may read their own record only."""
    return principal_response()


@external_bp.get("/ext/orders")
@protected_route(scopes="orders:read")
def orders() -> Response:
    """Needs the orders:read scope, from any credential."""
    return principal_response()


@external_bp.get("/ext/claims")
@normalize_claims
def claims_view(claims: dict[str, object]) -> Response:
    """Seed 002's helpers: claims passed in, get_claims(), has_user_role()."""
    return jsonify(
        claims=claims, reader=has_user_role("reader", claims), same=claims == get_claims()
    )


@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    """The first RSA signing key (2048 bits, made once per run)."""
    return SigningKey.rsa("rsa-1")


@pytest.fixture(scope="session")
def rsa_key_2() -> SigningKey:
    """A second RSA key: the rotation target."""
    return SigningKey.rsa("rsa-2")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    """A P-256 key (ES256)."""
    return SigningKey.ec("ec-1")


@pytest.fixture
def oidc(httpserver_ipv4: HTTPServer, rsa_key: SigningKey) -> LocalIssuer:
    """An RSA issuer at http://127.0.0.1:<port>/tenant-a."""
    return LocalIssuer(httpserver_ipv4, "tenant-a", [rsa_key])


@pytest.fixture
def issuer_app(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    """``issuer_app(entry, ...)``: an app accepting those TOKEN_ISSUERS, with the test routes."""

    def build(*entries: dict[str, object], **settings: object) -> Flask:
        app = make_app(TOKEN_ISSUERS=list(entries), **settings)
        app.register_blueprint(external_bp)
        return app

    return build


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}
