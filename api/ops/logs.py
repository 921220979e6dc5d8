"""Log set-up: level, text or JSON lines, and the request id on every line of a request."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, has_request_context

from api.ops.batches import BATCH_INTERVAL_SECONDS, BATCH_SIZE, IDLE_SECONDS, BatchQueue
from api.ops.requestid import current_request_id

ACCESS_LOGGER = "api.access"
APP_LOGGERS = ("api", "auth", "database")
NO_REQUEST = "-"
ACCESS_TEXT = (
    '%(remote_ip)s "%(method)s %(path)s" %(status)s %(duration_ms).1fms route=%(route)s '
    'uid=%(uid)s user=%(user)s request_id=%(request_id)s agent="%(user_agent)s"'
)
Fields = Mapping[str, object]
# The fields of an access line or, for the text format, its message (ACCESS_TEXT filled in);
# or a function making either, called when the line is written.
LazyFields = Fields | str | Callable[[], Fields | str]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"
# user:password@ in URLs (any scheme) and password=... in DSNs.
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@|(?i:(password|passwd|pwd)=)[^\s&;]+")


class RequestIdFilter(logging.Filter):
    """Give each record ``request_id`` (``-`` outside a request); add it to your own handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate, never drop."""
        request_id = current_request_id() if has_request_context() else None
        record.request_id = request_id or NO_REQUEST
        # Access lines carry request_id in their own fields; other lines get it appended.
        record.request_tag = (
            f" [request_id={request_id}]" if request_id and record.name != ACCESS_LOGGER else ""
        )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access records spread their fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record (only called for records that are emitted)."""
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
        }
        if record.name == ACCESS_LOGGER and isinstance(record.args, dict):
            entry.update(record.args)
        else:
            entry["message"] = record.getMessage()
            request_id = getattr(record, "request_id", NO_REQUEST)
            if request_id != NO_REQUEST:
                entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class AccessLineWriter:
    """Writes access lines straight to a stream in batches, for the app's own log set-up.

    Through ``logging``, each access line cost a LogRecord, filters, a formatter and a flushed
    write: about a third of a small request's time. When the app configures logging itself,
    access lines take this path instead. A request only queues its time, level and fields (or
    in the text format the message itself, or a function that makes either); the lines are
    formatted and written in batches, one system call each (``api.ops.batches``: under load
    within ``interval`` seconds, after a quiet period within ``idle_seconds``). Same line
    shapes as the ``text`` and ``json`` formats of the other log lines.
    """

    BATCH = BATCH_SIZE

    def __init__(
        self,
        stream: TextIO,
        log_format: str,
        interval: float = BATCH_INTERVAL_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._stream = stream
        self._json = log_format == "json"
        self._second = -1
        self._stamp = ""
        self._pid = os.getpid()
        # A forked worker notes its pid once, instead of an os.getpid() call on every line.
        os.register_at_fork(after_in_child=self._note_pid)
        # " INFO api.access: " and the like, per level, for the text lines.
        self._prefixes: dict[int, str] = {}
        # (time, level, make or None, value): see ``_line``.
        self._queue: BatchQueue[tuple[float, int, Any, Any]] = BatchQueue(
            self._write_lines, "access-log", self.BATCH, interval, idle_seconds
        )

    @property
    def json(self) -> bool:
        """True when lines are JSON objects."""
        return self._json

    def write(self, level: int, fields: LazyFields, created: float = 0.0) -> None:
        """Queue one access line (never raises into the request).

        ``fields`` may also be, in the text format, the message (``ACCESS_TEXT`` filled in), or
        a function returning the fields or the message: it is called when the batch is
        formatted. ``created`` is the line's time (default: now).
        """
        created = created or time.time()
        self._queue.put((created, level, None, fields), created)

    def write_raw(self, level: int, make: Callable[[Any], Fields | str], raw: object) -> None:
        """Queue one access line whose fields or message ``make(raw)`` makes when it is written.

        As ``write(level, functools.partial(make, raw))``, without making the partial.
        """
        created = time.time()
        self._queue.put((created, level, make, raw), created)

    def flush(self) -> None:
        """Format and write what is queued, in order."""
        self._queue.flush()

    def _write_lines(self, entries: list[tuple[float, int, Any, Any]]) -> None:
        """One batch: its lines in one write."""
        try:
            lines = [self._line(*entry) for entry in entries]
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # a closed stream at exit must not crash anything
            pass

    def _line(self, created: float, level: int, make: Any, value: Any) -> str:
        """One line in the configured format: ``make(value)``, or ``value`` as ``write`` took it."""
        fields = value if make is None else make(value)
        if callable(fields):
            fields = fields()
        if self._json:
            if isinstance(fields, str):
                fields = {"message": fields}
            return json.dumps(
                {
                    "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
                    "level": logging.getLevelName(level),
                    "logger": ACCESS_LOGGER,
                    "pid": self._pid,
                    **fields,
                },
                default=str,
            )
        second = int(created)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
        prefix = self._prefixes.get(level)
        if prefix is None:
            prefix = self._prefixes[level] = f" {logging.getLevelName(level)} {ACCESS_LOGGER}: "
        message = fields if isinstance(fields, str) else ACCESS_TEXT % fields
        return f"{self._stamp},{int(created % 1 * 1000):03d}{prefix}{message}"

    def _note_pid(self) -> None:
        """In a forked child: its own pid on JSON lines."""
        self._pid = os.getpid()


def access_writer(app: Flask) -> AccessLineWriter | None:
    """The lean writer, when the app set up logging and the access logger has no handlers."""
    writer: AccessLineWriter | None = app.extensions.get("access_writer")
    access = logging.getLogger(ACCESS_LOGGER)
    if writer is None or access.handlers or access.filters:
        return None
    return writer


def make_handler(log_format: str) -> logging.Handler:
    """A stderr handler with the request-id filter, in ``text`` or ``json``."""
    handler = logging.StreamHandler()
    handler.access_writer = True  # type: ignore[attr-defined]  # marks our own set-up
    handler.addFilter(RequestIdFilter())
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    return handler


def init_app(app: Flask) -> None:
    """Log to stderr at LOG_LEVEL unless the host (gunicorn --log-config, pytest) set up logging."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(make_handler(app.config["LOG_FORMAT"]))
        root.setLevel(logging.WARNING)
        app.extensions["access_writer"] = _shared_writer(app.config["LOG_FORMAT"])
    elif any(getattr(h, "access_writer", None) for h in root.handlers):
        # A second app in this process: the logging set-up is still ours.
        app.extensions["access_writer"] = _shared_writer(app.config["LOG_FORMAT"])
    level = str(app.config["LOG_LEVEL"]).upper()
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(level)


_writers: dict[str, AccessLineWriter] = {}


def _shared_writer(log_format: str) -> AccessLineWriter:
    """One writer per format for the process, writing to stderr like the root handler."""
    if log_format not in _writers:
        _writers[log_format] = AccessLineWriter(sys.stderr, log_format)
    return _writers[log_format]


def mask_credentials(text: str) -> str:
    """Hide user:password@ in URLs and password=... pairs, for messages that quote drivers."""
    return _CREDENTIALS.sub(
        lambda m: f"{m.group(1)}***" if m.group(1) else "***@",
        text,
    )
