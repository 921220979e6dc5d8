"""Access log: one line per request on ``api.access``; optionally stored in SQL, off the request."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import click
from flask import Flask, Request, current_app, request
from flask.cli import AppGroup

from api.ops.logs import ACCESS_LOGGER, ACCESS_TEXT, access_writer, mask_credentials
from api.ops.requestid import current_request_id
from api.ops.responses import Headers, Step
from api.ops.timing import elapsed_ms
from auth.principal import current_principal

if TYPE_CHECKING:
    from database.sql.access_log import AccessLogStore

logger = logging.getLogger(__name__)
access_logger = logging.getLogger(ACCESS_LOGGER)

EXTENSION = "access_log"
READER = "access_log_reader"
# Probes and scrapes come every few seconds; they are logged at DEBUG so INFO stays readable.
QUIET_BLUEPRINT = "monitoring"
ABSENT = "-"
REDACTED = "[redacted]"
# Query parameters whose values are never logged or stored.
SECRET_NAME = re.compile(
    r"token|passw|pwd|secret|key|auth|session|cookie|sign|credential|code", re.IGNORECASE
)
MAX_PATH = 2048
MAX_USER_AGENT = 256
DB_FILE = "access_log.db"
PURGE_INTERVAL_SECONDS = 3600.0


def _printable(text: str, limit: int) -> str:
    """Cut to ``limit`` and escape control characters, so one request is one log line."""
    text = text[:limit]
    return text if text.isprintable() else repr(text)[1:-1]


def _logged_path(req: Request) -> str:
    """The path, with the query string's secret-looking values replaced."""
    if not req.query_string:
        return req.path
    query = "&".join(
        f"{name}={REDACTED if SECRET_NAME.search(name) else value}"
        for name, value in req.args.items(multi=True)
    )
    return f"{req.path}?{query}"


class RawFields(NamedTuple):
    """The values of an access line's fields as the request has them (``_raw_fields``)."""

    remote_ip: str | None
    method: str
    path: str
    route: str | None
    status: int
    duration_ms: float
    uid: str | None
    user: str | None
    request_id: str
    user_agent: str


def access_fields(req: Request, status: int) -> dict[str, object]:
    """What is known about this request: never headers, cookies, tokens or bodies."""
    return _fields(_raw_fields(req, status))


def _raw_fields(req: Request, status: int) -> RawFields:
    """The values of the fields as the request has them; cheap, for the request thread."""
    environ = req.environ
    rule = req.url_rule
    principal = current_principal()
    # tuple.__new__ builds the named tuple without its Python-level __new__ (one call less).
    return tuple.__new__(
        RawFields,
        (
            environ.get("REMOTE_ADDR"),
            req.method,
            # The redaction reads the parsed query string, which only the request has.
            _logged_path(req),
            None if rule is None else rule.rule,
            status,
            elapsed_ms(environ),
            None if principal is None else principal.subject,
            None if principal is None else (principal.name or None),
            current_request_id(environ),
            environ.get("HTTP_USER_AGENT", ""),
        ),
    )


def _fields(raw: RawFields) -> dict[str, object]:
    """The fields of the line and the stored record."""
    return {
        "remote_ip": raw.remote_ip or ABSENT,
        "method": raw.method,
        "path": _printable(raw.path, MAX_PATH),
        "route": ABSENT if raw.route is None else raw.route,
        "status": raw.status,
        "duration_ms": round(raw.duration_ms, 2),
        "uid": ABSENT if raw.uid is None else raw.uid,
        "user": ABSENT if raw.user is None else raw.user,
        "request_id": raw.request_id,
        "user_agent": _printable(raw.user_agent, MAX_USER_AGENT) or ABSENT,
    }


def _message(raw: RawFields) -> str:
    """``ACCESS_TEXT % _fields(raw)``, made straight from the values (no dict between)."""
    remote_ip, method, path, route, status, duration_ms, uid, user, request_id, agent = raw
    # The common case inline: a short printable path and agent are kept as they are.
    if len(path) > MAX_PATH or not path.isprintable():
        path = _printable(path, MAX_PATH)
    if len(agent) > MAX_USER_AGENT or not agent.isprintable():
        agent = _printable(agent, MAX_USER_AGENT)
    return (
        f'{remote_ip or ABSENT} "{method} {path}" {status} '
        f"{round(duration_ms, 2):.1f}ms route={ABSENT if route is None else route} "
        f"uid={ABSENT if uid is None else uid} user={ABSENT if user is None else user} "
        f'request_id={request_id} agent="{agent or ABSENT}"'
    )


class Store(Protocol):
    """What the background writer needs from a database (database.sql.access_log)."""

    def write(self, rows: list[dict[str, object]]) -> None: ...
    def purge(self, older_than: datetime) -> int: ...
    def close(self) -> None: ...


class AccessLogSink:
    """A bounded queue and one writer thread per process that stores records in batches.

    ``put`` never blocks and never raises: when the queue is full or the writer is failing,
    records are dropped (and counted), requests are not slowed down.
    """

    def __init__(
        self,
        open_store: Callable[[], Store],
        retention: timedelta,
        batch_size: int = 500,
        max_queued: int = 10_000,
        flush_seconds: float = 1.0,
    ) -> None:
        self._open_store = open_store
        self._retention = retention
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._queue: queue.Queue[tuple[float, dict[str, object]] | None] = queue.Queue(max_queued)
        self._lock = threading.Lock()
        self._pid = 0
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def put(self, fields: dict[str, object]) -> None:
        """Queue a record for the writer (started here, so forked workers get their own)."""
        try:
            if self._pid != os.getpid():
                self._start()
            self._queue.put_nowait((time.time(), fields))
        except Exception:  # queue.Full, or no thread could be started
            self.dropped += 1

    def _start(self) -> None:
        """Start this process's writer thread once."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._thread = threading.Thread(target=self._run, name="access-log-writer", daemon=True)
            self._thread.start()
            self._pid = os.getpid()
            atexit.register(self.flush, 2.0)

    def _run(self) -> None:
        """Write batches until ``close``; a failing database costs records, never the thread."""
        store: Store | None = None
        next_purge = 0.0
        while True:
            batch, closing = self._next_batch()
            try:
                if batch and store is None:
                    store = self._open_store()
                if store is not None:
                    store.write([_row(created, fields) for created, fields in batch])
                if store is not None and time.monotonic() >= next_purge:
                    store.purge(_utc_now() - self._retention)
                    next_purge = time.monotonic() + PURGE_INTERVAL_SECONDS
            except Exception as exc:
                self.dropped += len(batch)
                logger.warning(
                    "The access-log writer could not store %d records: %s",
                    len(batch),
                    mask_credentials(f"{type(exc).__name__}: {exc}".splitlines()[0]),
                )
            finally:
                for _ in range(len(batch) + closing):
                    self._queue.task_done()
            if closing:
                if store is not None:
                    store.close()
                return

    def _next_batch(self) -> tuple[list[tuple[float, dict[str, object]]], bool]:
        """Wait for a record, then take more for up to ``flush_seconds`` or ``batch_size``."""
        batch: list[tuple[float, dict[str, object]]] = []
        item = self._queue.get()
        deadline = time.monotonic() + self._flush_seconds
        while item is not None:
            batch.append(item)
            if len(batch) >= self._batch_size:
                break
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
        return batch, item is None

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was handled; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, stop the writer and close its database connections."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._queue.put(None)
        self._thread.join(timeout)


def _row(created: float, fields: dict[str, object]) -> dict[str, object]:
    """A table row: naive UTC time, NULL for unknown route and anonymous requests."""
    row = dict(fields)
    row["time"] = datetime.fromtimestamp(created, UTC).replace(tzinfo=None)
    for name in ("route", "uid", "user_agent"):
        if row[name] == ABSENT:
            row[name] = None
    return row


def _utc_now() -> datetime:
    """Now, as the naive UTC the table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def access_log_db_url(app: Flask) -> str:
    """ACCESS_LOG_DB_URL, else DATABASE_URL, else a SQLite file in the instance folder."""
    url = app.config["ACCESS_LOG_DB_URL"] or app.config.get("DATABASE_URL")
    return str(url) if url else f"sqlite:///{os.path.join(app.instance_path, DB_FILE)}"


def access_log_reader(app: Flask) -> AccessLogStore | None:
    """The store the admin pages read records from (one per app), or None when
    ACCESS_LOG_DB is off."""
    if not app.config["ACCESS_LOG_DB"]:
        return None
    reader: AccessLogStore | None = app.extensions.get(READER)
    if reader is None:
        from database.sql.access_log import AccessLogStore

        reader = app.extensions[READER] = AccessLogStore(access_log_db_url(app))
    return reader


def _store_opener(url: str) -> Callable[[], Store]:
    """Open the SQL store lazily: SQLAlchemy is imported only when records are stored."""

    def open_store() -> Store:
        from database.sql.access_log import AccessLogStore

        return AccessLogStore(url)

    return open_store


def init_app(app: Flask) -> Step | None:
    """Log every request (ACCESS_LOG) and store it (ACCESS_LOG_DB); add ``flask access-log``.

    Returns the per-response step for ``api.ops`` (None when both are off).
    """
    app.cli.add_command(access_log_cli)
    log_lines = bool(app.config["ACCESS_LOG"])
    sink: AccessLogSink | None = None
    if app.config["ACCESS_LOG_DB"]:
        sink = app.extensions[EXTENSION] = AccessLogSink(
            _store_opener(access_log_db_url(app)),
            timedelta(days=app.config["ACCESS_LOG_RETENTION_DAYS"]),
        )
    if not log_lines and sink is None:
        return None
    writer = access_writer(app)

    def log_request(environ: dict[str, Any], status: int, headers: Headers) -> None:
        req: Request = request._get_current_object()  # type: ignore[attr-defined]
        rule = req.url_rule
        # req.blueprint, without its two property lookups.
        quiet = rule is not None and rule.endpoint.rpartition(".")[0] == QUIET_BLUEPRINT
        level = logging.DEBUG if quiet else logging.INFO
        emit = log_lines and access_logger.isEnabledFor(level)
        store = sink is not None and not quiet
        if emit and writer is not None and not store:
            # The lean writer makes the line when it writes the batch, with warm caches: from
            # the raw values, the JSON line's fields or the text line's message (no dict).
            writer.write_raw(level, _fields if writer.json else _message, _raw_fields(req, status))
        elif emit or store:
            fields = access_fields(req, status)
            if emit and writer is not None:
                writer.write(level, fields)
            elif emit:
                # makeRecord + handle: what logger.log does, minus the stack walk for the
                # caller's file and line, which say nothing here.
                access_logger.handle(
                    access_logger.makeRecord(
                        ACCESS_LOGGER, level, __file__, 0, ACCESS_TEXT, fields, None
                    )
                )
            if store:
                sink.put(fields)  # type: ignore[union-attr]

    return log_request


AGE = re.compile(r"(\d+)\s*([dhm]?)")
AGE_UNITS = {"d": "days", "": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` (a bare number means days)."""
    match = AGE.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) <= 0:
        raise click.BadParameter(
            f"{text!r} is not an age; write a positive number with d, h or m, e.g. 30d."
        )
    return timedelta(**{AGE_UNITS[match.group(2)]: int(match.group(1))})


access_log_cli = AppGroup("access-log", help="Manage the stored access log (ACCESS_LOG_DB=1).")


@access_log_cli.command("purge")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    help="Delete records older than this age: 30d, 12h or 90m. "
    "Default: ACCESS_LOG_RETENTION_DAYS days.",
)
def purge_command(older_than: str | None) -> None:
    """Delete stored access records older than the given age."""
    from database.sql.access_log import AccessLogStore

    age = (
        parse_age(older_than)
        if older_than
        else timedelta(days=current_app.config["ACCESS_LOG_RETENTION_DAYS"])
    )
    cutoff = _utc_now() - age
    store = AccessLogStore(access_log_db_url(current_app))
    try:
        deleted = store.purge(cutoff)
    finally:
        store.close()
    click.echo(
        f"Deleted {deleted} access-log records from before {cutoff:%Y-%m-%d %H:%M:%S} UTC "
        f"in {store.describe()}."
    )
