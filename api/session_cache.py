"""A per-process copy of recently read Redis sessions, kept exact by Redis invalidations.

Checking that a token's session is still alive would cost a Redis round trip on every
protected call; ``TrackedCache`` (auth/tracked_cache.py) serves sessions untouched since
their last read from memory, and a logout on any worker or instance is seen by the next
request everywhere.
"""

from __future__ import annotations

from auth.tracked_cache import TrackedCache


class SessionCache(TrackedCache):
    """Session data by its full store key (``session:<id>``).

    The dicts are stored and handed out as they are, not copied: their one reader, the
    session interface, builds each request's session object from a copy (Flask-Session's
    session class is a dict of its own), and nothing else holds them.
    """

    def _entry_key(self, redis_key: str) -> str:
        """Entries are keyed by the full store key, as Flask-Session names them."""
        return redis_key
