"""A per-process copy of recently read Redis sessions, kept exact by Redis invalidation messages.

Checking that a token's session is still alive costs a Redis round trip on every protected
call. With server-assisted client-side caching (Redis 6+ ``CLIENT TRACKING`` in broadcast
mode), Redis pushes the name of every session key that changes or disappears, anywhere in the
deployment, to every process. Before each lookup the process applies the pushes already on its
socket, so a logout on any worker or instance is seen by the next request everywhere; only
sessions untouched since their last read are served from memory. If the tracking connection
fails, the cache is emptied and lookups go to Redis until it is back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

import redis

logger = logging.getLogger(__name__)

MAX_ENTRIES = 10_000
# Upper bound on how long a copy is trusted even without news from Redis (key expiry is
# reported by Redis too, but only when it actually removes the key).
MAX_AGE_SECONDS = 30.0


class SessionCache:
    """Session data by store key, emptied by Redis ``invalidate`` pushes (RESP3)."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._client = client
        self._prefix = key_prefix
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self._connection: redis.connection.AbstractConnection | None = None
        self._pid = os.getpid()
        self._unsupported = False
        self.client_id: int | None = None
        self.hits = 0
        self.misses = 0

    def get(self, store_id: str) -> dict[str, Any] | None:
        """A copy of the session data, or None when Redis must be asked."""
        with self._lock:
            if self._sync():
                entry = self._entries.get(store_id)
                if entry is not None and entry[0] > time.monotonic():
                    self.hits += 1
                    return dict(entry[1])
            self.misses += 1
            return None

    def put(self, store_id: str, data: dict[str, Any]) -> None:
        """Remember data just read from Redis (only while invalidations are being received)."""
        with self._lock:
            if self._connection is None:
                return
            self._entries[store_id] = (time.monotonic() + MAX_AGE_SECONDS, dict(data))
            self._entries.move_to_end(store_id)
            if len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)

    def evict(self, store_id: str) -> None:
        """Forget one session (this process is about to change it)."""
        with self._lock:
            self._entries.pop(store_id, None)

    def close(self) -> None:
        """Drop the tracking connection and every copy."""
        with self._lock:
            self._reset()

    def _sync(self) -> bool:
        """Apply pending invalidations; False when the cache cannot be trusted right now."""
        if self._unsupported:
            return False
        if self._pid != os.getpid():  # forked (gunicorn --preload): never share the socket
            self._connection, self._pid = None, os.getpid()
            self._entries.clear()
        try:
            if self._connection is None:
                self._connect()
            connection = self._connection
            assert connection is not None
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
            return False
        return True

    def _connect(self) -> None:
        """Open a RESP3 connection that receives every change of a session key."""
        pool = self._client.connection_pool
        kwargs = {**pool.connection_kwargs, "protocol": 3}
        connection = pool.connection_class(**kwargs)
        connection.connect()
        connection._parser.set_invalidation_push_handler(self._on_invalidate)
        connection.send_command("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", self._prefix)
        connection.read_response()
        connection.send_command("CLIENT", "ID")
        self.client_id = int(connection.read_response())
        # Anything cached before this point may have changed unseen.
        self._entries.clear()
        self._connection = connection

    def _on_invalidate(self, message: list[Any]) -> None:
        """``["invalidate", [keys]]``; a null key list means the whole database was flushed."""
        keys = message[1] if len(message) > 1 else None
        if keys is None:
            self._entries.clear()
            return
        for key in keys:
            self._entries.pop(key.decode() if isinstance(key, bytes) else key, None)

    def _reset(self) -> None:
        """Forget everything; the next lookup reconnects."""
        self._entries.clear()
        if self._connection is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self._connection.disconnect()
            self._connection = None
