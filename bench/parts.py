"""What each part of a protected request costs, in microseconds, measured in one process.

    python bench/parts.py [--calls 10000] [--rounds 5]

Builds the app as ``bench/run.py`` serves it (production settings, Redis sessions on DB 15,
every battery on, prometheus-client in multiprocess mode as under gunicorn) and sends
``GET /api/restricted`` straight to its WSGI callable (no HTTP server, no sockets), timed by
the thread's CPU clock (``time.thread_time_ns``: time spent waiting while other processes
run is not counted, so the figures hold on a busy machine). A part's cost is the whole
request's time with it, less the time with that part taken out (or replaced by a constant
answer): measured in place, with the caches as a real request leaves them, not in a loop of
its own, which flatters it. Every figure is the lowest per-request time of several rounds,
the one least disturbed by other processes sharing the core's caches; differences of about
1 us are noise.

This script names the app's internals (hooks, extensions, closures); when they move, it
must follow them: it is a measuring tool, not part of the app.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.settings import app_settings, bench_redis_url

Environ = dict[str, Any]
Ablation = Callable[[Any], contextlib.AbstractContextManager[object]]


def best_us(run: Callable[[], object], calls: int, rounds: int) -> float:
    """The lowest per-call time of ``rounds`` rounds of ``calls`` calls, in microseconds."""
    for _ in range(min(calls, 2000)):  # warm caches and lazy set-ups first
        run()
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time_ns()
        for _ in range(calls):
            run()
        best = min(best, (time.thread_time_ns() - started) / calls / 1000.0)
    return best


def part_us(
    run: Callable[[], object],
    ablation: Callable[[], contextlib.AbstractContextManager[object]],
    calls: int,
    rounds: int,
) -> float:
    """Whole request less the request without the part, rounds of each alternated.

    Alternating keeps a slow spell of the machine from landing on one side only.
    """
    with_part = without_part = float("inf")
    for _ in range(rounds):
        with_part = min(with_part, best_us(run, calls, 1))
        with ablation():
            without_part = min(without_part, best_us(run, calls, 1))
    return with_part - without_part


def wsgi_call(app: Callable[..., Iterable[bytes]], environ: Environ) -> Callable[[], None]:
    """One whole request through the WSGI callable, body consumed, as a server would."""

    def start_response(status: str, headers: list[tuple[str, str]], *exc_info: object) -> None:
        if not status.startswith("200"):
            raise RuntimeError(f"the benchmark request failed: {status}")

    def call() -> None:
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return call


@contextlib.contextmanager
def swapped(owner: Any, name: str, value: object) -> Iterator[None]:
    """Set an attribute (or a dict key) for the duration of the block."""
    is_dict = isinstance(owner, dict)
    old = owner[name] if is_dict else getattr(owner, name)
    if is_dict:
        owner[name] = value
    else:
        setattr(owner, name, value)
    try:
        yield
    finally:
        if is_dict:
            owner[name] = old
        else:
            setattr(owner, name, old)


def ops_steps(app: Any) -> tuple[tuple[Callable[..., Any], ...], Any]:
    """The ops package's response steps, and a setter for them."""
    hook = next(h for h in app.after_request_funcs[None] if h.__name__ == "finish_response")
    cell = hook.__closure__[hook.__code__.co_freevars.index("steps")]
    return cell.cell_contents, cell


@contextlib.contextmanager
def without_step(app: Any, name: str) -> Iterator[None]:
    """The ops hook without the step called ``name``."""
    steps, cell = ops_steps(app)
    cell.cell_contents = tuple(step for step in steps if step.__name__ != name)
    try:
        yield
    finally:
        cell.cell_contents = steps


@contextlib.contextmanager
def without_hooks(app: Any, names: set[str]) -> Iterator[None]:
    """The app without the after_request hooks so named."""
    hooks = app.after_request_funcs[None]
    app.after_request_funcs[None] = [h for h in hooks if h.__name__ not in names]
    try:
        yield
    finally:
        app.after_request_funcs[None] = hooks


def fixed_session(app: Any, environ: Environ, read_cookie: bool) -> Any:
    """A session interface answering with this request's session, with no store behind it."""
    from flask.sessions import SessionInterface

    with app.request_context(dict(environ)) as context:
        data = dict(context.session)
        sid = context.session.sid
    session_class = app.session_interface.session_class
    name = app.config["SESSION_COOKIE_NAME"]

    class Fixed(SessionInterface):
        def open_session(self, app: Any, request: Any) -> Any:
            if read_cookie:
                request.cookies.get(name)
            return session_class(data, sid=sid)

        def save_session(self, app: Any, session: Any, response: Any) -> None:
            pass

    return Fixed()


def ablations(app: Any, environ: Environ) -> list[tuple[str, Ablation]]:
    """Each part of the request, and how to take it out of the app."""
    import auth.auth
    from api.ops import requestid, timing

    cache = app.extensions["session_cache"]
    with app.request_context(dict(environ)) as context:
        live = dict(context.session)
        claims = auth.auth.authenticate()
    view = app.view_functions["main.restricted"]

    def authenticated() -> Any:
        from flask import g

        g.token_claims = claims
        return view.__wrapped__()

    teardown = [f for f in app.teardown_appcontext_funcs if "teardown_session" in f.__name__]
    return [
        ("session: open and save, incl. cookie parse and liveness", lambda a: swapped(
            a, "session_interface", fixed_session(a, environ, read_cookie=True))),
        ("session-liveness check (SessionCache.get)", lambda a: swapped(
            cache, "get", lambda store_id: dict(live))),
        ("token check (cached) and session binding", lambda a: swapped(
            a.view_functions, "main.restricted", authenticated)),
        ("request id: made and echoed", lambda a: _request_id_out(a, requestid)),
        ("timing: clock and Server-Timing", lambda a: _timing_out(a, timing)),
        ("security headers", lambda a: without_step(a, "add_security_headers")),
        ("access log", lambda a: without_step(a, "log_request")),
        ("metrics", lambda a: without_step(a, "count_request")),
        ("app-context teardown (SQLAlchemy session remove)", lambda a: swapped(
            a, "teardown_appcontext_funcs",
            [f for f in a.teardown_appcontext_funcs if f not in teardown])),
    ]  # fmt: skip


@contextlib.contextmanager
def _request_id_out(app: Any, requestid: Any) -> Iterator[None]:
    """No X-Request-ID header and a constant id (the log still has one)."""
    with (
        swapped(requestid, "incoming_or_new", lambda value: "-"),
        without_hooks(app, {"echo_request_id"}),
    ):
        yield


@contextlib.contextmanager
def _timing_out(app: Any, timing: Any) -> Iterator[None]:
    """No start clock and no Server-Timing header (durations read as 0)."""
    with (
        swapped(app, "wsgi_app", app.wsgi_app.wsgi_app),
        without_step(app, "server_timing"),
    ):
        yield


def main() -> int:
    """Print the whole-request times and the cost of each part."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the fastest is kept")
    args = parser.parse_args()

    # As gunicorn.conf.py does: prometheus-client must see the folder before it is imported.
    metrics_dir = tempfile.mkdtemp(prefix="bench-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # The access log goes where gunicorn's worker stderr would: a file (here, nowhere).
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (kept open for the process's life)

    from flask import jsonify
    from werkzeug.test import EnvironBuilder

    from api import create_app
    from bench.bare_app import app as bare_app

    settings = app_settings(Path(tempfile.mkdtemp(prefix="bench-instance-")))
    settings["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    app = create_app(settings)
    client = app.test_client()
    token = client.get("/api/public").get_json()["token"]
    cookie = client.get_cookie("session")
    assert cookie is not None
    credentials = {"Authorization": f"Bearer {token}", "Cookie": f"session={cookie.value}"}
    restricted = EnvironBuilder(
        path="/api/restricted", headers=list(credentials.items())
    ).get_environ()
    hello = EnvironBuilder(path="/").get_environ()

    def whole(target: Any, environ: Environ) -> float:
        return best_us(wsgi_call(target, environ), args.calls, args.rounds)

    print(f"{args.calls} requests x {args.rounds} rounds per figure; lowest round kept\n")
    bare = whole(bare_app, hello)
    full = whole(app, restricted)
    rows = [("bare Flask GET / (WSGI, routing, JSON response)", bare),
            ("app GET /", whole(app, hello)),
            ("app GET /api/restricted", full)]  # fmt: skip
    print("Whole requests through the WSGI callable (us per request)")
    for label, value in rows:
        print(f"  {label:<60}{value:>8.1f}")

    print("\nParts of GET /api/restricted: whole request with it, less without it (us)")
    costs: dict[str, float] = {}
    request = wsgi_call(app, restricted)
    for label, ablation in ablations(app, restricted):
        costs[label] = part_us(request, functools.partial(ablation, app), args.calls, args.rounds)
    # The cookie parse: a store-less session interface that parses it, and one that does not.
    no_cookie = fixed_session(app, restricted, read_cookie=False)
    with swapped(app, "session_interface", fixed_session(app, restricted, read_cookie=True)):
        costs["session: cookie parse"] = part_us(
            request,
            lambda: swapped(app, "session_interface", no_cookie),
            args.calls,
            args.rounds,
        )
    with app.test_request_context():
        costs["JSON response (jsonify; the bare app has it too)"] = best_us(
            lambda: jsonify(message="this is a restricted url."), args.calls, args.rounds
        )
    for label, value in costs.items():
        print(f"  {label:<60}{value:>8.1f}")
    extra = full - bare
    print(f"\n  app GET /api/restricted less bare Flask: {extra:.1f} us")
    cleanup([cookie.value])
    return 0


def cleanup(sids: list[str]) -> None:
    """Delete the benchmark's sessions from Redis."""
    import redis

    from api.sessions import KEY_PREFIX

    client = redis.Redis.from_url(bench_redis_url())
    client.delete(*(KEY_PREFIX + sid for sid in sids))
    client.close()


if __name__ == "__main__":
    sys.exit(main())
