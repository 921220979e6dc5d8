"""The deny-list of third-party tokens: by ``jti``, or by subject issued before a time.

A provider's token cannot be recalled at the provider, so a leaked one is denied here, in
Redis, until it would have expired anyway. Every process keeps a ``TrackedCache`` of the
entries it has looked up (present or absent): a denial written by any process (``flask
issuers deny``) is pushed by Redis to every worker and seen by its next request, and a token
that is not denied costs no Redis round trip once looked up.
"""

from __future__ import annotations

import redis

from auth.errors import TOKEN_REVOKED, AuthError, AuthUnavailableError
from auth.tracked_cache import TrackedCache, cached

__all__ = ["KEY_PREFIX", "DenyList"]

KEY_PREFIX = "issuers:deny:"
DENY_LIST_DOWN = "The token deny-list cannot be read right now; try again shortly."


class DenyList:
    """Denied tokens per issuer name in Redis, read through a per-process tracked cache."""

    def __init__(self, client: redis.Redis, cache: TrackedCache | None = None) -> None:
        self._client = client
        self._cache = cache

    def check(self, issuer: str, jti: str, subject: str, issued_at: float | None) -> None:
        """Raise 401 token_revoked for a denied token; 503 when Redis cannot be read."""
        if jti and self._lookup(_jti_key(issuer, jti)):
            raise AuthError(TOKEN_REVOKED)
        not_before = self._lookup(_subject_key(issuer, subject))
        # A token without iat cannot prove it was issued after the subject's cut-off.
        if not_before and (issued_at is None or issued_at < float(not_before)):
            raise AuthError(TOKEN_REVOKED)

    def deny_token(self, issuer: str, jti: str, ttl_seconds: int) -> None:
        """Deny the token ``jti`` of ``issuer`` for ``ttl_seconds`` (until its ``exp``)."""
        self._client.set(KEY_PREFIX + _jti_key(issuer, jti), "1", ex=max(1, ttl_seconds))

    def deny_subject(self, issuer: str, subject: str, not_before: float, ttl_seconds: int) -> None:
        """Deny every token of ``subject`` issued before ``not_before``, for ``ttl_seconds``."""
        key = KEY_PREFIX + _subject_key(issuer, subject)
        self._client.set(key, repr(float(not_before)), ex=max(1, ttl_seconds))

    def _lookup(self, key: str) -> str:
        """The entry's value ("" when absent), from the cache when it is known to be current."""
        return str(cached(self._cache, key, lambda: self._read(key)))

    def _read(self, key: str) -> str:
        """The entry's value in Redis ("" when absent)."""
        try:
            raw = self._client.get(KEY_PREFIX + key)
        except redis.RedisError as exc:
            raise AuthUnavailableError(DENY_LIST_DOWN) from exc
        return raw.decode() if isinstance(raw, bytes) else ""


def _jti_key(issuer: str, jti: str) -> str:
    """Cache and Redis key (after the prefix) of a denied token."""
    return f"jti:{issuer}:{jti}"


def _subject_key(issuer: str, subject: str) -> str:
    """Cache and Redis key (after the prefix) of a subject's not-before time."""
    return f"sub:{issuer}:{subject}"
