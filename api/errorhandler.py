"""One JSON error shape: ``{"error": status, "message": ..., "success": false}``."""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, jsonify
from werkzeug.exceptions import Aborter, HTTPException, InternalServerError

from api.ops.requestid import current_request_id
from auth.errors import NO_CREDENTIAL_CODES, AuthError, AuthUnavailableError, InvalidInput
from database.errors import ConfigurationError, ConflictError, NotFoundError, UnavailableError

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = (
    "The server hit an unexpected error; report the request_id so it can be found in the logs."
)

BEARER_CHALLENGE = 'Bearer realm="api"'
# Domain exceptions (raised outside api/) and the status each one means over HTTP.
# Their messages are written for clients, so they become the error message unchanged.
DOMAIN_STATUS: dict[type[Exception], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    UnavailableError: 503,
    ConfigurationError: 503,
    AuthUnavailableError: 503,
    # Python's own: a refused action (403) and a route that is declared but not built (501).
    PermissionError: 403,
    NotImplementedError: 501,
}
# Default messages for exceptions raised without one.
DEFAULT_MESSAGES = {
    403: "You do not have permission to do this.",
    501: "This operation is not implemented yet.",
}


class RequestValidationError(Exception):
    """The request's body or query failed validation (422); ``errors`` lists each field."""

    def __init__(self, errors: list[dict[str, str]], message: str | None = None) -> None:
        super().__init__(message or "The request has invalid or missing fields; see errors.")
        self.errors = errors


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, /, **extra: object
) -> Response:
    """Build the standard error body, sent with that status (``extra`` may even hold "status")."""
    body: dict[str, object] = {
        "error": status,
        "message": message,
        "success": False,
        "request_id": current_request_id(),
    }
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def _http_error(exc: HTTPException) -> Response:
    """Werkzeug/Flask HTTP errors (404, 405, 413, 400, abort(n), ...) in the standard shape."""
    status = exc.code or 500
    if status >= 500 and not isinstance(exc, _GenericHTTPError) and exc.response is None:
        # A 500 built by Flask wraps the real exception; map or log it.
        original = getattr(exc, "original_exception", None)
        if original is not None:
            return any_error(original)
    headers = {
        name: value
        for name, value in exc.get_headers()
        if name.lower() not in ("content-type", "content-length")
    }
    if status == 401:
        headers.setdefault("WWW-Authenticate", BEARER_CHALLENGE)
    message = exc.description or HTTPStatus(status).phrase
    return error_response(status, _sentence(message), headers)


def _auth_error(exc: AuthError) -> Response:
    """401/403 with the error code; 401 carries ``WWW-Authenticate: Bearer``."""
    headers = {}
    if exc.status_code == 401:
        # RFC 6750: no error attribute when the request had no credentials at all.
        if exc.code in NO_CREDENTIAL_CODES:
            headers["WWW-Authenticate"] = BEARER_CHALLENGE
        else:
            headers["WWW-Authenticate"] = f'{BEARER_CHALLENGE}, error="invalid_token"'
    return error_response(exc.status_code, exc.description, headers, code=exc.code)


def _validation_error(exc: RequestValidationError) -> Response:
    """422 with the per-field ``errors`` list."""
    return error_response(422, str(exc), errors=exc.errors)


def _invalid_input(exc: InvalidInput) -> Response:
    """A value refused by a service (a password policy, an unknown role): 422 per field."""
    errors = [{"field": exc.field, "message": problem} for problem in exc.problems]
    return error_response(422, str(exc), errors=errors)


def any_error(exc: BaseException) -> Response:
    """Known domain errors get their status; anything else is a logged 500 with no details.

    The admin pages render the status and message of this response as a page.
    """
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if isinstance(exc, AuthError):
        return _auth_error(exc)
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if isinstance(exc, InvalidInput):
        return _invalid_input(exc)
    for exc_type, status in DOMAIN_STATUS.items():
        if isinstance(exc, exc_type):
            if status >= 500:
                logger.warning("%s: %s", type(exc).__name__, exc)
            if isinstance(exc, OSError) and exc.errno is not None:
                break  # a PermissionError from the operating system is a bug, not a refusal
            message = str(exc) if exc.args else DEFAULT_MESSAGES.get(status, INTERNAL_ERROR_MESSAGE)
            return error_response(status, message)
    logger.error(
        "Unhandled %s (request_id=%s)",
        type(exc).__name__,
        current_request_id(),
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return error_response(500, INTERNAL_ERROR_MESSAGE)


def _sentence(text: str) -> str:
    """Collapse whitespace and end with a full stop."""
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else f"{text}."


class _GenericHTTPError(HTTPException):
    """An HTTP error for a status werkzeug has no class for (``abort(499)``)."""


class JSONAborter(Aborter):
    """``abort(n)`` works for every status from 400 to 599, not only those werkzeug names."""

    def __call__(self, code: int | Response, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        if isinstance(code, int) and code not in self.mapping and 400 <= code <= 599:
            error = _GenericHTTPError(*args, **kwargs)  # type: ignore[arg-type]
            error.code = code
            try:
                error.description = error.description or HTTPStatus(code).phrase
            except ValueError:
                error.description = f"The request failed with status {code}"
            raise error
        super().__call__(code, *args, **kwargs)


def set_handler(app: Flask) -> Flask:
    """Send every error, Flask's own and the app's, as the standard JSON body."""
    app.aborter = JSONAborter()
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _http_error)
    app.register_error_handler(AuthError, _auth_error)
    app.register_error_handler(RequestValidationError, _validation_error)
    app.register_error_handler(InvalidInput, _invalid_input)
    app.register_error_handler(Exception, any_error)
    return app
