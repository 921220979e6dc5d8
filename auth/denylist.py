"""The deny-list of third-party tokens: by ``jti``, or by subject issued before a time.

A provider's token cannot be recalled at the provider, so a leaked one is denied here, in
Redis, until it would have expired anyway. Every process keeps a ``TrackedCache`` of the
entries it has looked up (present or absent): a denial written by any process (``flask
issuers deny``) is pushed by Redis to every worker and seen by its next request, and a token
that is not denied costs no Redis round trip once looked up. Lifting a denial (``flask
issuers undeny``) deletes the entry, which Redis pushes the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from auth.errors import TOKEN_REVOKED, AuthError, AuthUnavailableError
from auth.tracked_cache import TrackedCache, cached

__all__ = ["JTI", "KEY_PREFIX", "SUBJECT", "DenyEntry", "DenyList"]

KEY_PREFIX = "issuers:deny:"
DENY_LIST_DOWN = "The token deny-list cannot be read right now; try again shortly."
# The kinds of entry, as their keys begin.
JTI = "jti"
SUBJECT = "sub"


@dataclass(frozen=True)
class DenyEntry:
    """One entry: a token by its ``jti``, or a subject's tokens issued before ``not_before``."""

    kind: str  # JTI or SUBJECT
    value: str  # the jti or the subject
    expires_at: float | None  # when Redis drops the entry (None: kept until lifted)
    not_before: float | None = None  # SUBJECT: tokens issued before this are refused


class DenyList:
    """Denied tokens per issuer name in Redis, read through a per-process tracked cache."""

    def __init__(self, client: redis.Redis, cache: TrackedCache | None = None) -> None:
        self._client = client
        self._cache = cache

    def check(self, issuer: str, jti: str, subject: str, issued_at: float | None) -> None:
        """Raise 401 token_revoked for a denied token; 503 when Redis cannot be read."""
        if jti and self._lookup(_key(JTI, issuer, jti)):
            raise AuthError(TOKEN_REVOKED)
        not_before = self._lookup(_key(SUBJECT, issuer, subject))
        # A token without iat cannot prove it was issued after the subject's cut-off.
        if not_before and (issued_at is None or issued_at < float(not_before)):
            raise AuthError(TOKEN_REVOKED)

    def deny_token(self, issuer: str, jti: str, ttl_seconds: int) -> None:
        """Deny the token ``jti`` of ``issuer`` for ``ttl_seconds`` (until its ``exp``)."""
        self._client.set(KEY_PREFIX + _key(JTI, issuer, jti), "1", ex=max(1, ttl_seconds))

    def deny_subject(self, issuer: str, subject: str, not_before: float, ttl_seconds: int) -> None:
        """Deny every token of ``subject`` issued before ``not_before``, for ``ttl_seconds``."""
        key = KEY_PREFIX + _key(SUBJECT, issuer, subject)
        self._client.set(key, repr(float(not_before)), ex=max(1, ttl_seconds))

    def lift(self, kind: str, issuer: str, value: str) -> bool:
        """Lift the denial of the token ``value`` (kind JTI) or of the subject ``value``'s
        tokens (SUBJECT); False when there was none. Redis reports the deletion to every
        process's cache, as it reports a denial."""
        return bool(self._client.delete(KEY_PREFIX + _key(kind, issuer, value)))

    def entries(self, issuer: str) -> list[DenyEntry]:
        """The issuer's entries, tokens first, each kind sorted by value."""
        now = time.time()
        found = []
        for kind in (JTI, SUBJECT):
            # Issuer names hold no glob characters (letters, digits, "." "_" "-").
            start = KEY_PREFIX + _key(kind, issuer, "")
            keys = sorted(key.decode() for key in self._client.scan_iter(start + "*", count=500))
            pipeline = self._client.pipeline(transaction=False)
            for key in keys:
                pipeline.get(key)
                pipeline.ttl(key)
            replies = pipeline.execute()
            for key, raw, ttl in zip(keys, replies[::2], replies[1::2], strict=True):
                if raw is None:
                    continue  # expired or lifted since the scan
                found.append(
                    DenyEntry(
                        kind,
                        key[len(start) :],
                        now + ttl if ttl >= 0 else None,
                        float(raw) if kind == SUBJECT else None,
                    )
                )
        return found

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


def _key(kind: str, issuer: str, value: str) -> str:
    """Cache and Redis key (after the prefix) of an entry: a denied token (JTI) or a
    subject's not-before time (SUBJECT)."""
    return f"{kind}:{issuer}:{value}"
