"""The batteries' per-response work, done once as the response starts (WSGI middleware).

Each battery gives a step ``step(environ, status, headers)``: ``status`` is the HTTP status as
an int and ``headers`` the list of ``(name, value)`` pairs about to be sent, which a step may
append to. Steps run when Flask's response calls ``start_response``: after every
``after_request`` hook and the session save, still inside the request context (``request``
and ``g`` work), before a byte of the body is sent.

Why here rather than in ``after_request`` hooks on the ``Response``: a header added to
``response.headers`` is validated on the way in, then copied and validated again when
werkzeug builds the WSGI header list; appending the fixed pairs to that list costs a fraction,
and no Flask hook dispatch runs at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

logger = logging.getLogger(__name__)

Environ = dict[str, Any]
Headers = list[tuple[str, str]]
Step = Callable[[Environ, int, Headers], None]
WSGIApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]

START_KEY = "api.request_start"


class ResponseSteps:
    """WSGI middleware: notes when the request arrived, runs the steps as the response starts.

    ``steps`` is kept as given (a list the app's ``extensions["ops"]`` shares), so the steps
    in force are always the ones listed there.
    """

    def __init__(self, wsgi_app: WSGIApp, steps: list[Step]) -> None:
        self.wsgi_app = wsgi_app
        self.steps = steps

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Stamp the environ (before the session is opened) and wrap ``start_response``."""
        environ[START_KEY] = perf_counter()
        steps = self.steps

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            code = int(status[:3])
            for step in steps:
                try:
                    step(environ, code, headers)
                except Exception:
                    # A battery must never cost the client its answer (Flask's error handler
                    # is not around any more at this point).
                    logger.exception("The per-response step %s failed.", step.__name__)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)
