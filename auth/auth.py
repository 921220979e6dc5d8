"""Flask side of the tokens: issue one for the session, protect views, answer "who is calling"."""

from __future__ import annotations

import functools
import hmac
import uuid
from collections.abc import Callable, Iterable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, g, request, session

from auth.errors import (
    HEADER_MISSING,
    PERMISSION_DENIED,
    SESSION_INVALID,
    TOKEN_MISSING,
    WRONG_SCHEME,
    AuthError,
)
from auth.tokens import TokenClaims, TokenCodec

__all__ = [
    "AuthError",
    "TokenClaims",
    "create_enc_token",
    "current_claims",
    "decrypt",
    "init_app",
    "requires_auth",
]

EXTENSION = "auth"
SESSION_UID = "uid"

P = ParamSpec("P")
R = TypeVar("R")


def init_app(app: Flask) -> TokenCodec:
    """Derive the token keys from SECRET_KEY once and keep the codec in ``app.extensions``."""
    if EXTENSION in app.extensions:
        raise RuntimeError("auth.init_app(app) was already called for this app; call it once.")
    codec = TokenCodec(
        secret=app.config["SECRET_KEY"],
        issuer=app.config["TOKEN_ISSUER"],
        ttl_seconds=app.config["TOKEN_TTL_SECONDS"],
        leeway_seconds=app.config["TOKEN_LEEWAY_SECONDS"],
    )
    app.extensions[EXTENSION] = codec
    return codec


def _codec() -> TokenCodec:
    """The current app's codec."""
    codec: TokenCodec = current_app.extensions[EXTENSION]
    return codec


def create_enc_token(permissions: Iterable[str] = ()) -> str:
    """Issue a token bound to the caller's server-side session (creating its uid if needed).

    The session keeps one uid, so a second token from the same session does not revoke the
    first: both stay valid until they expire or the session ends (DELETE /api/session).
    """
    uid = session.get(SESSION_UID)
    if not isinstance(uid, str):
        uid = uuid.uuid4().hex
        session[SESSION_UID] = uid
    return _codec().issue(uid, permissions)


def decrypt(token: str) -> str:
    """Return the session uid inside a genuine, current token or raise ``AuthError``."""
    return _codec().verify(token).uid


def bearer_token() -> str:
    """The token from ``Authorization: Bearer <token>``; distinct errors for each header fault."""
    header = request.headers.get("Authorization")
    if header is None:
        raise AuthError(HEADER_MISSING)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError(WRONG_SCHEME)
    token = token.strip()
    if not token:
        raise AuthError(TOKEN_MISSING)
    return token


def authenticate(permission: str = "") -> TokenClaims:
    """Check the request's token, its session binding and ``permission``; store the claims."""
    claims = _codec().verify(bearer_token())
    uid = session.get(SESSION_UID)
    if not isinstance(uid, str) or not hmac.compare_digest(uid, claims.uid):
        raise AuthError(SESSION_INVALID)
    if permission and permission not in claims.permissions:
        raise AuthError(PERMISSION_DENIED, 403)
    g.token_claims = claims
    return claims


def current_claims() -> TokenClaims | None:
    """The verified claims of this request, or None when it was not authenticated."""
    return g.get("token_claims")


def requires_auth(permission: str = "") -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a view: 401 (or 403 for a missing permission) before the view runs.

    Errors raised by the view itself pass through untouched.
    """

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            authenticate(permission)
            return view(*args, **kwargs)

        return wrapper

    return decorator
