"""The deny-list in real Redis: `flask issuers deny`, seen by every worker's next request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
import redis
from flask import Flask

from auth.denylist import KEY_PREFIX
from tests.auth.conftest import bearer
from tests.support.oidc import LocalIssuer
from tests.support.services import free_port

IssuerApp = Callable[..., Flask]


@pytest.fixture
def deny_name(redis_unique: str) -> str:
    """The issuer's name, unique to this test so that its deny-list keys are too."""
    return redis_unique


@pytest.fixture
def deny_app(
    oidc: LocalIssuer, issuer_app: IssuerApp, redis_url: str, deny_name: str
) -> Callable[[], Flask]:
    """``deny_app()``: a new app (a worker) sharing the issuer and Redis."""
    return lambda: issuer_app(oidc.config(name=deny_name), REDIS_URL=redis_url)


def code(app: Flask, token: str) -> str | int:
    """200, or the error code of GET /api/restricted with ``token``."""
    response = app.test_client().get("/api/restricted", headers=bearer(token))
    return 200 if response.status_code == 200 else response.get_json()["code"]


def deny(app: Flask, *args: str) -> str:
    """Run ``flask issuers deny ARGS``; its output (fails the test if it failed)."""
    result = app.test_cli_runner().invoke(args=["issuers", "deny", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_denied_jti_is_refused_by_every_worker_at_once(
    oidc: LocalIssuer, deny_app: Callable[[], Flask], redis_url: str, deny_name: str
) -> None:
    worker_a, worker_b = deny_app(), deny_app()
    jti, expires = uuid.uuid4().hex, int(time.time()) + 120
    token, other = oidc.token(jti=jti, exp=expires), oidc.token()
    # Both workers have verified the token and looked it up (now served from memory).
    for worker in (worker_a, worker_b):
        assert [code(worker, token), code(worker, token), code(worker, other)] == [200] * 3
    output = deny(worker_a, "--jti", jti, "--expires", str(expires))
    assert f"Denied the token {jti} of {deny_name}" in output
    assert [code(worker_a, token), code(worker_b, token)] == ["token_revoked"] * 2
    assert code(worker_b, other) == 200
    ttl = redis.Redis.from_url(redis_url).ttl(f"{KEY_PREFIX}jti:{deny_name}:{jti}")
    assert 110 <= ttl <= 121  # kept until the token's exp, not longer


def test_subject_not_before_denies_older_tokens_only(
    oidc: LocalIssuer, deny_app: Callable[[], Flask]
) -> None:
    app = deny_app()
    now = int(time.time())
    older = oidc.token(sub="user-9", iat=now - 60)
    no_iat = oidc.token(sub="user-9", iat=None)
    stranger = oidc.token(sub="user-8", iat=now - 60)
    assert code(app, older) == 200
    deny(app, "--subject", "user-9", "--not-before", str(now - 30), "--keep-hours", "2")
    assert code(app, older) == "token_revoked"
    assert code(app, no_iat) == "token_revoked"
    assert code(app, stranger) == 200
    assert code(app, oidc.token(sub="user-9", iat=now)) == 200


def test_iso_times_are_accepted(oidc: LocalIssuer, deny_app: Callable[[], Flask]) -> None:
    app = deny_app()
    token = oidc.token(sub="user-7", iat=int(time.time()) - 3600)
    deny(app, "--subject", "user-7", "--not-before", "2999-01-01T00:00:00Z")
    assert code(app, token) == "token_revoked"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --jti or --subject"),
        (["--jti", "a", "--subject", "b"], "exactly one of --jti or --subject"),
        (["--jti", "a", "--issuer", "nobody"], "'nobody' is not a configured issuer"),
        (["--jti", "a", "--expires", "next week"], "is not a time"),
    ],
)
def test_deny_usage_errors(deny_app: Callable[[], Flask], args: list[str], message: str) -> None:
    result = deny_app().test_cli_runner().invoke(args=["issuers", "deny", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_deny_needs_redis(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    result = (
        issuer_app(oidc.config()).test_cli_runner().invoke(args=["issuers", "deny", "--jti", "a"])
    )
    assert result.exit_code != 0
    assert "set REDIS_URL" in result.output


def test_several_issuers_need_issuer_option(
    oidc: LocalIssuer, issuer_app: IssuerApp, redis_url: str
) -> None:
    second = {**oidc.config(), "issuer": "https://second.test", "name": "second"}
    app = issuer_app(oidc.config(), second, REDIS_URL=redis_url)
    result = app.test_cli_runner().invoke(args=["issuers", "deny", "--jti", "a"])
    assert result.exit_code != 0
    assert "pass --issuer (tenant-a, second)" in result.output


def test_redis_down_is_503_not_a_pass(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    app = issuer_app(oidc.config(), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/api/restricted", headers=bearer(oidc.token()))
    assert response.status_code == 503
    assert "deny-list" in response.get_json()["message"]
