"""The admin blueprint's frame: sign-in and CSRF checks, headers, and errors as HTML pages."""

from __future__ import annotations

from datetime import datetime

from flask import (
    Response,
    flash,
    g,
    json,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from api.admin import signin
from api.errorhandler import any_error
from api.openapi import PageBlueprint
from api.ops.ratelimit import too_many_requests
from api.ops.requestid import current_request_id

admin_bp = PageBlueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
)
csrf = CSRFProtect()

# Scripts and styles from this origin only: no inline code, no CDN, nothing to fetch.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
OPEN_ENDPOINTS = frozenset({"admin.login", "admin.static"})
CSRF_MESSAGE = (
    "{reason} The form may have been open too long, or sent from another site: go back, "
    "reload the page and try again."
)


@admin_bp.before_request
def require_admin() -> ResponseReturnValue | None:
    """Every state change carries a valid CSRF token; every page but login needs an admin."""
    if request.endpoint == "admin.static":
        return None
    csrf.protect()  # only for POST (WTF_CSRF_METHODS); raises CSRFError, a 400 page
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    g.admin = signin.signed_in_admin()
    if g.admin is not None:
        return None
    if request.method == "GET":
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
    flash("Your admin session has ended; log in again.", "error")
    return redirect(url_for("admin.login"))


@admin_bp.after_request
def page_headers(response: Response) -> Response:
    """The pages' own policy; they show personal data, so nothing caches them."""
    response.headers["Content-Security-Policy"] = POLICY
    # Same-origin referrers let Flask-WTF check that HTTPS form posts come from this site.
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "admin.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@admin_bp.errorhandler(RateLimitExceeded)
def too_many_attempts(exc: RateLimitExceeded) -> ResponseReturnValue:
    """429 as a page, with Retry-After."""
    message, retry_after = too_many_requests(exc)
    return error_page(429, message), 429, {"Retry-After": str(retry_after)}


@admin_bp.errorhandler(CSRFError)
def refused_form(exc: CSRFError) -> ResponseReturnValue:
    """400 for a form without a valid CSRF token."""
    return error_page(400, CSRF_MESSAGE.format(reason=exc.description)), 400


@admin_bp.errorhandler(signin.NotAnAdministrator)
def not_an_administrator(exc: signin.NotAnAdministrator) -> ResponseReturnValue:
    """403 for a signed-in user without the admin role."""
    return error_page(403, str(exc)), 403


@admin_bp.errorhandler(Exception)
def any_error_page(exc: Exception) -> ResponseReturnValue:
    """Any other error: the status and message the API would send (logged the same way)."""
    api_response = any_error(exc)
    body = json.loads(api_response.get_data())
    headers = {k: v for k, v in api_response.headers.items() if k in ("Allow", "Retry-After")}
    status = api_response.status_code
    return error_page(status, str(body["message"])), status, headers


def routing_error(exc: HTTPException) -> ResponseReturnValue:
    """404 and 405 of URLs no route matched: a page under /admin, the API's JSON elsewhere
    (no blueprint handler runs for them, so this one is registered on the app)."""
    if not (request.path + "/").startswith(admin_bp.url_prefix + "/"):  # type: ignore[operator]
        return any_error(exc)
    return page_headers(make_response(any_error_page(exc)))


def error_page(status: int, message: str) -> str:
    """The error page for ``status``."""
    return render_template(
        "admin/error.html", status=status, message=message, request_id=current_request_id()
    )


@admin_bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    """A time as people read it: ``2026-01-31 14:05 UTC`` (``-`` when absent)."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d %H:%M UTC")
