"""A per-process cache kept exact by Redis invalidation messages (``CLIENT TRACKING``).

Checking on every protected call that a session, a login family or an API key is still
valid would cost a round trip to Redis or the database. With server-assisted client-side
caching (Redis 6+ ``CLIENT TRACKING`` in broadcast mode), Redis pushes the name of every key
under a prefix that changes or disappears, anywhere in the deployment, to every process.
Before each lookup the process applies the pushes already on its socket, so a change made by
any worker or instance (a logout, a revocation) is seen by the next request everywhere; only
entries untouched since their last read are served from memory. If the tracking connection
fails, the cache is emptied and lookups go to the source until it is back; a reconnect that
fails is not tried again for a while (0.1 s, doubling up to 5 s), so while Redis is out of
reach one request per interval waits for a connect attempt, not every request.

A cached value need not come from Redis: a value loaded from the database is cached under a
key whose Redis counterpart ``<prefix><key>`` is written whenever the value changes
(``publish``), so the write is the invalidation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

REDIS_EXTENSION = "auth_redis"
MAX_ENTRIES = 10_000
# Upper bound on how long a copy is trusted even without news from Redis (key expiry is
# reported by Redis too, but only when it actually removes the key).
MAX_AGE_SECONDS = 30.0
# After a failed reconnect, lookups go to the source without trying again for this long,
# doubled after each further failure up to the maximum, and forgotten on success.
RECONNECT_FIRST_DELAY_SECONDS = 0.1
RECONNECT_MAX_DELAY_SECONDS = 5.0

# What _current answers when the source must be asked (None may be a cached value).
_MISS = object()

# Every cache of this process, so that a forked child (gunicorn --preload) starts each one
# afresh instead of sharing its parent's socket and copies.
_INSTANCES: weakref.WeakSet[TrackedCache] = weakref.WeakSet()


class TrackedCache:
    """Values by key, each dropped when Redis reports a change of ``<prefix><key>`` (RESP3).

    A miss is answered from the source, then stored with the ``stamp()`` taken before the
    source was read: ``put`` ignores it if any invalidation arrived in between, so a value
    read just before a concurrent revocation is never kept. Values are stored and handed out
    as they are, to every reader: keep immutable ones, or copy what you change.
    """

    def __init__(
        self,
        client: redis.Redis,
        key_prefix: str,
        max_entries: int = MAX_ENTRIES,
        max_age_seconds: float = MAX_AGE_SECONDS,
    ) -> None:
        self._client = client
        self._prefix = key_prefix
        self._max_entries = max_entries
        self._max_age = max_age_seconds
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._connection: redis.connection.AbstractConnection | None = None
        # Tells without a system call on the socket's timeout whether Redis sent anything.
        self._poller: select.poll | None = None
        self._unsupported = False
        self._generation = 0
        self._reconnect_delay = 0.0  # 0 while the last connect worked
        self._reconnect_after = 0.0  # time.monotonic() before which no connect is tried
        self.client_id: int | None = None
        self.hits = 0
        self.misses = 0
        self.connect_attempts = 0  # tracking connections tried, for monitoring
        _INSTANCES.add(self)

    @property
    def prefix(self) -> str:
        """The Redis key prefix whose changes empty entries of this cache."""
        return self._prefix

    def get(self, key: str, default: Any = None) -> Any:
        """The cached value, or ``default`` when the source must be asked."""
        with self._lock:
            value = self._current(key)
        return default if value is _MISS else value

    def get_or_load(self, key: str, load: Callable[[], Any]) -> Any:
        """The cached value, else ``load()``'s answer, kept unless an invalidation came meanwhile.

        The stamp is taken with the miss, before the source is read (see the class).
        """
        with self._lock:
            value = self._current(key)
            stamp = self._generation
        if value is not _MISS:
            return value
        value = load()
        self.put(key, value, stamp)
        return value

    def _current(self, key: str) -> Any:
        """The entry's value if it is current, else ``_MISS``; counted (the lock is held)."""
        if self._sync():
            entry = self._entries.get(key)
            if entry is not None and entry[0] > time.monotonic():
                self.hits += 1
                return entry[1]
        self.misses += 1
        return _MISS

    def stamp(self) -> int:
        """Take this before reading the source after a miss; give it to ``put``."""
        with self._lock:
            return self._generation

    def put(self, key: str, value: Any, stamp: int | None = None) -> None:
        """Remember a value just read from the source.

        Only while invalidations are being received, and only when no invalidation arrived
        since ``stamp`` (when given).
        """
        with self._lock:
            if self._connection is None:
                return
            if stamp is not None and stamp != self._generation:
                return
            self._entries[key] = (time.monotonic() + self._max_age, value)
            self._entries.move_to_end(key)
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def evict(self, key: str) -> None:
        """Forget one entry (this process is about to change it)."""
        with self._lock:
            self._entries.pop(key, None)
            self._generation += 1

    def publish(self, key: str, ttl_seconds: int) -> None:
        """Tell every process that ``key`` changed: write ``<prefix><key>`` (kept ``ttl``).

        Call it after the change is committed at the source. Raises ``redis.RedisError``
        when Redis cannot be written, so the caller can refuse to report success.
        """
        self.evict(key)
        self._client.set(self._prefix + key, str(time.time()), ex=max(1, int(ttl_seconds)))

    def _entry_key(self, redis_key: str) -> str:
        """The cache key an invalidated Redis key stands for: the key without the prefix."""
        return redis_key[len(self._prefix) :]

    def close(self) -> None:
        """Drop the tracking connection and every copy."""
        with self._lock:
            self._reset()

    def _sync(self) -> bool:
        """Apply pending invalidations; False when the cache cannot be trusted right now.

        Only this method reads the tracking connection, and it reads until redis-py's buffer
        is empty; so between two calls nothing can wait in that buffer, and a zero-timeout
        ``poll`` of the socket tells whether Redis sent anything (an invalidation, or the end
        of the connection, which ``can_read`` then raises). A lost connection is reopened at
        the next call; a failed reopening waits out its backoff, during which the cache
        answers nothing, as while disconnected (no invalidation could reach it).
        """
        if self._unsupported:
            return False
        connecting = self._connection is None
        if connecting and time.monotonic() < self._reconnect_after:
            return False
        try:
            if connecting:
                self._connect()
            connection, poller = self._connection, self._poller
            assert connection is not None and poller is not None
            if poller.poll(0):
                while connection.can_read(timeout=0):
                    connection.read_response(push_request=True)
        except redis.ResponseError as exc:
            self._unsupported = True
            self._reset()
            logger.warning(
                "Redis refused CLIENT TRACKING (%s); session lookups stay uncached.", exc
            )
            return False
        except (redis.RedisError, OSError):
            self._reset()
            if connecting:
                self._back_off()
            return False
        return True

    def _back_off(self) -> None:
        """After a failed connect: wait longer than last time before the next attempt."""
        self._reconnect_delay = min(
            RECONNECT_MAX_DELAY_SECONDS,
            max(RECONNECT_FIRST_DELAY_SECONDS, self._reconnect_delay * 2),
        )
        self._reconnect_after = time.monotonic() + self._reconnect_delay

    def _after_fork(self) -> None:
        """In a forked child: never use the parent's socket, lock or copies.

        A reconnect backoff is kept: Redis was out of the parent's reach a moment ago.
        """
        self._lock = threading.Lock()
        self._connection = self._poller = None
        self._entries.clear()
        self._generation += 1

    def _connect(self) -> None:
        """Open a RESP3 connection that receives every change of a session key."""
        self.connect_attempts += 1
        pool = self._client.connection_pool
        # One try per call: the backoff spaces them out, where redis-py's own retries (a
        # client made by redis.Redis() has ten) would hold every lookup for seconds.
        kwargs = {**pool.connection_kwargs, "protocol": 3, "retry": Retry(NoBackoff(), 0)}
        connection = pool.connection_class(**kwargs)
        try:
            connection.connect()
            connection._parser.set_invalidation_push_handler(self._on_invalidate)
            connection.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self._prefix)
            connection.read_response()
            connection.send_command("CLIENT", "ID")
            self.client_id = int(connection.read_response())
            poller = select.poll()
            poller.register(connection._sock, select.POLLIN)
        except BaseException:
            # A half-opened connection is not self._connection yet, so _reset would miss it.
            with contextlib.suppress(redis.RedisError, OSError):
                connection.disconnect()
            raise
        # Anything cached before this point may have changed unseen.
        self._entries.clear()
        self._connection, self._poller = connection, poller
        self._reconnect_delay = self._reconnect_after = 0.0

    def _on_invalidate(self, message: list[Any]) -> None:
        """``["invalidate", [keys]]``; a null key list means the whole database was flushed."""
        self._generation += 1
        keys = message[1] if len(message) > 1 else None
        if keys is None:
            self._entries.clear()
            return
        for key in keys:
            name = key.decode() if isinstance(key, bytes) else key
            self._entries.pop(self._entry_key(name), None)

    def _reset(self) -> None:
        """Forget everything; the next lookup reconnects."""
        self._generation += 1
        self._entries.clear()
        if self._connection is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self._connection.disconnect()
            self._connection = self._poller = None


def _forked() -> None:
    """Start every cache afresh in a forked child."""
    for cache in list(_INSTANCES):
        cache._after_fork()


os.register_at_fork(after_in_child=_forked)


def redis_client(app: Flask) -> redis.Redis | None:
    """The app's shared Redis client for auth state (REDIS_URL), or None without Redis.

    Short timeouts: an unreachable Redis costs a request about two seconds, never a worker.
    """
    url = str(app.config.get("REDIS_URL") or "")
    if not url:
        return None
    client: redis.Redis | None = app.extensions.get(REDIS_EXTENSION)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        app.extensions[REDIS_EXTENSION] = client
    return client


def cached(cache: TrackedCache | None, key: str, load: Callable[[], Any]) -> Any:
    """``cache.get_or_load(key, load)``, or ``load()`` when there is no cache (no Redis)."""
    return load() if cache is None else cache.get_or_load(key, load)


def tracked_cache(app: Flask, key_prefix: str, **options: Any) -> TrackedCache | None:
    """A ``TrackedCache`` on the app's Redis under ``key_prefix``, or None without Redis.

    Without Redis there is no way to hear about changes made by other processes, so callers
    then ask the source (the database) on every lookup.
    """
    client = redis_client(app)
    if client is None:
        return None
    return TrackedCache(client, key_prefix, **options)
