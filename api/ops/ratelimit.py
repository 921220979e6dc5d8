"""Rate limits (Flask-Limiter): token issuing is limited by default; ``@rate_limit`` for any route.

Usage on your own routes (one decorator per view; combine limits with ';')::

    from api.ops.ratelimit import rate_limit

    @bp.post("/api/things")
    @rate_limit("10/minute;100/hour")
    def create_thing(): ...

Limits count per caller: per API key, user or third-party subject when the request was
authenticated before the limit is checked (put ``@rate_limit`` below the auth decorator),
else per client IP (see TRUSTED_PROXIES). Session tokens are free to obtain, so they count per
IP too. Counters live in memory, or in Redis when REDIS_URL (or RATELIMIT_STORAGE_URI) is
set, so that every worker and instance shares them.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Flask, Response, current_app
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

from api.errorhandler import error_response
from api.ops.monitoring import register_check
from auth.principal import SESSION, current_principal

logger = logging.getLogger(__name__)

EXTENSION = "ratelimit"
MEMORY = "memory://"
# A Redis that does not answer must not hold requests: short timeouts, then the in-memory
# fallback (per process) until it is back.
REDIS_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 1}
DEFAULT_RETRY_AFTER = 60

P = ParamSpec("P")
R = TypeVar("R")


class RateLimits:
    """The app's limiter and, per decorated view, the Flask-Limiter wrapper bound to it."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter
        self._views: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def limited(
        self,
        view: Callable[P, R],
        limit: str | Callable[[], str],
        options: dict[str, Any],
        shared_scope: str | None = None,
    ) -> Callable[P, R]:
        """``view`` wrapped by this app's limiter (made on the view's first call)."""
        wrapped = self._views.get(view)
        if wrapped is None:
            with self._lock:
                wrapped = self._views.get(view)
                if wrapped is None:
                    if shared_scope is None:
                        decorator = self.limiter.limit(limit, **options)
                    else:
                        decorator = self.limiter.shared_limit(limit, shared_scope, **options)
                    wrapped = self._views[view] = decorator(view)
        return wrapped


def rate_limit(
    limit: str | Callable[[], str], shared_scope: str | None = None, **options: Any
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Limit a view, e.g. ``@rate_limit("10/minute")``; 429 with Retry-After when exceeded.

    ``limit`` is Flask-Limiter's notation or a function returning it (read per request);
    ``options`` go to ``Limiter.limit`` (key_func, methods, exempt_when, cost, ...).
    Counters are per endpoint, unless ``shared_scope`` names one bucket for every endpoint
    that reaches the decorated function. Nothing is counted when RATELIMIT_ENABLED=0.
    """

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            limits: RateLimits | None = current_app.extensions.get(EXTENSION)
            if limits is None:
                return view(*args, **kwargs)
            return limits.limited(view, limit, options, shared_scope)(*args, **kwargs)

        wrapper.rate_limited = True  # type: ignore[attr-defined]  # for the API docs (429)
        return wrapper

    return decorator


def caller_key() -> str:
    """What a limit counts by: the authenticated Principal, else the client IP."""
    principal = current_principal()
    if principal is None or principal.kind == SESSION:
        return f"ip:{get_remote_address()}"
    return f"{principal.kind}:{principal.credential_id or principal.subject}"


def token_limit() -> str:
    """RATELIMIT_TOKEN: the limit on GET /api/public."""
    return str(current_app.config["RATELIMIT_TOKEN"])


def storage_uri(config: dict[str, Any]) -> str:
    """RATELIMIT_STORAGE_URI, else REDIS_URL, else memory."""
    return str(config["RATELIMIT_STORAGE_URI"] or config["REDIS_URL"] or MEMORY)


def too_many_requests(exc: RateLimitExceeded) -> tuple[str, int]:
    """What to tell a client that reached a limit: the message, and Retry-After in seconds."""
    retry_after = DEFAULT_RETRY_AFTER
    limits: RateLimits | None = current_app.extensions.get(EXTENSION)
    breached = limits.limiter.current_limit if limits is not None else None
    if breached is not None:
        retry_after = max(1, math.ceil(breached.reset_at - time.time()))
    message = (
        f"Too many requests: the limit here is {exc.description}; "
        f"try again in {retry_after} seconds."
    )
    return message, retry_after


def _too_many_requests(exc: RateLimitExceeded) -> Response:
    """The standard error body with status 429 and Retry-After in seconds."""
    message, retry_after = too_many_requests(exc)
    return error_response(429, message, {"Retry-After": str(retry_after)})


def init_app(app: Flask) -> None:
    """Create the app's limiter on the configured storage (nothing when RATELIMIT_ENABLED=0)."""
    if not app.config["RATELIMIT_ENABLED"]:
        return
    uri = storage_uri(app.config)
    shared = not uri.startswith(MEMORY)
    limiter = Limiter(
        caller_key,
        storage_uri=uri,
        storage_options=dict(REDIS_OPTIONS) if shared else {},
        key_prefix=str(app.config["RATELIMIT_KEY_PREFIX"]),
        in_memory_fallback_enabled=shared,
        headers_enabled=False,
    )
    limiter.init_app(app)
    # Flask-Limiter also checks default and application-wide limits before every request;
    # this app sets neither (limits are per route, checked by the decorated view), so that
    # hook would only cost time on every request.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    app.extensions[EXTENSION] = RateLimits(limiter)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    if shared:
        register_check(app, "rate_limit_storage", functools.partial(_check_storage, limiter))
    elif app.config["APP_ENV"] == "production":
        logger.warning(
            "Rate limits are counted in memory, separately by each worker; set REDIS_URL so "
            "that all workers and instances share them."
        )


def _check_storage(limiter: Limiter) -> None:
    """The rate-limit storage answers a ping."""
    if not limiter.storage.check():
        raise ConnectionError("The rate-limit storage did not answer.")
