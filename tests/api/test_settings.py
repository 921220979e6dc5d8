"""Settings: defaults, every problem reported at once, production refusals, dev secret key."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from api import create_app
from api.settings import (
    SECRET_KEY_MIN_BITS,
    ConfigError,
    estimated_entropy_bits,
    load_or_create_secret_key,
    load_settings,
)
from tests.conftest import PRODUCTION_SECRET_KEY, TEST_SECRET_KEY

GENERATE_HINT = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


def test_defaults_need_no_configuration() -> None:
    config = load_settings({})
    assert config["APP_ENV"] == "development"
    assert config["SESSION_TYPE"] == "filesystem"
    assert config["TOKEN_TTL_SECONDS"] == 900
    assert config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    assert config["CORS_ORIGINS"] == ()


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"APP_ENV": "staging", "TOKEN_TTL_SECONDS": "-5", "SESSION_TYPE": "cookie"})
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("APP_ENV" in p and "development, production" in p for p in problems)
    assert any("TOKEN_TTL_SECONDS" in p and "'-5'" in p for p in problems)
    assert any("SESSION_TYPE" in p and "filesystem, redis" in p for p in problems)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "needs it set"),
        ("short", "at least 32 bytes"),
        ("change-me-change-me-change-me-change-me", "placeholder"),
        ("CHANGE_ME_CHANGE_ME_CHANGE_ME_CHANGE_ME", "placeholder"),
        ("your-secret-key-here-make-it-long-and-random", "placeholder"),
        ("Your_Secret_Key_Goes_Here_1234567890", "placeholder"),
        ("a" * 32, "too predictable"),
        ("abababababababababababababababababab", "too predictable"),
        ("abcdefghijklmnopqrstuvwxyz0123456789", "too predictable"),
        ("0123456789" * 4, "too predictable"),
        ("Qx7Qx7Qx7Qx7Qx7Qx7Qx7Qx7Qx7Qx7Qx7Qx7", "too predictable"),
        (TEST_SECRET_KEY, "placeholder"),  # fine for development tests only
    ],
)
def test_production_refuses_weak_secret(secret: str | None, reason: str) -> None:
    environ = {"APP_ENV": "production"}
    if secret is not None:
        environ["SECRET_KEY"] = secret
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert reason in str(caught.value)
    assert GENERATE_HINT in str(caught.value)
    if secret:
        assert secret not in str(caught.value)  # secrets are never echoed


@pytest.mark.parametrize(
    "generate",
    [
        lambda: secrets.token_urlsafe(48),
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(16),  # 32 hex digits: the shortest accepted length
        lambda: secrets.token_hex(32).upper(),
    ],
    ids=["token_urlsafe(48)", "token_urlsafe(32)", "token_hex(16)", "TOKEN_HEX(32)"],
)
def test_production_accepts_generated_secrets(generate: Callable[[], str]) -> None:
    for _ in range(200):  # a random key is never refused by chance
        secret = generate()
        assert estimated_entropy_bits(secret) >= SECRET_KEY_MIN_BITS, secret
        assert load_settings({"APP_ENV": "production", "SECRET_KEY": secret})


def test_development_accepts_the_test_secret() -> None:
    assert load_settings({"SECRET_KEY": TEST_SECRET_KEY})["SECRET_KEY"] == TEST_SECRET_KEY


def test_production_refuses_debug_and_wildcard_cors_with_credentials() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "APP_ENV": "production",
                "SECRET_KEY": PRODUCTION_SECRET_KEY,
                "FLASK_DEBUG": "1",
                "CORS_ORIGINS": "*",
                "CORS_ALLOW_CREDENTIALS": "true",
            }
        )
    text = str(caught.value)
    assert "FLASK_DEBUG" in text and "CORS_ORIGINS" in text


def test_redis_sessions_need_redis_url() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings({"SESSION_TYPE": "redis"})


def test_production_starts_with_good_settings_and_secure_cookie(tmp_path: Path) -> None:
    app = create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": PRODUCTION_SECRET_KEY,
            "INSTANCE_PATH": str(tmp_path),
        }
    )
    response = app.test_client().get("/api/public")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_development_secret_is_created_once_private_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret_key(tmp_path)
    path = tmp_path / "secret_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) >= 32
    assert load_or_create_secret_key(tmp_path) == first


def test_apps_on_one_instance_share_the_secret(tmp_path: Path) -> None:
    config = {"INSTANCE_PATH": str(tmp_path), "TESTING": True}
    first, second = create_app(config), create_app(config)
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    token = first.test_client().get("/api/public")
    assert token.status_code == 200


def test_cors_sends_no_headers_by_default(client) -> None:
    response = client.get("/", headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_cors_allows_listed_origins_only(make_app: Callable[..., Flask]) -> None:
    client = make_app(CORS_ORIGINS="https://app.test, https://admin.test").test_client()
    allowed = client.get("/", headers={"Origin": "https://app.test"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.test"
    refused = client.get("/", headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in refused.headers
    preflight = client.options(
        "/api/restricted",
        headers={
            "Origin": "https://admin.test",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://admin.test"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_cors_lets_a_browser_app_send_every_credential_and_read_what_the_api_answers(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(CORS_ORIGINS="https://app.test").test_client()
    sent = ["X-Api-Key", "If-Match", "If-None-Match", "Content-Type", "X-Request-ID"]
    preflight = client.options(
        "/api/items/1",
        headers={
            "Origin": "https://app.test",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": ", ".join(sent),
        },
    )
    allowed = {
        h.strip().lower() for h in preflight.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert allowed >= {name.lower() for name in sent}
    answer = client.get("/", headers={"Origin": "https://app.test"})
    exposed = {
        h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert exposed >= {"x-request-id", "etag", "location", "retry-after"}


def test_refresh_token_lifetimes_must_fit_together() -> None:
    config = load_settings({})
    assert config["ACCESS_TOKEN_TTL_SECONDS"] == 900
    assert config["REFRESH_TOKEN_TTL_SECONDS"] == 30 * 86400
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {"REFRESH_TOKEN_TTL_SECONDS": "100", "REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS": "50"}
        )
    assert caught.value.problems == [
        "REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS: 50 is shorter than REFRESH_TOKEN_TTL_SECONDS "
        "(100); make it at least as long."
    ]
    with pytest.raises(ConfigError):
        load_settings({"RATELIMIT_LOGIN_USERNAME": "often"})


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({"ACCEPTED_API_KEY": "short-key"}, "at least 32 bytes"),
        ({"APP_ENV": "production", "SECRET_KEY": PRODUCTION_SECRET_KEY,
          "ACCEPTED_API_KEY": "change-me-change-me-change-me-change-me"}, "placeholder"),
        ({"API_KEY_TTL_DAYS": "400"}, "longer than API_KEY_MAX_TTL_DAYS"),
    ],
)  # fmt: skip
def test_api_key_settings_are_checked(environ: dict[str, str], reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert any(reason in problem for problem in caught.value.problems)
    assert "change-me" not in str(caught.value) and "short-key" not in str(caught.value)
