"""Users' login: access and refresh tokens, refresh with rotation, logout, me, own password."""

from __future__ import annotations

import hashlib
from typing import Literal

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from api.ops.ratelimit import rate_limit
from api.validation import operation
from auth import families, users
from auth.policies import protected_route
from auth.principal import USER, require_principal

auth_bp = Blueprint("auth", __name__, url_prefix="/api/auth")

# Generous bounds: a longer value cannot be right, and argon2 need not hash megabytes.
MAX_SECRET_INPUT = 1024
user_token_only = protected_route(credentials=USER)


class LoginBody(BaseModel):
    """Body of POST /api/auth/login."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=MAX_SECRET_INPUT)


class RefreshBody(BaseModel):
    """Body of POST /api/auth/refresh."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=256)


class PasswordChange(BaseModel):
    """Body of PUT /api/auth/password."""

    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=MAX_SECRET_INPUT)
    new_password: str = Field(min_length=1, max_length=MAX_SECRET_INPUT)


class TokenResponse(BaseModel):
    """What login and refresh return (OAuth 2 token response field names)."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class MeOut(BaseModel):
    """The calling user."""

    id: str
    username: str
    email: str | None
    roles: list[str]
    scopes: list[str]


def login_ip_limit() -> str:
    """RATELIMIT_LOGIN_IP: the limit per client IP on POST /api/auth/login."""
    return str(current_app.config["RATELIMIT_LOGIN_IP"])


def login_username_limit() -> str:
    """RATELIMIT_LOGIN_USERNAME: the limit per username on password checks."""
    return str(current_app.config["RATELIMIT_LOGIN_USERNAME"])


def _username_key() -> str:
    """The rate-limit key of the username being tried (hashed: any text, fixed length)."""
    return "username:" + hashlib.sha256(g.password_check_username.encode()).hexdigest()[:32]


# One bucket per username for every place that checks passwords (the API login, the own
# password change, the admin login), not one per endpoint, as Flask-Limiter would count.
@rate_limit(login_username_limit, shared_scope="password-checks", key_func=_username_key)
def _count_password_check() -> None:
    """Count one password check against its username's limit (429 once it is reached)."""


def count_password_check(username: str) -> None:
    """Count a password check for ``username``, whichever client IP it comes from."""
    g.password_check_username = users.normalise_username(username)
    _count_password_check()


def _tokens(pair: families.TokenPair) -> Response:
    """The token response; never cached by anything on the way."""
    response = jsonify(pair.as_json())
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@auth_bp.post("/login")
@rate_limit(login_ip_limit)
@operation(responses={200: TokenResponse}, errors=(401, 429))
def login(body: LoginBody) -> Response:
    """Check a username and password; start a login and return its tokens."""
    count_password_check(body.username)
    user = users.verify_login(body.username, body.password)
    return _tokens(families.issue(user, request.user_agent.string, request.remote_addr))


@auth_bp.post("/refresh")
@operation(responses={200: TokenResponse}, errors=(401,))
def refresh(body: RefreshBody) -> Response:
    """Exchange a refresh token for new tokens; the one sent is spent."""
    return _tokens(families.refresh(body.refresh_token))


@auth_bp.post("/logout")
@user_token_only
@operation(responses={204: None})
def logout() -> tuple[str, int]:
    """End this login: its access and refresh tokens are refused from now on, everywhere."""
    families.revoke_family(require_principal().credential_id)
    return "", 204


@auth_bp.get("/me")
@user_token_only
@operation(responses={200: MeOut}, errors=(404,))
def me() -> Response:
    """The calling user as the database has it now."""
    user = users.get_user(require_principal().subject)
    return jsonify(
        id=user.id,
        username=user.username,
        email=user.email,
        roles=sorted(user.role_names),
        scopes=sorted(user.scope_set),
    )


@auth_bp.put("/password")
@user_token_only
@operation(responses={204: None}, errors=(404, 429))
def change_password(body: PasswordChange) -> tuple[str, int]:
    """Change the caller's own password; the caller's other logins end."""
    principal = require_principal()
    count_password_check(principal.name)
    user = users.get_user(principal.subject)
    users.change_own_password(
        user, body.current_password, body.new_password, family=principal.credential_id
    )
    return "", 204
