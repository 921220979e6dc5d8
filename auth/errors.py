"""AuthError: raised for every authentication or authorisation failure, and its codes."""

from __future__ import annotations


class AuthUnavailableError(Exception):
    """Authentication needs a service that cannot be reached now (HTTP 503); its message is
    written for the client (an identity provider's keys, the token deny-list)."""


class AuthError(Exception):
    """An authentication failure: ``error`` holds ``code`` and ``description``."""

    def __init__(self, error: dict[str, str], status_code: int = 401) -> None:
        super().__init__(error.get("description", "Authentication failed."))
        self.error = error
        self.status_code = status_code

    @property
    def code(self) -> str:
        """Machine-readable reason, e.g. ``authorization_header_missing``."""
        return self.error.get("code", "invalid_token")

    @property
    def description(self) -> str:
        """Sentence for the client."""
        return self.error.get("description", "Authentication failed.")


# Codes a client can act on, documented in the README; raise as ``AuthError(HEADER_MISSING)``.
# Every cryptographic failure shares INVALID_TOKEN with one message so that responses give no
# oracle about which check failed.
HEADER_MISSING = {
    "code": "authorization_header_missing",
    "description": "The Authorization header is missing; send 'Authorization: Bearer <token>'.",
}

WRONG_SCHEME = {
    "code": "invalid_header",
    "description": "The Authorization header must use the Bearer scheme: 'Bearer <token>'.",
}

TOKEN_MISSING = {
    "code": "token_missing",
    "description": "The Authorization header has no token after 'Bearer'.",
}

INVALID_TOKEN = {
    "code": "invalid_token",
    "description": "The token is invalid; get a new one from GET /api/public.",
}

TOKEN_EXPIRED = {
    "code": "token_expired",
    "description": "The token has expired; get a new one (GET /api/public for a session "
    "token, POST /api/auth/refresh for an access token).",
}

TOKEN_NOT_YET_VALID = {
    "code": "token_not_yet_valid",
    "description": "The token is not valid yet; check the client's clock.",
}

SESSION_INVALID = {
    "code": "session_invalid",
    "description": "The token is not bound to a live session; send the session cookie that "
    "came with the token, or get a new token from GET /api/public.",
}

PERMISSION_DENIED = {
    "code": "permission_denied",
    "description": "The token does not grant the permission this URL needs.",
}

CREDENTIAL_NOT_ACCEPTED = {
    "code": "credential_not_accepted",
    "description": "This URL does not accept this kind of credential; see the API's "
    "documentation for the credentials it takes.",
}

API_KEY_MISSING = {
    "code": "api_key_missing",
    "description": "This URL needs an API key; send it in the 'X-Api-Key' header.",
}

API_KEY_INVALID = {
    "code": "api_key_invalid",
    "description": "The API key is not valid (unknown, wrong, expired or revoked); "
    "ask for a new one.",
}

TOKEN_REVOKED = {
    "code": "token_revoked",
    "description": "The token was revoked (logout, password or role change); log in again.",
}

INVALID_CREDENTIALS = {
    "code": "invalid_credentials",
    "description": "The username or password is wrong, or the account is disabled.",
}

INVALID_REFRESH_TOKEN = {
    "code": "invalid_refresh_token",
    "description": "The refresh token is not valid; log in again with POST /api/auth/login.",
}

REFRESH_TOKEN_EXPIRED = {
    "code": "refresh_token_expired",
    "description": "The refresh token has expired; log in again with POST /api/auth/login.",
}

REFRESH_TOKEN_REUSED = {
    "code": "refresh_token_reused",
    "description": "This refresh token was already used, so it may have been stolen: every "
    "token of this login is now revoked. Log in again with POST /api/auth/login.",
}

REFRESH_TOKEN_SPENT = {
    "code": "refresh_token_spent",
    "description": "This refresh token was exchanged moments ago by another request; use the "
    "tokens that request received, or log in again.",
}

# Third-party tokens (auth.issuers): the same codes, with advice that fits a provider's token.
EXTERNAL_TOKEN_INVALID = {
    "code": "invalid_token",
    "description": "The token is invalid; get a new one from your identity provider.",
}

EXTERNAL_TOKEN_EXPIRED = {
    "code": "token_expired",
    "description": "The token has expired; get a new one from your identity provider.",
}

UNKNOWN_ISSUER = {
    "code": "unknown_issuer",
    "description": "The token's issuer (iss) is not one this API accepts; use a token from "
    "one of the identity providers it is configured for.",
}

# Codes of 401s sent to a request that carried no usable credential at all: their
# WWW-Authenticate challenge has no error attribute (RFC 6750, section 3).
NO_CREDENTIAL_CODES = frozenset(
    {
        HEADER_MISSING["code"],
        WRONG_SCHEME["code"],
        API_KEY_MISSING["code"],
        CREDENTIAL_NOT_ACCEPTED["code"],
    }
)


def permission_denied(message: str) -> AuthError:
    """A 403 ``permission_denied`` whose message says what the caller lacks."""
    return AuthError({"code": PERMISSION_DENIED["code"], "description": message}, 403)


class InvalidInput(ValueError):
    """A value the account services refuse (HTTP 422): ``field`` and each problem, in words."""

    def __init__(self, field: str, problems: list[str] | str) -> None:
        self.field = field
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(" ".join(self.problems))
