"""The deny-list in real Redis: `flask issuers deny`, `undeny` and `denied`, each seen by every
worker's next request."""

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


def issuers(app: Flask, *args: str, code: int = 0) -> str:
    """Run ``flask issuers ARGS``; assert its exit code; return its output."""
    result = app.test_cli_runner().invoke(args=["issuers", *args])
    assert result.exit_code == code, result.output
    return result.output


def deny(app: Flask, *args: str) -> str:
    """Run ``flask issuers deny ARGS``; its output (fails the test if it failed)."""
    return issuers(app, "deny", *args)


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
        (["deny"], "exactly one of --jti or --subject"),
        (["deny", "--jti", "a", "--subject", "b"], "exactly one of --jti or --subject"),
        (["deny", "--jti", "a", "--issuer", "nobody"], "'nobody' is not a configured issuer"),
        (["deny", "--jti", "a", "--expires", "next week"], "is not a time"),
        (["undeny"], "exactly one of --jti or --subject"),
        (["undeny", "--jti", "a", "--subject", "b"], "exactly one of --jti or --subject"),
        (["undeny", "--jti", "a", "--issuer", "nobody"], "'nobody' is not a configured issuer"),
        (["denied", "--issuer", "nobody"], "'nobody' is not a configured issuer"),
    ],
)
def test_usage_errors(deny_app: Callable[[], Flask], args: list[str], message: str) -> None:
    result = deny_app().test_cli_runner().invoke(args=["issuers", *args])
    assert result.exit_code == 2  # click's usage error
    assert message in result.output


@pytest.mark.parametrize(
    "args", [["deny", "--jti", "a"], ["undeny", "--jti", "a"], ["denied"]], ids=str
)
def test_the_commands_need_redis(oidc: LocalIssuer, issuer_app: IssuerApp, args: list[str]) -> None:
    output = issuers(issuer_app(oidc.config()), *args, code=1)
    assert "The deny-list lives in Redis; set REDIS_URL." in output


def test_several_issuers_need_issuer_option(
    oidc: LocalIssuer, issuer_app: IssuerApp, redis_url: str
) -> None:
    second = {**oidc.config(), "issuer": "https://second.test", "name": "second"}
    app = issuer_app(oidc.config(), second, REDIS_URL=redis_url)
    for command in ("deny", "undeny"):
        output = issuers(app, command, "--jti", "a", code=2)
        assert "pass --issuer (tenant-a, second)" in output
    # The list shows every issuer unless one is named.
    assert issuers(app, "denied").splitlines() == [
        "tenant-a: nothing denied.",
        "second: nothing denied.",
    ]


@pytest.mark.parametrize("option", ["--jti", "--subject"])
def test_a_lifted_denial_is_accepted_again_by_every_worker_at_once(
    oidc: LocalIssuer, deny_app: Callable[[], Flask], deny_name: str, option: str
) -> None:
    worker_a, worker_b = deny_app(), deny_app()
    lifted, kept = uuid.uuid4().hex, uuid.uuid4().hex
    issued = int(time.time()) - 60
    # One value serves as the jti and as the subject: the option chooses which is denied.
    token = oidc.token(jti=lifted, sub=lifted, iat=issued)
    other = oidc.token(jti=kept, sub=kept, iat=issued)
    deny(worker_a, option, lifted)
    deny(worker_a, option, kept)
    # Both workers have looked the denials up (now served from memory).
    for worker in (worker_a, worker_b):
        assert [code(worker, token), code(worker, token)] == ["token_revoked"] * 2
    output = issuers(worker_b, "undeny", option, lifted)
    denied = (
        f"the token {lifted} of {deny_name}. Every worker accepts it"
        if option == "--jti"
        else f"the tokens of {lifted} at {deny_name}. Every worker accepts them"
    )
    assert output == f"Lifted the denial of {denied} again from its next request.\n"
    assert [code(worker_a, token), code(worker_b, token)] == [200, 200]
    assert [code(worker_a, other), code(worker_b, other)] == ["token_revoked"] * 2


@pytest.mark.parametrize(
    ("option", "what"),
    [
        ("--jti", "the token {value} of {issuer}"),
        ("--subject", "the tokens of {value} at {issuer}"),
    ],
)
def test_lifting_what_is_not_denied_is_an_error(
    deny_app: Callable[[], Flask], deny_name: str, option: str, what: str
) -> None:
    app = deny_app()
    value = uuid.uuid4().hex
    output = issuers(app, "undeny", option, value, code=1)
    assert output == (
        f"Error: There is no deny-list entry for {what.format(value=value, issuer=deny_name)}: "
        "it was never made, was lifted already, or expired. `flask issuers denied` lists the "
        "entries.\n"
    )
    # Lifting twice: the second time finds nothing.
    deny(app, option, value)
    issuers(app, "undeny", option, value)
    assert "There is no deny-list entry" in issuers(app, "undeny", option, value, code=1)


def test_denied_lists_the_entries_as_undeny_takes_them(
    deny_app: Callable[[], Flask], deny_name: str
) -> None:
    app = deny_app()
    assert issuers(app, "denied") == f"{deny_name}: nothing denied.\n"
    deny(app, "--jti", "b-token", "--expires", "2999-01-01T00:00:00Z")
    deny(app, "--jti", "a-token")
    deny(app, "--subject", "user-3", "--not-before", "2030-01-31T12:00:00Z", "--keep-hours", "2")
    lines = issuers(app, "denied").splitlines()
    assert len(lines) == 4 and lines[0] == f"{deny_name}:"
    assert lines[1].startswith("  --jti a-token  kept until ")  # 24 hours from now
    assert lines[2] == "  --jti b-token  kept until 2999-01-01 00:00:00 UTC"
    assert lines[3].startswith("  --subject user-3  issued before 2030-01-31 12:00:00 UTC; kept")
    issuers(app, "undeny", "--jti", "a-token")
    assert "a-token" not in issuers(app, "denied")


def test_redis_down_is_503_not_a_pass(oidc: LocalIssuer, issuer_app: IssuerApp) -> None:
    app = issuer_app(oidc.config(), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/api/restricted", headers=bearer(oidc.token()))
    assert response.status_code == 503
    assert "deny-list" in response.get_json()["message"]
