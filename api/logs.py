"""Log set-up: level, text or JSON lines, and the request id on every line of a request."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from flask import Flask, has_request_context

from api.requestid import current_request_id

ACCESS_LOGGER = "api.access"
APP_LOGGERS = ("api", "auth", "database")
NO_REQUEST = "-"
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


def make_handler(log_format: str) -> logging.Handler:
    """A stderr handler with the request-id filter, in ``text`` or ``json``."""
    handler = logging.StreamHandler()
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
    level = str(app.config["LOG_LEVEL"]).upper()
    for name in APP_LOGGERS:
        logging.getLogger(name).setLevel(level)


def mask_credentials(text: str) -> str:
    """Hide user:password@ in URLs and password=... pairs, for messages that quote drivers."""
    return _CREDENTIALS.sub(
        lambda m: f"{m.group(1)}***" if m.group(1) else "***@",
        text,
    )
