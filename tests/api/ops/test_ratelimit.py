"""Rate limits: token issuing by default, @rate_limit on any route, 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from api.ops.ratelimit import rate_limit
from tests.support.services import free_port


def assert_429(response) -> None:
    """The standard error body, status 429, Retry-After in whole seconds."""
    assert response.status_code == 429
    body = response.get_json()
    assert body["error"] == 429 and body["success"] is False
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "2 per 1 minute" in body["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 61


def test_token_issuing_is_limited(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATELIMIT_TOKEN="2/minute").test_client()
    assert [client.get("/api/public").status_code for _ in range(2)] == [200, 200]
    assert_429(client.get("/api/public"))
    # Other routes are not limited by it.
    assert client.get("/").status_code == 200


def test_limits_can_be_switched_off(make_app: Callable[..., Flask]) -> None:
    client = make_app(RATELIMIT_TOKEN="2/minute", RATELIMIT_ENABLED="0").test_client()
    assert {client.get("/api/public").status_code for _ in range(5)} == {200}


def test_decorator_on_any_route(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.post("/t/things")
    @rate_limit("2/minute")
    def create_thing() -> dict[str, bool]:
        return {"created": True}

    client = app.test_client()
    assert [client.post("/t/things").status_code for _ in range(2)] == [200, 200]
    assert_429(client.post("/t/things"))
    # Another app (another process in production) keeps its own memory counters.
    other = make_app()
    other.add_url_rule("/t/things", "create_thing", create_thing, methods=["POST"])
    assert other.test_client().post("/t/things").status_code == 200


def test_redis_counters_are_shared_between_instances(
    make_app: Callable[..., Flask], redis_url: str, ratelimit_prefix: str
) -> None:
    settings = {
        "REDIS_URL": redis_url,
        "RATELIMIT_TOKEN": "2/minute",
        "RATELIMIT_KEY_PREFIX": ratelimit_prefix,
    }
    first, second = make_app(**settings).test_client(), make_app(**settings).test_client()
    assert first.get("/api/public").status_code == 200
    assert second.get("/api/public").status_code == 200
    assert_429(first.get("/api/public"))
    assert_429(second.get("/api/public"))


def test_redis_down_falls_back_to_memory(make_app: Callable[..., Flask]) -> None:
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", RATELIMIT_TOKEN="2/minute")
    client = app.test_client()
    assert [client.get("/api/public").status_code for _ in range(2)] == [200, 200]
    assert_429(client.get("/api/public"))
