"""require_principal: the request's Principal, or a 401 when nobody was authenticated."""

from __future__ import annotations

import pytest
from flask import Flask, g, jsonify

from auth.auth import requires_auth
from auth.errors import HEADER_MISSING, AuthError
from auth.principal import USER, Principal, require_principal
from tests.conftest import get_token


def test_require_principal_returns_the_requests_principal(app: Flask) -> None:
    principal = Principal(kind=USER, subject="user-1")
    with app.test_request_context():
        g.principal = principal
        assert require_principal() is principal


def test_require_principal_refuses_an_unauthenticated_request(app: Flask) -> None:
    with app.test_request_context(), pytest.raises(AuthError) as refused:
        require_principal()
    assert refused.value.status_code == 401
    assert refused.value.error == HEADER_MISSING


@pytest.fixture
def app_with_whoami(app: Flask) -> Flask:
    """The app plus the same view with and without ``requires_auth``."""

    def whoami():
        return jsonify(subject=require_principal().subject)

    app.add_url_rule("/t/protected", "protected", requires_auth()(whoami))
    app.add_url_rule("/t/forgotten", "forgotten", whoami)
    return app


def test_a_view_without_its_decorator_answers_401_not_500(app_with_whoami: Flask) -> None:
    client = app_with_whoami.test_client()
    headers = {"Authorization": f"Bearer {get_token(client)}"}
    allowed = client.get("/t/protected", headers=headers)
    assert allowed.status_code == 200 and len(allowed.get_json()["subject"]) == 32
    refused = client.get("/t/forgotten", headers=headers)
    assert refused.status_code == 401
    assert refused.get_json()["code"] == HEADER_MISSING["code"]
    assert refused.get_json()["success"] is False
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
