"""``deprecated_route``: tell clients a route is going away (RFC 9745, RFC 8594, RFC 8288)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import ParamSpec, TypeVar

from flask import Response, after_this_request

P = ParamSpec("P")
R = TypeVar("R")

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def deprecated_route(
    superseded_by: str | None = None,
    deprecated: datetime | None = None,
    sunset: datetime | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Add ``Deprecation``, ``Sunset`` and ``Link: <...>; rel="successor-version"``.

    ``superseded_by`` names the replacement, as a path or "METHOD /path"
    (``"GET /api/v2/items"``); ``deprecated`` is when the route was (or will be) deprecated,
    default now-and-always; ``sunset`` is when it stops working. Naive datetimes are UTC.
    """
    headers = deprecation_headers(superseded_by, deprecated, sunset)

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            @after_this_request
            def add_headers(response: Response) -> Response:
                response.headers.update(headers)
                return response

            return view(*args, **kwargs)

        wrapper.deprecation = headers  # type: ignore[attr-defined]
        return wrapper

    return decorator


def deprecation_headers(
    superseded_by: str | None, deprecated: datetime | None, sunset: datetime | None
) -> dict[str, str]:
    """The headers, checked and formatted once when the route is declared."""
    headers: dict[str, str] = {}
    # RFC 9745: a Structured Field Date (seconds since the epoch); "@1" when no date is given
    # means "deprecated since the beginning".
    headers["Deprecation"] = f"@{int(_utc(deprecated).timestamp())}" if deprecated else "@1"
    if sunset is not None:
        if deprecated is not None and _utc(sunset) < _utc(deprecated):
            raise ValueError(
                "sunset is before deprecated; a route cannot end before it is deprecated."
            )
        headers["Sunset"] = format_datetime(_utc(sunset), usegmt=True)
    if superseded_by:
        target = superseded_by.strip()
        method, _, path = target.partition(" ")
        if method.upper() in METHODS and path.strip():
            target = path.strip()
        if not target.startswith(("/", "http://", "https://")) or any(
            c in target for c in '<>"\r\n '
        ):
            raise ValueError(
                f"superseded_by {superseded_by!r} is not a path or URL; write e.g. "
                "'GET /api/v2/items'."
            )
        headers["Link"] = f'<{target}>; rel="successor-version"'
    return headers


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
