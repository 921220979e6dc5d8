"""The Principal: one answer to "who is calling", whatever credential the request carried."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flask import g, has_app_context

from auth.errors import HEADER_MISSING, AuthError

__all__ = [
    "API_KEY",
    "CREDENTIAL_KINDS",
    "EXTERNAL",
    "KINDS",
    "SESSION",
    "TOKEN",
    "USER",
    "Principal",
    "credential_kinds",
    "current_principal",
    "current_subject",
    "require_principal",
]

# Principal kinds: what authenticated the request.
SESSION = "session"  # a session token with its cookie (GET /api/public)
USER = "user"  # a user's access token (POST /api/auth/login)
API_KEY = "api_key"  # an X-Api-Key header
EXTERNAL = "external"  # a bearer token of a configured third-party issuer
KINDS = (SESSION, USER, API_KEY, EXTERNAL)
# Credential names a route may accept: "token" is any bearer token (session, user, external).
TOKEN = "token"  # noqa: S105 (a credential kind, not a secret)
CREDENTIAL_KINDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        TOKEN: frozenset({SESSION, USER, EXTERNAL}),
        API_KEY: frozenset({API_KEY}),
        SESSION: frozenset({SESSION}),
        USER: frozenset({USER}),
        EXTERNAL: frozenset({EXTERNAL}),
    }
)
_EMPTY: Mapping[str, object] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: built once per request by authentication, read by every rule.

    ``claims`` is normalised: plain JSON values under the names rules use (``sub``,
    ``roles``, ``scopes`` and each credential's own claims); ``credential_id`` names the
    credential itself (session uid, login family, API key id, token ``jti``) for rate limits
    and revocation; ``name`` is what the access log shows (a username, a key's name).
    """

    kind: str
    subject: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    claims: Mapping[str, object] = field(default_factory=lambda: _EMPTY)
    issuer: str = ""
    credential_id: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Principal kind {self.kind!r} is not one of {', '.join(KINDS)}.")
        # Principals are cached and shared by the requests of one credential: their claims
        # are read-only, so no request can change them for the next.
        if not isinstance(self.claims, MappingProxyType):
            object.__setattr__(self, "claims", freeze(self.claims))

    def has_role(self, *roles: str) -> bool:
        """True when the principal holds any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def has_scopes(self, *scopes: str) -> bool:
        """True when the principal holds every one of ``scopes``."""
        return self.scopes.issuperset(scopes)


def freeze(value: object) -> Any:
    """A read-only copy of JSON data (objects as mapping proxies, arrays as tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def credential_kinds(credentials: Iterable[str] | str | None) -> frozenset[str]:
    """The principal kinds a route accepts, from credential names; bad names raise at once."""
    if credentials is None:
        return frozenset(KINDS)
    names = [credentials] if isinstance(credentials, str) else list(credentials)
    if not names:
        raise ValueError(
            "credentials is empty; name at least one of: " + ", ".join(CREDENTIAL_KINDS)
        )
    unknown = [name for name in names if name not in CREDENTIAL_KINDS]
    if unknown:
        raise ValueError(
            f"Unknown credential kind(s) {unknown}; use some of: {', '.join(CREDENTIAL_KINDS)}."
        )
    kinds: set[str] = set()
    for name in names:
        kinds |= CREDENTIAL_KINDS[name]
    return frozenset(kinds)


def current_principal() -> Principal | None:
    """The request's Principal, or None when it was not authenticated."""
    # The proxy resolved once, then the namespace read: g.get(...) goes through the proxy's
    # attribute lookup, several times slower, and this runs for every access line.
    principal: Principal | None = g._get_current_object().get("principal")
    return principal


def require_principal() -> Principal:
    """The request's Principal; a 401 ``AuthError`` when the request was not authenticated.

    Views under ``protected_route`` / ``requires_auth`` always have one; a view that forgot
    its decorator refuses the caller as a request without a credential, never lets it through.
    """
    principal = current_principal()
    if principal is None:
        raise AuthError(HEADER_MISSING)
    return principal


def current_subject() -> str | None:
    """The subject of the request's Principal; None outside a request or unauthenticated."""
    if not has_app_context():
        return None
    principal = current_principal()
    return principal.subject if principal is not None else None
