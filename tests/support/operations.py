"""Fixtures for the operations tests: real Redis and PostgreSQL, unique names, cleaned up."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.services import port_open, unavailable

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432


def redis_url_or_skip() -> str:
    """The local Redis URL, or skip (fail with REQUIRE_SERVICES=1) when it is down."""
    if not port_open(REDIS_HOST, REDIS_PORT):
        unavailable("Redis", f"nothing listens on {REDIS_HOST}:{REDIS_PORT}")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def delete_redis_keys(url: str, fragment: str) -> None:
    """Remove every key whose name contains ``fragment`` (this run's unique prefix)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"*{fragment}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_url() -> str:
    """The local Redis URL (skips when Redis is down)."""
    return redis_url_or_skip()


@pytest.fixture
def redis_unique(redis_url: str) -> Iterator[str]:
    """A name unique to this test; every Redis key containing it is deleted afterwards."""
    unique = f"test-{uuid.uuid4().hex}"
    yield unique
    delete_redis_keys(redis_url, unique)


@pytest.fixture
def ratelimit_prefix(redis_unique: str) -> str:
    """A rate-limit key prefix unique to this test; its keys are deleted afterwards."""
    return redis_unique


@pytest.fixture
def access_log_pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database test_<hex> (dropped afterwards)."""
    from sqlalchemy_utils import create_database, drop_database

    if not port_open(POSTGRES_HOST, POSTGRES_PORT):
        unavailable("PostgreSQL", f"nothing listens on {POSTGRES_HOST}:{POSTGRES_PORT}")
    url = f"postgresql+psycopg2://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/test_{uuid.uuid4().hex}"
    create_database(url)
    try:
        yield url
    finally:
        drop_database(url)
