"""The starter routes: hello, token issuing, a protected URL and logout."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, session
from pydantic import BaseModel

from api.ops.ratelimit import rate_limit, token_limit
from api.validation import operation
from auth.auth import create_enc_token, requires_auth

main_bp = Blueprint("main", __name__)


class Message(BaseModel):
    """A plain answer."""

    message: str


class PublicToken(Message):
    """A session token; send it with the session cookie of this response."""

    token: str


@main_bp.get("/")
@operation(responses={200: Message})
def hello() -> Response:
    """A public greeting."""
    return jsonify(message="Hello World")


@main_bp.get("/api/public")
@operation(responses={200: PublicToken})
@rate_limit(token_limit)
def public() -> Response:
    """Issue a token bound to the caller's session (the cookie comes with this response)."""
    response = jsonify(message="this is a public url.", token=create_enc_token())
    response.headers["Cache-Control"] = "no-store"
    return response


@main_bp.get("/api/restricted")
@requires_auth()
@operation(responses={200: Message})
def restricted() -> Response:
    """Only reachable with a valid token and its session."""
    return jsonify(message="this is a restricted url.")


@main_bp.delete("/api/session")
@operation(responses={200: Message})
def logout() -> Response:
    """End the session: every token bound to it is refused from now on, on every worker."""
    session.clear()
    return jsonify(message="The session has ended; its tokens are no longer accepted.")
