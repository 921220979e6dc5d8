"""Log set-up: level, text or JSON lines, and the request id on every line of a request."""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TextIO

from flask import Flask, has_request_context

from api.ops.requestid import current_request_id

ACCESS_LOGGER = "api.access"
APP_LOGGERS = ("api", "auth", "database")
NO_REQUEST = "-"
ACCESS_TEXT = (
    '%(remote_ip)s "%(method)s %(path)s" %(status)s %(duration_ms).1fms route=%(route)s '
    'uid=%(uid)s user=%(user)s request_id=%(request_id)s agent="%(user_agent)s"'
)
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
    access lines take this path instead: a format and an append, flushed by a background
    thread every ``interval`` seconds (or at 64 KiB, or at exit). Same line shapes as the
    ``text`` and ``json`` formats of the other log lines.
    """

    MAX_BUFFERED = 64 * 1024

    def __init__(self, stream: TextIO, log_format: str, interval: float = 0.2) -> None:
        self._stream = stream
        self._json = log_format == "json"
        self._interval = interval
        self._lines: list[str] = []
        self._size = 0
        self._lock = threading.Lock()
        self._pid = 0
        self._second = -1
        self._stamp = ""

    def write(self, level: int, fields: dict[str, object]) -> None:
        """Queue one access line (never raises into the request)."""
        now = time.time()
        if self._json:
            line = json.dumps(
                {
                    "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
                    "level": logging.getLevelName(level),
                    "logger": ACCESS_LOGGER,
                    "pid": os.getpid(),
                    **fields,
                },
                default=str,
            )
        else:
            second = int(now)
            if second != self._second:  # strftime once a second, not once a line
                self._second, self._stamp = (
                    second,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)),
                )
            line = (
                f"{self._stamp},{int(now % 1 * 1000):03d} {logging.getLevelName(level)} "
                f"{ACCESS_LOGGER}: {ACCESS_TEXT % fields}"
            )
        with self._lock:
            if self._pid != os.getpid():
                self._start()
            self._lines.append(line)
            self._size += len(line)
            full = self._size >= self.MAX_BUFFERED
        if full:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered."""
        with self._lock:
            lines, self._lines, self._size = self._lines, [], 0
        if lines:
            try:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            except (OSError, ValueError):  # a closed stream at exit must not crash anything
                pass

    def _start(self) -> None:
        """One flusher thread per process (started lazily, so forked workers get their own)."""
        self._pid = os.getpid()
        self._lines, self._size = [], 0
        threading.Thread(target=self._run, name="access-log-flusher", daemon=True).start()
        atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()


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
