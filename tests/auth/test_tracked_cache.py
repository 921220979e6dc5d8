"""TrackedCache while Redis is out of reach: no stale copies, reconnects spaced out, then back.

Redis is reached through a TcpRelay, so stopping the relay makes it unreachable to this cache
only (its connection cut, connects refused), and starting it again brings it back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from auth.tracked_cache import RECONNECT_FIRST_DELAY_SECONDS, TrackedCache
from tests.support.operations import REDIS_HOST, REDIS_PORT
from tests.support.tcp_relay import TcpRelay

KEY = "k"
# How long a test keeps looking things up while Redis is away.
OUTAGE_SECONDS = 0.8


@pytest.fixture
def relay(redis_url: str) -> Iterator[TcpRelay]:
    """A relay to the local Redis, not started."""
    relay = TcpRelay((REDIS_HOST, REDIS_PORT))
    yield relay
    relay.stop()


@pytest.fixture
def cache(relay: TcpRelay, redis_unique: str) -> Iterator[TrackedCache]:
    """A TrackedCache reaching Redis through the relay, under a prefix of this test."""
    client = redis.Redis(
        host="127.0.0.1", port=relay.port, socket_timeout=2, socket_connect_timeout=2
    )
    cache = TrackedCache(client, f"{redis_unique}:")
    yield cache
    cache.close()
    client.close()


def serves_copies(cache: TrackedCache, value: str) -> bool:
    """Whether the cache keeps and serves a value now (only while it hears invalidations):
    a lookup (which opens the tracking connection when due), a copy offered, a lookup."""
    cache.get(KEY)
    cache.put(KEY, value)
    return bool(cache.get(KEY) == value)


def cut(relay: TcpRelay) -> None:
    """Make Redis unreachable, and let the cut reach the cache's socket."""
    relay.stop()
    time.sleep(0.05)


def look_up_for(cache: TrackedCache, seconds: float) -> int:
    """Look up (and offer a copy) without pause for ``seconds``; how many lookups were made,
    each of which must have missed."""
    lookups = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert not serves_copies(cache, "stale?")
        lookups += 1
    return lookups


def test_a_down_redis_is_tried_once_per_interval_and_every_lookup_is_a_miss(
    cache: TrackedCache,
) -> None:
    loads = 0

    def load() -> int:
        nonlocal loads
        loads += 1
        return loads

    assert [cache.get_or_load(KEY, load) for _ in range(50)] == list(range(1, 51))
    assert 1 <= cache.connect_attempts <= 2
    # Kept trying, less and less often: 0.1 s, then 0.2, 0.4, 0.8 s between tries (a fixed
    # 0.1 s would make 8 of them in this time).
    attempts = cache.connect_attempts
    assert look_up_for(cache, OUTAGE_SECONDS) > 50
    assert 2 <= cache.connect_attempts - attempts <= 5


def test_tracking_resumes_when_redis_is_back(
    cache: TrackedCache, relay: TcpRelay, redis_url: str
) -> None:
    relay.start()
    assert serves_copies(cache, "v1")
    cut(relay)  # the tracking connection is cut, and reconnects are refused
    look_up_for(cache, OUTAGE_SECONDS)
    attempts = cache.connect_attempts
    relay.start()
    deadline = time.monotonic() + 5  # the backoff has grown to at most 1.6 s by now
    while not serves_copies(cache, "v2"):
        assert time.monotonic() < deadline, "the cache never reconnected to Redis"
        time.sleep(0.02)
    assert cache.connect_attempts == attempts + 1
    # Tracking works again: a change made elsewhere empties the copy.
    writer = redis.Redis.from_url(redis_url)
    try:
        writer.set(f"{cache.prefix}{KEY}", "changed", ex=60)
    finally:
        writer.close()
    deadline = time.monotonic() + 2
    while cache.get(KEY) is not None:
        assert time.monotonic() < deadline, "the change's invalidation never reached the cache"
        time.sleep(0.01)


def test_a_lost_connection_is_reopened_at_once_and_a_success_resets_the_backoff(
    cache: TrackedCache, relay: TcpRelay
) -> None:
    relay.start()
    assert serves_copies(cache, "v1")
    cache.close()  # a connection lost while Redis is up ...
    assert serves_copies(cache, "v2")  # ... is opened again by the next lookup
    cut(relay)
    look_up_for(cache, OUTAGE_SECONDS)  # the backoff grows to 0.8 s or more
    relay.start()
    deadline = time.monotonic() + 5
    while not serves_copies(cache, "v3"):
        assert time.monotonic() < deadline, "the cache never reconnected to Redis"
        time.sleep(0.02)
    cut(relay)
    attempts = cache.connect_attempts
    assert cache.get(KEY) is None  # the loss is seen ...
    assert cache.get(KEY) is None  # ... and the reconnect fails
    assert cache.connect_attempts == attempts + 1
    # The first delay again, not the grown one: the next try comes after a short pause.
    time.sleep(RECONNECT_FIRST_DELAY_SECONDS * 3)
    assert cache.get(KEY) is None
    assert cache.connect_attempts == attempts + 2
