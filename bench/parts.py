"""What each part of a protected request costs, measured in one process.

    python bench/parts.py [--calls 5000] [--rounds 7]       # CPU time, in microseconds
    python bench/parts.py --instructions [--calls 1000]     # instructions (needs valgrind)

Builds the app as ``bench/run.py`` serves it (production settings, Redis sessions on DB 15,
every battery on, prometheus-client in multiprocess mode as under gunicorn) and sends
requests straight to its WSGI callable (no HTTP server, no sockets). A part's cost is the
whole ``GET /api/restricted`` with it, less the same request with that part taken out (or
replaced by a constant answer): measured in place, with the caches as a real request leaves
them, not in a loop of its own, which flatters it.

Two clocks. By default the process's CPU time (``time.process_time_ns``, every thread, so
the access lines formatted by the background writer are counted; time spent waiting while
other processes run is not); each figure is the lowest of several rounds, and
the rounds with and without a part alternate. On a busy machine other processes still
pollute the caches, so parts of a few microseconds move by a few microseconds. With
``--instructions`` the script runs itself under valgrind's callgrind and counts the
instructions of each configuration instead: the same on a quiet and a busy machine, about 60
times slower to take, and blind to cache misses and system-call time.

This script names the app's internals (hooks, extensions, closures); when they move, it
must follow them: it is a measuring tool, not part of the app.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.settings import (
    ISSUER_KEY,
    ISSUER_KEY_ENV,
    app_settings,
    delete_sessions,
)

Environ = dict[str, Any]
Config = Callable[[], contextlib.AbstractContextManager[object]]
# callgrind writes a profile each time this C function is entered: os.getppid() marks the
# start and end of each measured stretch (the app itself never calls it).
MARKER = "os_getppid"
# Flushes of work the app defers to background threads: a stretch of requests is measured
# with the deferred work of its own requests, no more, no less.
DEFERRED: list[Callable[[], None]] = []


@dataclass(frozen=True)
class Part:
    """A part of the request: the app with it (``None``: as built) and without it."""

    label: str
    without: Config
    with_part: Config | None = None


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


# How parts are taken out ------------------------------------------------------------------


@contextlib.contextmanager
def swapped(owner: Any, name: Any, value: object) -> Iterator[None]:
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


def nothing() -> contextlib.AbstractContextManager[object]:
    """The app as built."""
    return contextlib.nullcontext()


@contextlib.contextmanager
def without_step(app: Any, name: str) -> Iterator[None]:
    """The app without the per-response step called ``name`` (listed in extensions["ops"])."""
    from api.ops import EXTENSION

    steps = app.extensions[EXTENSION]
    kept = list(steps)
    steps[:] = [step for step in kept if step.__name__ != name]
    if len(steps) == len(kept):
        raise LookupError(f"the app has no response step named {name!r}")
    try:
        yield
    finally:
        steps[:] = kept


def fixed_session(app: Any, environ: Environ, read_cookie: bool) -> Any:
    """A session interface answering with this request's session, with no store behind it."""
    from flask.sessions import SessionInterface

    from api.sessions import cookie_value

    with app.request_context(dict(environ)) as context:
        data = dict(context.session)
        sid = context.session.sid
    session_class = app.session_interface.session_class
    name = app.config["SESSION_COOKIE_NAME"]

    class Fixed(SessionInterface):
        def open_session(self, app: Any, request: Any) -> Any:
            if read_cookie:
                cookie_value(request.environ.get("HTTP_COOKIE"), name)
            return session_class(data, sid=sid)

        def save_session(self, app: Any, session: Any, response: Any) -> None:
            pass

    return Fixed()


def parts(app: Any, environ: Environ) -> list[Part]:
    """Each part of ``GET /api/restricted``, and how to take it out of the app."""
    import auth.auth
    from api.ops import requestid

    cache = app.extensions["session_cache"]
    with app.request_context(dict(environ)) as context:
        live = dict(context.session)
        claims = auth.auth.authenticate()
    view = app.view_functions["main.restricted"]

    def authenticated() -> Any:
        from flask import g

        g.token_claims = claims
        return view.__wrapped__()

    def session(read_cookie: bool) -> Config:
        fixed = fixed_session(app, environ, read_cookie)
        return lambda: swapped(app, "session_interface", fixed)

    @contextlib.contextmanager
    def request_id_out() -> Iterator[None]:
        with (
            swapped(requestid, "incoming_or_new", lambda value: "-"),
            without_step(app, "echo_request_id"),
        ):
            yield

    sql_teardown = [f for f in app.teardown_appcontext_funcs if "teardown_session" in f.__name__]
    if not sql_teardown:  # else the part would compare the app with itself and report ~0
        raise LookupError("the app has no Flask-SQLAlchemy teardown_session hook")
    return [
        Part("session: open and save, cookie parse aside", session(read_cookie=True)),
        Part("  of which liveness check (SessionCache.get)",
             lambda: swapped(cache, "get", lambda store_id: dict(live))),
        Part("session: cookie parse", session(read_cookie=False), session(read_cookie=True)),
        Part("token check (cached) and session binding",
             lambda: swapped(app.view_functions, "main.restricted", authenticated)),
        Part("request id: made and echoed (X-Request-ID)", request_id_out),
        Part("security headers", lambda: without_step(app, "add_security_headers")),
        Part("access log", lambda: without_step(app, "log_request")),
        Part("metrics", lambda: without_step(app, "count_request")),
        Part("app-context teardown (SQLAlchemy session remove)",
             lambda: swapped(app, "teardown_appcontext_funcs",
                             [f for f in app.teardown_appcontext_funcs
                              if f not in sql_teardown])),
    ]  # fmt: skip


# The two clocks ---------------------------------------------------------------------------


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """No garbage collection inside a measured stretch (as timeit does).

    A full collection walks every object of the app (tens of millions of instructions); it
    would land in one stretch and not another and swamp parts of a few microseconds.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def settle() -> None:
    """Do now the work the requests left for background threads (access lines to format)."""
    for flush in DEFERRED:
        flush()


def cpu_us(run: Callable[[], object], calls: int) -> float:
    """CPU time of the process (all threads) per call of one round, in microseconds."""
    settle()
    with no_gc():
        started = time.process_time_ns()
        for _ in range(calls):
            run()
        settle()
        return (time.process_time_ns() - started) / calls / 1000.0


def best_us(run: Callable[[], object], config: Config, calls: int, rounds: int) -> float:
    """The lowest of ``rounds`` rounds, after warming up."""
    with config():
        cpu_us(run, min(calls, 1000))
        return min(cpu_us(run, calls) for _ in range(rounds))


def part_us(run: Callable[[], object], part: Part, calls: int, rounds: int) -> float:
    """With less without the part, rounds alternated (a slow spell then hits both sides)."""
    with_part = without = float("inf")
    for _ in range(rounds):
        with_part = min(with_part, best_us(run, part.with_part or nothing, calls, 1))
        without = min(without, best_us(run, part.without, calls, 1))
    return with_part - without


def counted(run: Callable[[], object], config: Config, calls: int) -> None:
    """Under callgrind: warm up, then ``calls`` calls between two markers."""
    with config():
        for _ in range(min(calls, 100)):
            run()
        settle()
        with no_gc():
            os.getppid()
            for _ in range(calls):
                run()
            settle()
            os.getppid()


# The measurement ---------------------------------------------------------------------------


@dataclass
class Subject:
    """The apps and requests being measured."""

    app: Any
    bare_app: Any
    hello: Environ
    restricted: Environ
    sid: str


def build() -> Subject:
    """The app with a live session and token, the bare app, and the two requests."""
    # As gunicorn.conf.py does: prometheus-client must see the folder before it is imported.
    metrics_dir = tempfile.mkdtemp(prefix="bench-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # The access log goes where gunicorn's worker stderr would: a file (here, nowhere).
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (kept open for the process's life)

    from werkzeug.test import EnvironBuilder

    from api import create_app
    from bench.bare_app import app as bare_app

    settings = app_settings(Path(tempfile.mkdtemp(prefix="bench-instance-")))
    settings["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # The benchmark's external issuer reads its shared key from the process environment.
    os.environ[ISSUER_KEY_ENV] = ISSUER_KEY
    app = create_app(settings)
    for deferring in ("access_writer", "metrics"):
        extension = app.extensions.get(deferring)
        if extension is not None:
            DEFERRED.append(extension.flush)
    client = app.test_client()
    token = client.get("/api/public").get_json()["token"]
    cookie = client.get_cookie("session")
    assert cookie is not None
    credentials = [("Authorization", f"Bearer {token}"), ("Cookie", f"session={cookie.value}")]
    return Subject(
        app=app,
        bare_app=bare_app,
        hello=EnvironBuilder(path="/").get_environ(),
        restricted=EnvironBuilder(path="/api/restricted", headers=credentials).get_environ(),
        sid=cookie.value,
    )


def measurements(subject: Subject) -> tuple[list[tuple[str, Callable[[], None]]], list[Part]]:
    """The whole requests, and the parts of the protected one."""
    wholes = [
        ("bare Flask GET / (WSGI, routing, JSON response)", wsgi_call(subject.bare_app,
                                                                      subject.hello)),
        ("app GET /", wsgi_call(subject.app, subject.hello)),
        ("app GET /api/restricted", wsgi_call(subject.app, subject.restricted)),
    ]  # fmt: skip
    return wholes, parts(subject.app, subject.restricted)


def print_table(wholes: dict[str, float], costs: dict[str, float], unit: str) -> None:
    """Whole requests, then each part."""
    print(f"Whole requests through the WSGI callable ({unit} per request)")
    for label, value in wholes.items():
        print(f"  {label:<60}{value:>9.1f}")
    print(f"\nParts of GET /api/restricted: the request with it less without it ({unit})")
    for label, value in costs.items():
        print(f"  {label:<60}{value:>9.1f}")
    extra = wholes["app GET /api/restricted"] - wholes[next(iter(wholes))]
    print(f"\n  app GET /api/restricted less bare Flask GET /: {extra:.1f} {unit}")


def by_cpu_time(calls: int, rounds: int) -> None:
    """The default: CPU microseconds."""
    subject = build()
    wholes, all_parts = measurements(subject)
    print(f"CPU time; {calls} requests x {rounds} rounds per figure; lowest round kept\n")
    whole_us = {label: best_us(run, nothing, calls, rounds) for label, run in wholes}
    run = wholes[-1][1]
    costs = {part.label: part_us(run, part, calls, rounds) for part in all_parts}
    print_table(whole_us, costs, "us")
    delete_sessions([subject.sid])


def count_inside_callgrind(calls: int, labels_file: Path) -> None:
    """Run each configuration between markers; write their labels in marker order."""
    subject = build()
    wholes, all_parts = measurements(subject)
    order: list[str] = []
    for label, run in wholes:
        counted(run, nothing, calls)
        order.append(label)
    run = wholes[-1][1]
    for part in all_parts:
        for side, config in (("with", part.with_part or nothing), ("without", part.without)):
            counted(run, config, calls)
            order.append(f"{side}\t{part.label}")
    labels_file.write_text(json.dumps(order))
    delete_sessions([subject.sid])


def by_instructions(calls: int) -> int:
    """Run this script under callgrind, then read the instruction count of each stretch."""
    if shutil.which("valgrind") is None:
        print("--instructions needs valgrind (Debian: apt-get install valgrind).", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        labels = Path(tmp, "labels.json")
        command = [
            "valgrind", "--tool=callgrind", f"--dump-before={MARKER}",
            f"--callgrind-out-file={tmp}/callgrind.out", sys.executable, __file__,
            "--inside-callgrind", str(labels), "--calls", str(calls),
        ]  # fmt: skip
        # A fixed hash seed: the same dict and set layouts, so the same instructions, each run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(command, check=True, env=env, capture_output=True)
        order = json.loads(labels.read_text())
        # Profile k covers marker k-1 to marker k: stretch i (calls only) is profile 2i + 2.
        totals = [_instructions(Path(tmp, f"callgrind.out.{2 * i + 2}")) for i in range(len(order))]
    per_request = dict(zip(order, (total / calls / 1000.0 for total in totals), strict=True))
    wholes = {label: value for label, value in per_request.items() if "\t" not in label}
    costs: dict[str, float] = {}
    for label, value in per_request.items():
        side, _, part = label.partition("\t")
        if side == "with":
            costs[part] = value - per_request[f"without\t{part}"]
    print(f"Instructions (callgrind); {calls} requests per figure\n")
    print_table(wholes, costs, "k instructions")
    return 0


def _instructions(profile: Path) -> int:
    """The total instruction count of one callgrind profile."""
    match = re.search(r"^summary:\s*(\d+)", profile.read_text(errors="replace"), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{profile} has no summary line")
    return int(match.group(1))


def main() -> int:
    """Measure with the chosen clock and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=None, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the lowest is kept")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--inside-callgrind", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside_callgrind:
        count_inside_callgrind(args.calls, args.inside_callgrind)
        return 0
    if args.instructions:
        return by_instructions(args.calls or 1000)
    by_cpu_time(args.calls or 5000, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
