"""API keys: ``fja_<id>_<secret>``, stored as an HMAC of the secret, checked in constant time.

A key belongs to a user (its scopes are then capped by the user's current scopes, and it
stops working when the user is deactivated) or to a named service; it always expires. Each
process caches what it read about a key; revoking a key, or changing its owner, writes a
Redis key that makes every process drop its copy before its next request (``TrackedCache``).
Without Redis every lookup asks the database.

The seeds' single-key mode stays available: ``ACCEPTED_API_KEY`` (compared in constant time)
grants ``ACCEPTED_API_KEY_SCOPES``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, current_app

from auth.credentials import auth_state
from auth.errors import API_KEY_INVALID, AuthError
from auth.principal import API_KEY, Principal
from auth.tokens import derive_key
from auth.tracked_cache import TrackedCache, cached, tracked_cache
from database.errors import ConflictError, NotFoundError
from database.sql.identity import ApiKey, User, join_scopes
from database.sql.types import aware_utc_now

logger = logging.getLogger(__name__)

__all__ = [
    "KEY_PREFIX",
    "ApiKeyError",
    "ApiKeys",
    "IssuedKey",
    "init_app",
    "parse_scopes",
]

EXTENSION = "api_keys"
KEY_PREFIX = "fja"
ID_LENGTH = 12
SECRET_LENGTH = 43  # 43 characters of 62 carry 256 bits
ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits
KEY_FORMAT = re.compile(rf"{KEY_PREFIX}_([a-z0-9]{{{ID_LENGTH}}})_([A-Za-z0-9]{{{SECRET_LENGTH}}})")
SCOPE = re.compile(r"[A-Za-z0-9:._/*-]{1,100}")
CACHE_PREFIX = "authz:apikey:"
# Lets every process hear about a key change; kept a little longer than any cached copy.
PUBLISH_TTL_SECONDS = 120
# last_used_at is written at most this often per key, never on every request.
LAST_USED_INTERVAL = timedelta(minutes=5)
ACCEPTED_KEY_ID = "accepted-api-key"
SERVICE_SUBJECT = "service:"


class ApiKeyError(ValueError):
    """A request about API keys cannot be done as asked; the message says why.

    ``field`` names the input at fault (``name``, ``owner``, ``scopes``, ``expires_in``), or
    is empty, so that a form can show the message next to it.
    """

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: ``secret`` is the full key, shown once and never stored."""

    record: ApiKey
    secret: str


@dataclass(frozen=True)
class _KnownKey:
    """What a process remembers of a key between requests."""

    secret_hash: str
    expires_at: float
    usable: bool  # not revoked, owner active
    principal: Principal


_UNKNOWN = _KnownKey("", 0.0, False, Principal(kind=API_KEY, subject=""))


def parse_scopes(scopes: Iterable[str] | str) -> frozenset[str]:
    """Scopes from a list or a space-separated string; each must look like ``items:read``."""
    items = scopes.split() if isinstance(scopes, str) else [s.strip() for s in scopes]
    bad = [scope for scope in items if not SCOPE.fullmatch(scope)]
    if bad:
        raise ApiKeyError(
            f"These scopes are not valid: {', '.join(repr(b) for b in bad)}; a scope is 1 to "
            "100 letters, digits and : . _ / * -, e.g. items:read.",
            "scopes",
        )
    return frozenset(items)


class ApiKeys:
    """The app's API keys: create, list, revoke, and authenticate an ``X-Api-Key`` value."""

    def __init__(self, app: Flask, cache: TrackedCache | None) -> None:
        self._hmac_key = derive_key(app.config["SECRET_KEY"], "api-key-hmac")
        self._cache = cache
        self._issuer = str(app.config["TOKEN_ISSUER"])
        self.default_ttl = timedelta(days=int(app.config["API_KEY_TTL_DAYS"]))
        self.max_ttl = timedelta(days=int(app.config["API_KEY_MAX_TTL_DAYS"]))
        accepted = str(app.config.get("ACCEPTED_API_KEY") or "")
        self._accepted_hash = self._digest(accepted) if accepted else None
        self._accepted = Principal(
            kind=API_KEY,
            subject=SERVICE_SUBJECT + ACCEPTED_KEY_ID,
            scopes=parse_scopes(str(app.config.get("ACCEPTED_API_KEY_SCOPES") or "")),
            claims={"sub": SERVICE_SUBJECT + ACCEPTED_KEY_ID, "key_id": ACCEPTED_KEY_ID},
            issuer=self._issuer,
            credential_id=ACCEPTED_KEY_ID,
            name=ACCEPTED_KEY_ID,
        )
        self._touched: dict[str, float] = {}
        self._touch_lock = threading.Lock()

    # --- authentication (every request with X-Api-Key) ------------------------------------

    def authenticate(self, value: str) -> Principal:
        """The Principal of a valid key; 403 ``api_key_invalid`` for anything else."""
        if self._accepted_hash is not None and hmac.compare_digest(
            self._digest(value), self._accepted_hash
        ):
            return self._accepted
        match = KEY_FORMAT.fullmatch(value)
        if match is None:
            raise AuthError(API_KEY_INVALID, 403)
        key_id, secret = match.groups()
        known = self._known(key_id)
        # Compared even for unknown ids, so timing does not tell whether an id exists.
        genuine = hmac.compare_digest(self._digest(secret), known.secret_hash or "0" * 64)
        if not (genuine and known.usable and time.time() < known.expires_at):
            raise AuthError(API_KEY_INVALID, 403)
        self._note_use(key_id)
        return known.principal

    def _known(self, key_id: str) -> _KnownKey:
        """The cached view of a key, else read from the database (and cached)."""
        known: _KnownKey = cached(self._cache, key_id, lambda: self._read(key_id))
        return known

    def _read(self, key_id: str) -> _KnownKey:
        """The view of a key from the database (``_UNKNOWN`` when no key has this id)."""
        record = ApiKey.lookup(key_id)
        return _UNKNOWN if record is None else self._snapshot(record)

    def _snapshot(self, record: ApiKey) -> _KnownKey:
        """What a request needs to know about a key, with the owner's cap applied."""
        owner = record.owner
        scopes = record.scope_set
        usable = record.revoked_at is None
        if owner is not None:
            scopes &= owner.scope_set
            usable = usable and owner.is_active
            subject, owner_name = owner.id, owner.username
        else:
            subject = SERVICE_SUBJECT + str(record.owner_service)
            owner_name = str(record.owner_service)
        principal = Principal(
            kind=API_KEY,
            subject=subject,
            scopes=scopes,
            claims={
                "sub": subject,
                "key_id": record.id,
                "key_name": record.name,
                "owner": owner_name,
                "scopes": sorted(scopes),
            },
            issuer=self._issuer,
            credential_id=record.id,
            name=record.name,
        )
        return _KnownKey(record.secret_hash, record.expires_at.timestamp(), usable, principal)

    def _note_use(self, key_id: str) -> None:
        """Record the use in the database at most once per interval per process."""
        now = time.monotonic()
        with self._touch_lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < LAST_USED_INTERVAL.total_seconds():
                return
            self._touched[key_id] = now
            if len(self._touched) > 10_000:
                self._touched.clear()
        try:
            ApiKey.touch(key_id, aware_utc_now(), LAST_USED_INTERVAL)
        except Exception:  # a lost bookkeeping write must not fail the request
            logger.warning("Could not record the use of API key %s.", key_id, exc_info=True)

    def _digest(self, secret: str) -> str:
        """HMAC-SHA256 of a secret under the key derived from SECRET_KEY, as hex."""
        return hmac.new(self._hmac_key, secret.encode(), hashlib.sha256).hexdigest()

    # --- management (CLI, HTTP, admin pages) ------------------------------------------------

    def create(
        self,
        name: str,
        scopes: Iterable[str] | str,
        *,
        owner: User | None = None,
        service: str | None = None,
        expires_in: timedelta | None = None,
        created_by: str | None = None,
    ) -> IssuedKey:
        """Create a key for a user or a named service; the full key is returned once."""
        name = name.strip()
        if not name or len(name) > 100:
            raise ApiKeyError(
                "Give the key a name of 1 to 100 characters, e.g. 'ci-deploy'.", "name"
            )
        if (owner is None) == (service is None or not service.strip()):
            raise ApiKeyError(
                "A key belongs to exactly one owner: a user or a service name.", "owner"
            )
        wanted = parse_scopes(scopes)
        if owner is not None:
            beyond = sorted(wanted - owner.scope_set)
            if beyond:
                raise ApiKeyError(
                    f"The user {owner.username!r} does not hold the scopes "
                    f"{', '.join(beyond)}, so a key of theirs cannot grant them.",
                    "scopes",
                )
        ttl = self.default_ttl if expires_in is None else expires_in
        if ttl <= timedelta(0) or ttl > self.max_ttl:
            raise ApiKeyError(
                f"A key must expire within {self.max_ttl.days} days (API_KEY_MAX_TTL_DAYS); "
                "give a shorter lifetime, e.g. 90d.",
                "expires_in",
            )
        secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
        for _ in range(3):
            key_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
            record = ApiKey(
                id=key_id,
                name=name,
                owner=owner,
                owner_service=service.strip() if service else None,
                scopes=join_scopes(wanted),
                secret_hash=self._digest(secret),
                expires_at=aware_utc_now() + ttl,
                created_by=created_by,
            )
            try:
                record.insert()
            except ConflictError:
                continue  # an id collision: try another id
            self._publish(key_id)  # drops a cached "unknown id" everywhere
            return IssuedKey(record, f"{KEY_PREFIX}_{key_id}_{secret}")
        raise ApiKeyError("Could not find a free key id; try again.")

    def listed(self, owner: User | None = None, include_revoked: bool = False) -> list[ApiKey]:
        """Keys, newest first; only ``owner``'s when given."""
        return ApiKey.listed(owner.id if owner else None, include_revoked)

    def get(self, key_id: str, owner: User | None = None) -> ApiKey:
        """One key (of ``owner`` when given), or NotFoundError."""
        record = ApiKey.lookup(key_id)
        if record is None or (owner is not None and record.owner_user_id != owner.id):
            raise NotFoundError(f"No API key has the id {key_id!r}; list the keys to see ids.")
        return record

    def revoke(self, key_id: str, owner: User | None = None) -> ApiKey:
        """Revoke a key now, on every worker and instance; revoking twice is harmless."""
        record = self.get(key_id, owner)
        if record.revoked_at is None:
            record.revoked_at = aware_utc_now()
            record.update()
        self._publish(key_id)
        return record

    def forget_owner(self, user_id: str) -> None:
        """The user's roles, state or existence changed: every process re-reads their keys."""
        self.announce(ApiKey.ids_of_owner(user_id))

    def delete_owner_keys(self, user_id: str) -> list[str]:
        """Delete a user's keys in the current transaction; ``announce`` them after the commit.

        Not left to ON DELETE CASCADE, which SQLite applies only with a connection pragma.
        """
        return ApiKey.delete_for_owner(user_id)

    def announce(self, key_ids: Iterable[str]) -> None:
        """Every process drops its copy of these keys (call after the change is committed)."""
        for key_id in key_ids:
            self._publish(key_id)

    def _publish(self, key_id: str) -> None:
        """Make every process drop its copy of this key (after the database commit)."""
        if self._cache is not None:
            self._cache.publish(key_id, PUBLISH_TTL_SECONDS)


def api_keys(app: Flask | None = None) -> ApiKeys:
    """The app's ``ApiKeys`` service."""
    service: ApiKeys = (app or current_app).extensions[EXTENSION]
    return service


def init_app(app: Flask) -> ApiKeys:
    """Create the service and accept ``X-Api-Key`` in the authentication pipeline."""
    service = ApiKeys(app, tracked_cache(app, CACHE_PREFIX))
    app.extensions[EXTENSION] = service
    auth_state(app).api_keys = service.authenticate
    return service
