"""The Redis session cache: a logout anywhere is seen by the next request everywhere."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import get_token
from tests.support.services import port_open, unavailable

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def instances(make_app: Callable[..., Flask]) -> tuple[Flask, Flask]:
    """Two app instances (as on two machines) sharing one Redis and one SECRET_KEY."""
    if not port_open("127.0.0.1", 6379):
        unavailable("Redis", "nothing listens on 127.0.0.1:6379")
    first = make_app(SESSION_TYPE="redis", REDIS_URL=REDIS_URL)
    second = make_app(SESSION_TYPE="redis", REDIS_URL=REDIS_URL)
    yield first, second
    for app in (first, second):
        app.extensions["session_cache"].close()


def restricted(client: FlaskClient, token: str) -> int:
    return client.get("/api/restricted", headers={"Authorization": f"Bearer {token}"}).status_code


def same_browser(app: Flask, other: FlaskClient) -> FlaskClient:
    """A client of ``app`` holding the session cookie of ``other``."""
    cookie = other.get_cookie("session")
    assert cookie is not None
    client = app.test_client()
    client.set_cookie("session", cookie.value)
    return client


def cached_on_second(instances: tuple[Flask, Flask]) -> tuple[FlaskClient, FlaskClient, str]:
    """A browser's clients of the first and second instance and its token, the session
    already cached by the second (one protected call there)."""
    first, second = instances
    on_first = first.test_client()
    token = get_token(on_first)
    on_second = same_browser(second, on_first)
    assert restricted(on_second, token) == 200
    return on_first, on_second, token


def test_repeated_calls_are_served_from_the_cache(instances: tuple[Flask, Flask]) -> None:
    app, _ = instances
    client = app.test_client()
    token = get_token(client)
    cache = app.extensions["session_cache"]
    hits = cache.hits
    assert [restricted(client, token) for _ in range(5)] == [200] * 5
    assert cache.hits >= hits + 4


def test_logout_on_one_instance_is_seen_at_once_by_the_other(
    instances: tuple[Flask, Flask],
) -> None:
    on_first, on_second, token = cached_on_second(instances)
    assert restricted(on_second, token) == 200
    assert on_first.delete("/api/session").status_code == 200
    assert restricted(on_second, token) == 401


def test_lost_tracking_connection_empties_the_cache(instances: tuple[Flask, Flask]) -> None:
    on_first, on_second, token = cached_on_second(instances)
    cache = instances[1].extensions["session_cache"]
    assert cache.client_id is not None
    # The tracking connection dies, then the logout happens: its invalidation is never sent
    # to the second instance, which must not trust its copy any more.
    redis.Redis.from_url(REDIS_URL).client_kill_filter(_id=cache.client_id)
    assert on_first.delete("/api/session").status_code == 200
    assert restricted(on_second, token) == 401


def test_a_forked_worker_opens_its_own_tracking_connection(
    instances: tuple[Flask, Flask],
) -> None:
    # gunicorn --preload forks workers from a process that may have used the cache already:
    # a child must never read invalidations from its parent's socket nor trust its copies.
    on_first, on_second, token = cached_on_second(instances)
    cache = instances[1].extensions["session_cache"]
    parent_id = cache.client_id
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through its exit code)
        code = 1
        try:
            emptied = cache.get(f"session:{on_second.get_cookie('session').value}") is None
            status = restricted(on_second, token)
            code = 0 if emptied and status == 200 and cache.client_id != parent_id else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's connection is still its own and still told of changes.
    assert cache.client_id == parent_id
    assert on_first.delete("/api/session").status_code == 200
    assert restricted(on_second, token) == 401
