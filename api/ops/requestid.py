"""Request ids: accept a safe incoming ``X-Request-ID`` or make one, and echo it back."""

from __future__ import annotations

import os
import random
import re
from typing import Any

from flask import Flask, request

from api.ops.responses import Headers, Step

HEADER = "X-Request-ID"
ENVIRON_KEY = "api.request_id"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


class _NewIds:
    """Fresh ids: 128 bits from a generator of this process, seeded from ``os.urandom``.

    No system call per request, and no counter that would tell a client how many requests a
    worker served; the generator is seeded again after a fork, so workers never share a
    sequence. An id names a request in logs and error bodies; it is not a secret (nothing
    else draws from this generator).
    """

    def __init__(self) -> None:
        self._random = random.Random()  # noqa: S311 (ids, not secrets: see above)
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        """A new seed (at start and in a forked child)."""
        self._random.seed(os.urandom(32))

    def __call__(self) -> str:
        return f"{self._random.getrandbits(128):032x}"


new_request_id = _NewIds()


def incoming_or_new(value: str | None) -> str:
    """Keep a well-formed incoming id; replace anything else with a fresh one."""
    if value and SAFE_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


def current_request_id(environ: dict[str, Any] | None = None) -> str:
    """This request's id, assigned on first use (logs, error bodies, the response header)."""
    # Kept in the WSGI environ: one proxy lookup, cheaper than flask.g on every response.
    if environ is None:
        environ = request.environ
    request_id: str | None = environ.get(ENVIRON_KEY)
    if request_id is None:
        request_id = environ[ENVIRON_KEY] = incoming_or_new(environ.get("HTTP_X_REQUEST_ID"))
    return request_id


def init_app(app: Flask) -> Step:
    """The step echoing the request's id in ``X-Request-ID`` (replacing one a view set)."""
    lowered = HEADER.lower()
    length = len(HEADER)

    def echo_request_id(environ: dict[str, Any], status: int, headers: Headers) -> None:
        # Names of another length cannot match: most are not lowered at all.
        for name, _ in headers:
            if len(name) == length and name.lower() == lowered:
                headers[:] = [pair for pair in headers if pair[0].lower() != lowered]
                break
        headers.append((HEADER, current_request_id(environ)))

    return echo_request_id
