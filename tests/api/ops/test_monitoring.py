"""Monitoring endpoints: liveness, version, and a readiness check bounded in time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from api.ops.monitoring import register_check
from tests.support.services import free_port


def test_running_needs_nothing(client) -> None:
    response = client.get("/running")
    assert response.status_code == 200
    assert response.get_json() == {"running": True}


def test_version_defaults_to_project_metadata(client) -> None:
    assert client.get("/version").get_json() == {
        "version": "0.1.0",
        "git_commit": "unknown",
        "build_id": "unknown",
    }


def test_version_from_settings(make_app: Callable[..., Flask]) -> None:
    app = make_app(APP_VERSION="2.3.4", GIT_COMMIT="abc1234", BUILD_ID="build-77")
    assert app.test_client().get("/version").get_json() == {
        "version": "2.3.4",
        "git_commit": "abc1234",
        "build_id": "build-77",
    }


def test_healthcheck_passes_with_file_sessions(client) -> None:
    response = client.get("/healthcheck")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "success"
    assert [result["name"] for result in body["results"]] == ["sql", "session_store"]
    assert {result["status"] for result in body["results"]} == {"success"}
    assert all(result["latency_ms"] >= 0 for result in body["results"])


def test_healthcheck_passes_with_redis(make_app: Callable[..., Flask], redis_url: str) -> None:
    app = make_app(SESSION_TYPE="redis", REDIS_URL=redis_url)
    response = app.test_client().get("/healthcheck")
    assert response.status_code == 200, response.get_json()
    names = {result["name"] for result in response.get_json()["results"]}
    assert names == {"sql", "session_store", "rate_limit_storage"}


def test_healthcheck_fails_fast_when_redis_is_down(make_app: Callable[..., Flask]) -> None:
    password = "hunter2-secret"
    app = make_app(SESSION_TYPE="redis", REDIS_URL=f"redis://:{password}@127.0.0.1:{free_port()}/0")
    started = time.monotonic()
    response = app.test_client().get("/healthcheck")
    assert time.monotonic() - started < 2.0
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "failure"
    assert body["error"] == 503 and body["success"] is False
    assert "session_store" in body["message"]
    statuses = {result["name"]: result["status"] for result in body["results"]}
    assert statuses == {
        "sql": "success",
        "session_store": "failure",
        "rate_limit_storage": "failure",
    }
    text = response.get_data(as_text=True)
    assert password not in text
    assert "redis://" not in text


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event the hanging check waits on; set at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def test_hanging_check_is_bounded_and_not_piled_up(
    make_app: Callable[..., Flask], release: threading.Event
) -> None:
    app = make_app(HEALTHCHECK_TIMEOUT_SECONDS="0.3")
    calls: list[int] = []

    def hangs() -> None:
        calls.append(1)
        release.wait(10)

    register_check(app, "slow_dependency", hangs)
    client = app.test_client()
    for _ in range(3):
        started = time.monotonic()
        response = client.get("/healthcheck")
        assert time.monotonic() - started < 1.0
        assert response.status_code == 503
        slow = next(r for r in response.get_json()["results"] if r["name"] == "slow_dependency")
        assert slow == {
            "name": "slow_dependency",
            "status": "failure",
            "latency_ms": pytest.approx(300, abs=200),
            "error": "did not answer within 0.3 s",
        }
    # The still-running check was not started again by the later probes.
    assert calls == [1]


def test_failing_check_names_the_error_type_only(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    def broken() -> None:
        raise ConnectionError("cannot reach postgresql://admin:s3cret-pw@db.internal:5432/app")

    register_check(app, "warehouse", broken)
    response = app.test_client().get("/healthcheck")
    assert response.status_code == 503
    results = {r["name"]: r for r in response.get_json()["results"]}
    assert results["warehouse"]["error"] == "ConnectionError"
    assert results["session_store"]["status"] == "success"
    assert "s3cret-pw" not in response.get_data(as_text=True)
    assert "s3cret-pw" not in caplog.text
    assert "health check warehouse failed" in caplog.text.lower()


def test_check_names_are_unique(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="session_store"):
        register_check(app, "session_store", lambda: None)
