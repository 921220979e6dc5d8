"""An issuer's signing keys (JWKS): cached, refreshed on rotation, kept through outages.

The rules (per issuer, per process):
- the key set is fetched on first use and kept ``JWKS_CACHE_SECONDS``;
- a token whose ``kid`` is not in the set triggers a refetch, at most once per
  ``JWKS_MIN_REFETCH_SECONDS``: a rotated key is accepted at once, while a flood of forged
  kids costs the provider at most one request per window;
- when a fetch fails, the last good set keeps working (logged) and attempts back off from one
  second up to ``JWKS_MIN_REFETCH_SECONDS``; with no set at all, the issuer's tokens get 503;
- discovery (``<issuer>/.well-known/openid-configuration``) must name exactly the configured
  issuer; its ``jwks_uri`` is read again after a failed key fetch (the set may have moved).
Header parameters that point at keys (``jku``, ``x5u``, ``jwk``) are never read or fetched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWTError

from auth.errors import EXTERNAL_TOKEN_INVALID, AuthError, AuthUnavailableError

__all__ = [
    "FETCH_TIMEOUT_SECONDS",
    "KeyFetchError",
    "KeySet",
    "discover_jwks_uri",
    "fetch_json",
    "signing_keys",
]

logger = logging.getLogger(__name__)

# A provider that hangs holds a worker at most this long, and only once per back-off step.
FETCH_TIMEOUT_SECONDS = 2.0
FIRST_RETRY_SECONDS = 1.0

Jwk = Mapping[str, object]
FetchJson = Callable[[str], object]


class KeyFetchError(Exception):
    """A discovery document or key set could not be fetched or is unusable; says why."""


def fetch_json(url: str) -> object:
    """GET a JSON object with a short timeout and no redirects; raise ``KeyFetchError``.

    PyJWT's JWKS client does the HTTP (http/https only, redirects refused), so this module
    holds no HTTP code of its own; it serves discovery documents as well as key sets.
    """
    client = PyJWKClient(url, cache_jwk_set=False, timeout=FETCH_TIMEOUT_SECONDS)
    try:
        return client.fetch_data()
    except (PyJWTError, OSError, ValueError) as exc:
        raise KeyFetchError(f"GET {url} failed: {type(exc).__name__}: {exc}") from None


def signing_keys(document: object) -> dict[str, Jwk]:
    """The usable signing keys of a JWKS document by ``kid``; raise when there are none."""
    raw_keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(raw_keys, list):
        raise KeyFetchError("The key set is not a JWKS document (no 'keys' list).")
    keys: dict[str, Jwk] = {}
    for raw in raw_keys:
        if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str):
            continue
        if raw.get("use", "sig") != "sig":
            continue  # an encryption key is not for verifying signatures
        try:
            PyJWK(raw)
        except PyJWTError:
            continue  # unsupported key type or curve: unusable here, not fatal
        keys[raw["kid"]] = raw
    if not keys:
        raise KeyFetchError("The key set holds no usable signing key with a 'kid'.")
    return keys


def discover_jwks_uri(
    discovery_url: str, issuer: str, require_https: bool, fetch: FetchJson = fetch_json
) -> str:
    """The ``jwks_uri`` of a discovery document whose ``issuer`` is exactly ``issuer``."""
    document = fetch(discovery_url)
    named = document.get("issuer") if isinstance(document, dict) else None
    if named != issuer:
        raise KeyFetchError(
            f"The discovery document at {discovery_url} names the issuer {named!r}, not "
            f"{issuer!r}; they must match exactly (check the configured 'issuer')."
        )
    assert isinstance(document, dict)
    uri = document.get("jwks_uri")
    scheme = urlsplit(uri).scheme if isinstance(uri, str) else ""
    if scheme not in ("http", "https") or (require_https and scheme != "https"):
        wanted = "an https" if require_https else "an http(s)"
        raise KeyFetchError(f"The discovery document's jwks_uri {uri!r} is not {wanted} URL.")
    return str(uri)


class KeySet:
    """One issuer's signing keys by ``kid``, with the caching and refetch rules above."""

    def __init__(
        self,
        name: str,
        issuer: str,
        *,
        jwks_uri: str = "",
        discovery_url: str = "",
        cache_seconds: float,
        min_refetch_seconds: float,
        require_https: bool = False,
        fetch: FetchJson = fetch_json,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.issuer = issuer
        self.clock = clock
        self._configured_uri = jwks_uri
        self._jwks_uri = jwks_uri
        self._discovery_url = discovery_url
        self._cache_seconds = cache_seconds
        self._min_refetch = min_refetch_seconds
        self._require_https = require_https
        self._fetch = fetch
        self._keys: dict[str, Jwk] | None = None
        self._expires = 0.0
        self._retry_at = 0.0
        self._failures = 0
        self._refetched_at: float | None = None
        # One fetch at a time; requests that queue behind it see its result, not a new fetch.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"KeySet(name={self.name!r}, issuer={self.issuer!r})"

    def key(self, kid: str) -> Jwk:
        """The JWK for ``kid``: 401 invalid_token when unknown, 503 when no set can be had."""
        keys, now = self._keys, self.clock()
        if keys is not None and now < self._expires and kid in keys:
            return keys[kid]
        with self._lock:
            now = self.clock()
            loaded = False
            if self._keys is None or now >= self._expires:
                loaded = self._load(now)
            unknown = self._keys is not None and kid not in self._keys and not loaded
            # The window starts with a refetch actually tried (not one skipped by back-off).
            if unknown and self._refetch_due(now) and self._load(now):
                self._refetched_at = now
            if self._keys is None:
                raise AuthUnavailableError(
                    "The identity provider that issued this token cannot be reached; "
                    "try again shortly."
                )
            jwk = self._keys.get(kid)
        if jwk is None:
            raise AuthError(EXTERNAL_TOKEN_INVALID)
        return jwk

    def _refetch_due(self, now: float) -> bool:
        """True when no unknown-kid refetch happened within JWKS_MIN_REFETCH_SECONDS."""
        return self._refetched_at is None or now - self._refetched_at >= self._min_refetch

    def check(self) -> None:
        """Readiness: passes while a set younger than its TTL is held, else fetches one now."""
        with self._lock:
            if self._keys is None or self.clock() >= self._expires:
                self._load(self.clock())
            if self._keys is None or self.clock() >= self._expires:
                raise AuthUnavailableError(f"No current key set for the issuer {self.name}.")

    def _load(self, now: float) -> bool:
        """Fetch the set unless backing off after failures; True when a fetch was tried."""
        if now < self._retry_at:
            return False
        try:
            if not self._jwks_uri:
                self._jwks_uri = discover_jwks_uri(
                    self._discovery_url, self.issuer, self._require_https, self._fetch
                )
            keys = signing_keys(self._fetch(self._jwks_uri))
        except KeyFetchError as exc:
            self._jwks_uri = self._configured_uri
            self._failures += 1
            doublings = min(self._failures - 1, 20)  # bounded: a long outage must not overflow
            delay = min(self._min_refetch, FIRST_RETRY_SECONDS * 2**doublings)
            self._retry_at = self.clock() + delay
            if self._keys is None:
                logger.error("Issuer %s: no key set; its tokens get 503 (%s)", self.name, exc)
            else:
                logger.warning(
                    "Issuer %s: key refresh failed, the last good key set stays in use (%s)",
                    self.name,
                    exc,
                )
            return True
        self._keys = keys
        self._expires = self.clock() + self._cache_seconds
        self._failures = 0
        self._retry_at = 0.0
        return True
