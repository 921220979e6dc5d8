"""Authentication: whatever credential a request carries becomes one ``Principal``.

A bearer token of ours (a JWE) is a session token (checked against the session cookie) or a
user's access token (checked against its login family); a three-part JWT goes to the
configured third-party issuers; an ``X-Api-Key`` header to the API keys. The credential
services register themselves in ``AuthState`` from their own ``init_app``; a kind with no
service behind it is refused, never let through.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from flask import Flask, current_app, g, request, session

from auth.errors import (
    API_KEY_MISSING,
    CREDENTIAL_NOT_ACCEPTED,
    HEADER_MISSING,
    INVALID_TOKEN,
    SESSION_INVALID,
    TOKEN_MISSING,
    WRONG_SCHEME,
    AuthError,
)
from auth.principal import (
    API_KEY,
    CREDENTIAL_KINDS,
    EXTERNAL,
    KINDS,
    SESSION,
    TOKEN,
    USER,
    Principal,
)
from auth.tokens import VERIFIED_CACHE_SIZE, AccessClaims, TokenClaims, TokenCodec

EXTENSION = "auth"
SESSION_UID = "uid"
ALL_KINDS = frozenset(KINDS)
TOKEN_KINDS = CREDENTIAL_KINDS[TOKEN]

FamilyCheck = Callable[[AccessClaims], None]
CredentialReader = Callable[[str], Principal]


@dataclass
class AuthState:
    """The app's token codec and the services behind each kind of credential."""

    codec: TokenCodec
    # Raises AuthError when the login family of an access token was revoked (auth.families).
    family_check: FamilyCheck | None = None
    # Turns an X-Api-Key value into a Principal or raises AuthError (auth.apikeys).
    api_keys: CredentialReader | None = None
    # Turns a third-party JWT into a Principal or raises AuthError (auth.issuers).
    issuers: CredentialReader | None = None


def auth_state(app: Flask | None = None) -> AuthState:
    """The ``AuthState`` of ``app`` (default: the current app)."""
    state: AuthState = (app or current_app).extensions[EXTENSION]
    return state


def bearer_token() -> str:
    """The token from ``Authorization: Bearer <token>``; distinct errors for each header fault."""
    return _bearer(request.environ.get("HTTP_AUTHORIZATION"))


def _bearer(header: str | None) -> str:
    """The token of an ``Authorization`` header value (see ``bearer_token``)."""
    if header is None:
        raise AuthError(HEADER_MISSING)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError(WRONG_SCHEME)
    token = token.strip()
    if not token:
        raise AuthError(TOKEN_MISSING)
    return token


def authenticate(kinds: frozenset[str] = ALL_KINDS) -> Principal:
    """Authenticate the request with a credential of one of ``kinds``; store and return it.

    An ``X-Api-Key`` header is used when the route accepts API keys; otherwise the
    ``Authorization`` header. No usable credential is a 401, as is a bad one.
    """
    # Every protected request runs this: the headers are read from the WSGI environ, as
    # ``request.headers`` reads them, without building its view of them; each context proxy
    # is resolved once (an attribute read through a proxy costs several times a plain one).
    state: AuthState = current_app._get_current_object().extensions[EXTENSION]  # type: ignore[attr-defined]
    environ = request._get_current_object().environ  # type: ignore[attr-defined]
    api_key = environ.get("HTTP_X_API_KEY")
    authorization = environ.get("HTTP_AUTHORIZATION")
    accepts_tokens = not kinds.isdisjoint(TOKEN_KINDS)
    if api_key is not None and API_KEY in kinds:
        principal = _api_key_principal(state, api_key)
    elif authorization is not None and accepts_tokens:
        principal = _token_principal(state, _bearer(authorization), kinds)
    elif not accepts_tokens:
        raise AuthError(API_KEY_MISSING)
    elif api_key is not None:
        raise AuthError(CREDENTIAL_NOT_ACCEPTED)
    else:
        raise AuthError(HEADER_MISSING)
    g._get_current_object().principal = principal
    return principal


def _api_key_principal(state: AuthState, value: str) -> Principal:
    """The Principal of an API key (403 api_key_invalid for a bad key, as the seeds do)."""
    if state.api_keys is None:
        raise AuthError(CREDENTIAL_NOT_ACCEPTED)
    return state.api_keys(value.strip())


def _token_principal(state: AuthState, token: str, kinds: frozenset[str]) -> Principal:
    """Our JWE (five parts) or a third-party JWT (three parts), each checked fully."""
    if token.count(".") == 2:
        if EXTERNAL not in kinds or state.issuers is None:
            raise AuthError(INVALID_TOKEN)
        return state.issuers(token)
    claims = state.codec.verify(token)
    if isinstance(claims, TokenClaims):
        if SESSION not in kinds:
            raise AuthError(CREDENTIAL_NOT_ACCEPTED)
        _check_session_binding(claims)
        principal = session_principal(claims)
    else:
        if USER not in kinds:
            raise AuthError(CREDENTIAL_NOT_ACCEPTED)
        _check_family(state, claims)
        principal = user_principal(claims)
    g._get_current_object().token_claims = claims
    return principal


def _check_session_binding(claims: TokenClaims) -> None:
    """A session token is good only with the cookie of the live session it names."""
    uid = session._get_current_object().get(SESSION_UID)  # type: ignore[attr-defined]
    if not isinstance(uid, str) or not hmac.compare_digest(uid, claims.uid):
        raise AuthError(SESSION_INVALID)


def _check_family(state: AuthState, claims: AccessClaims) -> None:
    """An access token is good while its login family lives (logout revokes the family)."""
    if state.family_check is None:
        raise AuthError(INVALID_TOKEN)
    state.family_check(claims)


# A verified token's claims always make the same Principal, so it is built once per token
# and process, like the verification itself (the checks above still run on every request);
# its claims are read-only (Principal freezes them), as every request with that token shares it.
@lru_cache(maxsize=VERIFIED_CACHE_SIZE)
def session_principal(claims: TokenClaims) -> Principal:
    """The Principal of a verified session token (after its session binding is checked)."""
    return Principal(
        kind=SESSION,
        subject=claims.uid,
        scopes=frozenset(claims.permissions),
        claims={
            "sub": claims.uid,
            "uid": claims.uid,
            "jti": claims.jti,
            "iat": claims.iat,
            "exp": claims.exp,
            "permissions": list(claims.permissions),
            "scopes": list(claims.permissions),
        },
        issuer=claims.iss,
        credential_id=claims.uid,
    )


@lru_cache(maxsize=VERIFIED_CACHE_SIZE)
def user_principal(claims: AccessClaims) -> Principal:
    """The Principal of a verified access token (after its login family is checked)."""
    return Principal(
        kind=USER,
        subject=claims.sub,
        roles=frozenset(claims.roles),
        scopes=frozenset(claims.scopes),
        claims={
            "sub": claims.sub,
            "fam": claims.fam,
            "name": claims.name,
            "jti": claims.jti,
            "iat": claims.iat,
            "exp": claims.exp,
            "roles": list(claims.roles),
            "scopes": list(claims.scopes),
        },
        issuer=claims.iss,
        credential_id=claims.fam,
        name=claims.name,
    )
