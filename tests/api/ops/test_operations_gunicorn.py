"""Under gunicorn with 2 workers: metrics add up across workers, rate limits are shared (Redis)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from api.ops.batches import IDLE_SECONDS
from tests.support.gunicorn import Server, gunicorn
from tests.support.operations import delete_redis_keys, redis_url_or_skip

TOKEN_LIMIT = 5
BURST = 12
SLOW_CALLS = 16

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    """One 2-worker server for the module: Redis rate limits, multiprocess metrics, JSON logs."""
    redis_url = redis_url_or_skip()
    base = tmp_path_factory.mktemp("ops-gunicorn")
    metrics_dir = base / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over from an earlier server")
    prefix = f"test-{uuid.uuid4().hex}"
    env = {
        "APP_ENV": "development",
        "SECRET_KEY": "",
        "INSTANCE_PATH": str(base / "instance"),
        "SESSION_TYPE": "filesystem",
        "REDIS_URL": redis_url,
        "RATELIMIT_TOKEN": f"{TOKEN_LIMIT}/minute",
        "RATELIMIT_KEY_PREFIX": prefix,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_FORMAT": "json",
    }
    try:
        log_path = base / "gunicorn.log"
        with gunicorn(
            env, log_path, workers=2, app="tests.support.slow_app:create_app()"
        ) as running:
            yield running, metrics_dir
    finally:
        delete_redis_keys(redis_url, prefix)


def burst(url: str, calls: int) -> list[requests.Response]:
    """``calls`` GETs, 8 at a time, so that both workers take some."""
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: requests.get(url, timeout=10), range(calls)))


def requests_total(server: Server, route: str) -> float:
    """http_requests_total summed over statuses, for GET on ``route``."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total"
        and sample.labels["route"] == route
        and sample.labels["method"] == "GET"
    )


def test_metrics_add_up_over_workers(server: tuple[Server, Path]) -> None:
    running, metrics_dir = server
    # Slow calls, 8 at a time: one worker cannot take them all.
    assert {r.status_code for r in burst(f"{running.url}/t/slow", SLOW_CALLS)} == {200}
    # Whichever worker answers the scrape reports every worker's counts: its own at once, the
    # other's once that worker records its batch (within a second of its last request).
    deadline = time.monotonic() + IDLE_SECONDS + 3
    while requests_total(running, "/t/slow") < SLOW_CALLS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [requests_total(running, "/t/slow") for _ in range(4)] == [SLOW_CALLS] * 4
    pids = {name.rsplit("_", 1)[1] for name in os.listdir(metrics_dir) if name.endswith(".db")}
    assert "999999.db" not in pids  # wiped at start by gunicorn.conf.py
    assert len(pids) >= 2, f"only one worker served: {pids}"


def json_log(server: Server) -> list[dict[str, object]]:
    """The JSON lines the app wrote to gunicorn's log."""
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


@pytest.mark.parametrize("path", ["/api/public", "/t/slow-limited"])
def test_limit_is_shared_by_workers(server: tuple[Server, Path], path: str) -> None:
    running, _ = server
    responses = burst(f"{running.url}{path}", BURST)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * TOKEN_LIMIT + [429] * (BURST - TOKEN_LIMIT)
    for response in responses:
        if response.status_code == 429:
            assert response.json()["error"] == 429
            assert 1 <= int(response.headers["Retry-After"]) <= 61
    if path == "/t/slow-limited":
        # The slow route spreads over both workers, so the count cannot be per process.
        # A worker's last access lines are written within a second once it is idle.
        deadline = time.monotonic() + 3
        while True:
            pids = {e["pid"] for e in json_log(running) if e.get("route") == path}
            if len(pids) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(pids) == 2


def test_access_log_lines_are_json(server: tuple[Server, Path]) -> None:
    running, _ = server
    response = requests.get(
        f"{running.url}/", headers={"X-Request-ID": "gunicorn-json-1"}, timeout=10
    )
    assert response.status_code == 200
    # Access lines are written in batches (an idle worker's within a second): wait for ours.
    deadline = time.monotonic() + 3
    while True:
        mine = [e for e in json_log(running) if e.get("request_id") == "gunicorn-json-1"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(mine) == 1
    assert mine[0]["logger"] == "api.access"
    assert mine[0]["route"] == "/" and mine[0]["status"] == 200
    assert mine[0]["remote_ip"] == "127.0.0.1"


def test_preloaded_workers_each_write_their_access_lines(tmp_path: Path) -> None:
    """With --preload the app (and its log writer) is built before the fork: each worker
    must still start its own flusher and write its own lines."""
    env = {
        "APP_ENV": "development",
        "SECRET_KEY": "",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SESSION_TYPE": "filesystem",
        "RATELIMIT_ENABLED": "0",
        "LOG_FORMAT": "json",
    }
    with gunicorn(
        env,
        tmp_path / "gunicorn.log",
        workers=2,
        app="tests.support.slow_app:create_app()",
        extra_args=("--preload",),
    ) as running:
        assert {r.status_code for r in burst(f"{running.url}/t/slow", SLOW_CALLS)} == {200}
        # Access lines are written in batches (an idle worker's within a second): wait.
        deadline = time.monotonic() + 5
        while True:
            lines = [e for e in json_log(running) if e.get("route") == "/t/slow"]
            if len(lines) >= SLOW_CALLS or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert len(lines) == SLOW_CALLS
    pids = {line["pid"] for line in lines}
    assert len(pids) == 2, f"lines from workers {pids} only"
