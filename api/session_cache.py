"""A per-process copy of recently read Redis sessions, kept exact by Redis invalidations.

Checking that a token's session is still alive would cost a Redis round trip on every
protected call; ``TrackedCache`` (auth/tracked_cache.py) serves sessions untouched since
their last read from memory, and a logout on any worker or instance is seen by the next
request everywhere.
"""

from __future__ import annotations

from typing import Any

from auth.tracked_cache import TrackedCache


class SessionCache(TrackedCache):
    """Session data by its full store key (``session:<id>``), handed out as copies."""

    def _copy(self, value: Any) -> Any:
        """Session dicts are mutable: each reader gets its own copy."""
        return dict(value)

    def _entry_key(self, redis_key: str) -> str:
        """Entries are keyed by the full store key, as Flask-Session names them."""
        return redis_key
