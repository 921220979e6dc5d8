"""The public names: issue session tokens, protect views, answer "who is calling".

``from auth.auth import requires_auth, create_enc_token, decrypt`` as in DESIGN.md; the rules
of ``protected_route`` live in ``auth.policies`` and the Principal in ``auth.principal``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from flask import Flask, g, session

from auth.credentials import (
    EXTENSION,
    SESSION_UID,
    AuthState,
    auth_state,
    authenticate,
    bearer_token,
)
from auth.errors import INVALID_TOKEN, AuthError
from auth.policies import build_requirement, guard
from auth.principal import Principal, current_principal, require_principal
from auth.tokens import AccessClaims, Claims, TokenClaims, TokenCodec

__all__ = [
    "AccessClaims",
    "AuthError",
    "Principal",
    "TokenClaims",
    "authenticate",
    "bearer_token",
    "create_enc_token",
    "current_claims",
    "current_principal",
    "decrypt",
    "init_app",
    "require_principal",
    "requires_api_key",
    "requires_auth",
    "role_required",
]

P = ParamSpec("P")
R = TypeVar("R")


def init_app(app: Flask) -> AuthState:
    """Derive the token keys from SECRET_KEY once and keep them in ``app.extensions``."""
    if EXTENSION in app.extensions:
        raise RuntimeError("auth.init_app(app) was already called for this app; call it once.")
    codec = TokenCodec(
        secret=app.config["SECRET_KEY"],
        issuer=app.config["TOKEN_ISSUER"],
        ttl_seconds=app.config["TOKEN_TTL_SECONDS"],
        leeway_seconds=app.config["TOKEN_LEEWAY_SECONDS"],
    )
    state = app.extensions[EXTENSION] = AuthState(codec=codec)
    return state


def create_enc_token(permissions: Iterable[str] = ()) -> str:
    """Issue a token bound to the caller's server-side session (creating its uid if needed).

    The session keeps one uid, so a second token from the same session does not revoke the
    first: both stay valid until they expire or the session ends (DELETE /api/session).
    """
    uid = session.get(SESSION_UID)
    if not isinstance(uid, str):
        uid = uuid.uuid4().hex
        session[SESSION_UID] = uid
    return auth_state().codec.issue(uid, permissions)


def decrypt(token: str) -> str:
    """Return the session uid inside a genuine, current session token or raise ``AuthError``."""
    claims = auth_state().codec.verify(token)
    if not isinstance(claims, TokenClaims):
        raise AuthError(INVALID_TOKEN)
    return claims.uid


def current_claims() -> Claims | None:
    """The verified claims of this request's own token (session or access), else None.

    For any credential (API keys and third-party tokens too) use ``current_principal()``.
    """
    claims: Claims | None = g.get("token_claims")
    return claims


def requires_auth(
    permission: str = "", *, roles: Iterable[str] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a view: 401 without a valid credential, 403 without ``permission`` or a role.

    ``permission`` is a scope the caller must hold; ``roles``, any one of them. Every kind of
    credential is accepted; use ``protected_route`` to choose. The view's own exceptions pass
    through untouched.
    """
    return guard(build_requirement(scopes=permission or None, roles=roles))


def role_required(roles: Iterable[str] | str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a view for callers holding any one of ``roles`` (``role_required(["admin"])``)."""
    return guard(build_requirement(roles=roles))


def requires_api_key(
    scopes: Iterable[str] | str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a view for API keys only (``X-Api-Key``), holding every one of ``scopes``."""
    return guard(build_requirement(scopes=scopes, credentials="api_key"))
