"""Refresh-token families: one per login, rotated on every refresh, revoked as a whole.

A login creates a family and returns an access token (a JWE naming the family in ``fam``)
and a refresh token ``<family id>.<secret>`` (256 random bits; only a SHA-256 of the secret
is stored). Each refresh swaps the secret in one compare-and-swap UPDATE on the family's
generation (RFC 9700, section 4.14.2), so of two concurrent refreshes of one token exactly
one wins. Presenting any other secret of a known family is reuse: the family is revoked,
which ends its access tokens too. Within ``REFRESH_TOKEN_REUSE_GRACE_SECONDS`` after a
rotation, the secret it spent is refused without revoking (a second tab, a retried request):
that client gets no tokens, so a thief replaying in that window gains nothing either.

Access tokens are checked against their family on every request without a database query:
a per-process ``TrackedCache`` holds the database's answer, and a revocation commits to the
database, then writes ``auth:family:<id>`` in Redis, which empties every process's copy.
Without Redis (development) the database is asked on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from flask import Flask, current_app

from auth.credentials import auth_state
from auth.errors import (
    INVALID_REFRESH_TOKEN,
    REFRESH_TOKEN_EXPIRED,
    REFRESH_TOKEN_REUSED,
    REFRESH_TOKEN_SPENT,
    TOKEN_REVOKED,
    AuthError,
)
from auth.tokens import AccessClaims
from auth.tracked_cache import TrackedCache, cached, redis_client, tracked_cache
from database.errors import NotFoundError, UnavailableError
from database.sql.identity import RefreshFamily, User
from database.sql.locks import scoped_lock_name, try_database_lock
from database.sql.models import new_uuid
from database.sql.types import aware_utc_now

__all__ = [
    "FAMILY_KEY_PREFIX",
    "TokenPair",
    "announce_revoked",
    "init_app",
    "issue",
    "login_alive",
    "login_state",
    "purge",
    "refresh",
    "revoke_family",
    "revoke_user_families",
    "revoke_user_login",
    "start_login",
    "user_logins",
]

logger = logging.getLogger(__name__)

EXTENSION = "auth_families"
FAMILY_KEY_PREFIX = "auth:family:"
PURGE_LOCK = "auth-purge"
# A Redis purge lock expires by itself should its holder die; a purge takes far less.
PURGE_LOCK_SECONDS = 900
SECRET_BYTES = 32
REFRESH_TOKEN = re.compile(r"([0-9a-f-]{36})\.([A-Za-z0-9_-]{43})")
USER_AGENT_LENGTH = 255
REMOTE_IP_LENGTH = 45

# Revocation reasons, stored in refresh_families.revoked_reason.
LOGOUT = "logout"
REUSE = "reuse"
BY_ADMINISTRATOR = "revoked by an administrator"
# A login's state, as login_state tells it.
ACTIVE = "active"
REVOKED = "revoked"
EXPIRED = "expired"


@dataclass(frozen=True)
class TokenPair:
    """What login and refresh return."""

    access_token: str
    refresh_token: str
    expires_in: int

    def as_json(self) -> dict[str, object]:
        """The response body (OAuth 2 token response field names)."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }


def init_app(app: Flask) -> None:
    """Register the family check for access tokens and its cache (with REDIS_URL)."""
    if EXTENSION in app.extensions:
        raise RuntimeError("families.init_app(app) was already called for this app; call it once.")
    cache = tracked_cache(app, FAMILY_KEY_PREFIX)
    app.extensions[EXTENSION] = cache
    auth_state(app).family_check = _family_check(cache)


def _family_check(cache: TrackedCache | None) -> Callable[[AccessClaims], None]:
    """The check for one app: from the cache when it can answer, else from the database."""

    def check(claims: AccessClaims) -> None:
        if not cached(cache, claims.fam, lambda: RefreshFamily.is_alive(claims.fam)):
            raise AuthError(TOKEN_REVOKED)

    return check


def _hash(secret: str) -> str:
    """The stored form of a refresh secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _expiry(now: datetime, absolute: datetime) -> datetime:
    """The sliding expiry of a refresh token used now, never past the login's absolute end."""
    return min(now + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_SECONDS"]), absolute)


def _pair(user: User, family_id: str, secret: str, absolute: datetime, now: datetime) -> TokenPair:
    """An access token for ``user`` in the family, and the family's current refresh token."""
    # An access token never outlives the login it belongs to.
    remaining = int((absolute - now).total_seconds())
    ttl = max(1, min(int(current_app.config["ACCESS_TOKEN_TTL_SECONDS"]), remaining))
    access = auth_state().codec.issue_access(
        subject=user.id,
        family=family_id,
        name=user.username,
        roles=user.role_names,
        scopes=user.scope_set,
        ttl_seconds=ttl,
    )
    return TokenPair(access, f"{family_id}.{secret}", ttl)


def _new_family(
    user: User,
    secret: str,
    now: datetime,
    absolute: datetime,
    user_agent: str | None,
    remote_ip: str | None,
) -> RefreshFamily:
    """Store a new login of ``user`` whose refresh secret is ``secret``."""
    return RefreshFamily(
        id=new_uuid(),
        user_id=user.id,
        generation=0,
        token_hash=_hash(secret),
        created_at=now,
        last_used_at=now,
        expires_at=_expiry(now, absolute),
        absolute_expires_at=absolute,
        user_agent=(user_agent or None) and user_agent[:USER_AGENT_LENGTH],
        remote_ip=(remote_ip or None) and remote_ip[:REMOTE_IP_LENGTH],
    ).insert()


def issue(user: User, user_agent: str | None = None, remote_ip: str | None = None) -> TokenPair:
    """Start a login for ``user`` (already authenticated): a new family and its tokens."""
    now = aware_utc_now()
    absolute = now + timedelta(seconds=current_app.config["REFRESH_TOKEN_ABSOLUTE_TTL_SECONDS"])
    secret = secrets.token_urlsafe(SECRET_BYTES)
    family = _new_family(user, secret, now, absolute, user_agent, remote_ip)
    return _pair(user, family.id, secret, absolute, now)


def start_login(
    user: User,
    lifetime: timedelta,
    user_agent: str | None = None,
    remote_ip: str | None = None,
) -> str:
    """Start a login that hands out no token (a browser session of the admin pages keeps its
    id); it is listed, revoked and ended by password or role changes like any other login."""
    now = aware_utc_now()
    # The refresh secret is never shown to anyone, so this login can never be refreshed.
    family = _new_family(
        user, secrets.token_urlsafe(SECRET_BYTES), now, now + lifetime, user_agent, remote_ip
    )
    return family.id


def login_alive(family_id: str) -> bool:
    """True while the login is neither revoked nor expired (one primary-key read)."""
    family = RefreshFamily.load(family_id)
    return family is not None and login_state(family) == ACTIVE


def login_state(family: RefreshFamily, now: datetime | None = None) -> str:
    """``active``, ``revoked`` or ``expired``."""
    if family.revoked_at is not None:
        return REVOKED
    now = now or aware_utc_now()
    if min(family.expires_at, family.absolute_expires_at) <= now:
        return EXPIRED
    return ACTIVE


def user_logins(user_id: str, limit: int = 100) -> Sequence[RefreshFamily]:
    """The user's latest logins (live or not, until purged), newest first."""
    return RefreshFamily.of_user(user_id, limit)


def refresh(refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair; the one presented is spent.

    Raises ``AuthError``: invalid_refresh_token, refresh_token_expired, token_revoked,
    refresh_token_spent (within the grace window) or refresh_token_reused (the family is
    revoked).
    """
    match = REFRESH_TOKEN.fullmatch(refresh_token.strip())
    if match is None:
        raise AuthError(INVALID_REFRESH_TOKEN)
    family_id, secret = match.groups()
    family = RefreshFamily.load(family_id)
    if family is None:
        raise AuthError(INVALID_REFRESH_TOKEN)
    presented = _hash(secret)
    now = aware_utc_now()
    state = login_state(family, now)
    if state == REVOKED:
        raise AuthError(TOKEN_REVOKED)
    if state == EXPIRED:
        raise AuthError(REFRESH_TOKEN_EXPIRED)
    if hmac.compare_digest(presented, family.token_hash):
        user = _active_user(family)
        new_secret = secrets.token_urlsafe(SECRET_BYTES)
        won = RefreshFamily.rotate(
            family.id,
            family.generation,
            presented,
            _hash(new_secret),
            _expiry(now, family.absolute_expires_at),
        )
        if won:
            return _pair(user, family.id, new_secret, family.absolute_expires_at, now)
        # Another request rotated (or revoked) it between our read and our update.
        family = RefreshFamily.load(family_id)
        if family is None or family.revoked_at is not None:
            raise AuthError(TOKEN_REVOKED)
    if _just_spent(family, presented, now):
        raise AuthError(REFRESH_TOKEN_SPENT)
    logger.warning("Refresh token reuse: login family %s revoked.", family.id)
    _revoke(REUSE, family_id=family.id, strict=False)
    raise AuthError(REFRESH_TOKEN_REUSED)


def _just_spent(family: RefreshFamily, presented: str, now: datetime) -> bool:
    """True when ``presented`` is the secret the last rotation spent, within the grace window."""
    grace = int(current_app.config["REFRESH_TOKEN_REUSE_GRACE_SECONDS"])
    return (
        grace > 0
        and family.previous_hash is not None
        and family.rotated_at is not None
        and hmac.compare_digest(presented, family.previous_hash)
        and now - family.rotated_at <= timedelta(seconds=grace)
    )


def _active_user(family: RefreshFamily) -> User:
    """The family's user; a deleted or deactivated user ends the family."""
    try:
        user = User.get_or_raise(family.user_id)
    except NotFoundError:
        user = None
    if user is None or not user.is_active:
        _revoke("user inactive", family_id=family.id, strict=False)
        raise AuthError(TOKEN_REVOKED)
    return user


def revoke_family(family_id: str, reason: str = LOGOUT) -> None:
    """End one login everywhere: its refresh token and every access token it issued."""
    _revoke(reason, family_id=family_id)


def revoke_user_login(user_id: str, family_id: str, reason: str = BY_ADMINISTRATOR) -> None:
    """End one login of this user everywhere; ``NotFoundError`` when it is not theirs."""
    family = RefreshFamily.load(family_id)
    if family is None or family.user_id != user_id:
        raise NotFoundError(f"The user has no login {family_id!r}; reload the list of logins.")
    revoke_family(family_id, reason)


def revoke_user_families(user_id: str, reason: str, keep: str | None = None) -> None:
    """End every login of a user (except the family ``keep``), on every worker and instance."""
    _revoke(reason, user_id=user_id, keep=keep)


def _revoke(
    reason: str,
    family_id: str | None = None,
    user_id: str | None = None,
    keep: str | None = None,
    strict: bool = True,
) -> None:
    """Commit the revocation, then tell every process (``strict``: 503 if Redis cannot)."""
    revoked = RefreshFamily.revoke(reason, family_id=family_id, user_id=user_id, keep=keep)
    if family_id is not None and family_id not in revoked:
        # Already revoked earlier: announce again, in case that announcement failed.
        revoked.append(family_id)
    announce_revoked(revoked, strict=strict)


def announce_revoked(family_ids: list[str], strict: bool = True) -> None:
    """Empty every process's cached answer for these families (after the database commit)."""
    cache: TrackedCache | None = current_app.extensions[EXTENSION]
    if cache is None:
        return
    ttl = int(current_app.config["ACCESS_TOKEN_TTL_SECONDS"])
    try:
        for family_id in family_ids:
            cache.publish(family_id, ttl)
    except redis.RedisError as exc:
        logger.warning("Could not announce revoked login families through Redis: %s", exc)
        if strict:
            raise UnavailableError(
                "The logins were revoked, but the other servers could not be told through "
                "Redis yet; repeat the request in a moment."
            ) from exc


def purge(older_than: timedelta, batch_size: int = 1000) -> int | None:
    """Delete families revoked or expired more than ``older_than`` ago, in batches.

    Returns how many were deleted, or None when another run holds the purge lock. Safe to
    start on every host at once: one run works, the others return at once.
    """
    before = aware_utc_now() - older_than
    with _purge_lock() as held:
        if not held:
            return None
        deleted = 0
        while True:
            count = RefreshFamily.purge_batch(before, batch_size)
            deleted += count
            if count < batch_size:
                return deleted


@contextmanager
def _purge_lock() -> Iterator[bool]:
    """The database's own lock (PostgreSQL, MariaDB), else a Redis lock, else none."""
    with try_database_lock(PURGE_LOCK) as held:
        if held is not None:
            yield held
            return
        client = redis_client(current_app)
        if client is None:
            # SQLite lives on one host; SQL Server without Redis: a second run deletes nothing
            # twice (a row goes once), it only repeats the work.
            yield True
            return
        lock = client.lock(scoped_lock_name(PURGE_LOCK), timeout=PURGE_LOCK_SECONDS)
        try:
            acquired = bool(lock.acquire(blocking=False))
        except redis.RedisError as exc:
            raise UnavailableError(
                "Redis, which holds the purge lock, is unavailable; try again later."
            ) from exc
        try:
            yield acquired
        finally:
            if acquired:
                with suppress(redis.RedisError):
                    lock.release()
