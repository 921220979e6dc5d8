"""Access log: a line per request with the right fields and no secret; stored in SQL on demand."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from api.ops.accesslog import RawFields, _fields, _message, access_log_reader, parse_age
from api.ops.logs import ACCESS_LOGGER, ACCESS_TEXT, RequestIdFilter, make_handler, mask_credentials
from auth.auth import decrypt
from database.sql.access_log import AccessLogQuery, AccessLogStore, access_log_table
from tests.support.services import free_port

AGENT = "pytest-agent/1.0"


@pytest.fixture
def access_lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """The access records emitted so far (INFO and above)."""
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    return lambda: [r for r in caplog.records if r.name == ACCESS_LOGGER]


def test_line_has_every_field_and_no_secret(
    app: Flask, access_lines: Callable[[], list[logging.LogRecord]]
) -> None:
    client = app.test_client()
    token = client.get("/api/public").get_json()["token"]
    cookie = client.get_cookie("session").value
    response = client.get(
        "/api/restricted",
        headers={"Authorization": f"Bearer {token}", "User-Agent": AGENT},
    )
    assert response.status_code == 200
    with app.app_context():
        uid = decrypt(token)

    record = access_lines()[-1]
    fields = record.args
    assert isinstance(fields, dict)
    assert fields["method"] == "GET"
    assert fields["path"] == "/api/restricted"
    assert fields["route"] == "/api/restricted"
    assert fields["status"] == 200
    assert fields["duration_ms"] > 0
    assert fields["remote_ip"] == "127.0.0.1"
    assert fields["uid"] == uid
    assert fields["request_id"] == response.headers["X-Request-ID"]
    assert fields["user_agent"] == AGENT
    line = record.getMessage()
    for value in ("GET /api/restricted", " 200 ", uid, response.headers["X-Request-ID"], AGENT):
        assert value in line
    for record in access_lines():
        text = record.getMessage() + json.dumps(record.args, default=str)
        assert token not in text and token[:40] not in text
        assert cookie not in text
        assert "Bearer" not in text


def test_anonymous_request_route_template_and_query_redaction(
    make_app: Callable[..., Flask], access_lines: Callable[[], list[logging.LogRecord]]
) -> None:
    app = make_app()
    app.add_url_rule("/items/<int:item_id>", "item", lambda item_id: {"id": item_id})
    client = app.test_client()
    client.get("/items/42?page=2&api_key=k-123&password=pw-456&access_token=t-789")
    fields = access_lines()[-1].args
    assert isinstance(fields, dict)
    assert fields["route"] == "/items/<int:item_id>"
    assert fields["path"] == (
        "/items/42?page=2&api_key=[redacted]&password=[redacted]&access_token=[redacted]"
    )
    assert fields["uid"] == "-"
    line = access_lines()[-1].getMessage()
    assert "k-123" not in line and "pw-456" not in line and "t-789" not in line


def test_control_characters_cannot_forge_lines(
    client, access_lines: Callable[[], list[logging.LogRecord]]
) -> None:
    client.get("/nope%0a127.0.0.1%20%22GET%20/admin%22%20200")
    line = access_lines()[-1].getMessage()
    assert "\n" not in line
    assert "route=- " in line and " 404 " in line


@pytest.mark.parametrize("path", ["/running", "/version", "/healthcheck", "/metrics"])
def test_monitoring_urls_are_logged_at_debug_only(
    client, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.get(path)
    assert not [r for r in caplog.records if r.name == ACCESS_LOGGER]
    caplog.set_level(logging.DEBUG, logger=ACCESS_LOGGER)
    client.get(path)
    levels = [r.levelno for r in caplog.records if r.name == ACCESS_LOGGER]
    assert levels == [logging.DEBUG]


def test_access_log_can_be_switched_off(
    make_app: Callable[..., Flask], access_lines: Callable[[], list[logging.LogRecord]]
) -> None:
    make_app(ACCESS_LOG="0").test_client().get("/")
    assert access_lines() == []


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("trace-abc.123:x", True), ("bad id with spaces", False), ("x" * 129, False)],
)
def test_request_id_in_line_header_and_error_body(
    client, access_lines: Callable[[], list[logging.LogRecord]], sent: str, kept: bool
) -> None:
    response = client.get("/nope", headers={"X-Request-ID": sent})
    request_id = response.headers["X-Request-ID"]
    assert (request_id == sent) is kept
    if not kept:
        assert len(request_id) == 32 and int(request_id, 16) >= 0
    assert response.get_json()["request_id"] == request_id
    assert access_lines()[-1].args["request_id"] == request_id  # type: ignore[index]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [(None, "127.0.0.1"), ("0", "127.0.0.1"), ("1", "203.0.113.9"), ("2", "198.51.100.7")],
)
def test_remote_ip_trusts_only_the_configured_proxies(
    make_app: Callable[..., Flask],
    access_lines: Callable[[], list[logging.LogRecord]],
    trusted: str | None,
    expected: str,
) -> None:
    app = make_app() if trusted is None else make_app(TRUSTED_PROXIES=trusted)
    app.test_client().get("/", headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.7, 203.0.113.9"})
    assert access_lines()[-1].args["remote_ip"] == expected  # type: ignore[index]


@pytest.mark.parametrize(("env", "level"), [("development", "INFO"), ("production", "WARNING")])
def test_unset_trusted_proxies_is_logged(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, env: str, level: str
) -> None:
    caplog.set_level(logging.INFO, logger="api.ops.proxies")
    make_app(APP_ENV=env)
    records = [r for r in caplog.records if r.name == "api.ops.proxies"]
    assert [r.levelname for r in records] == [level]
    assert "TRUSTED_PROXIES is not set" in records[0].getMessage()


def capture(app: Flask, log_format: str) -> io.StringIO:
    """Send the app's log records through our own handler into a buffer."""
    stream = io.StringIO()
    handler = make_handler(log_format)
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    for name in ("api", "auth"):
        logging.getLogger(name).addHandler(handler)
    app.extensions["test_handler"] = handler
    return stream


@pytest.fixture
def detach_handlers() -> Iterator[None]:
    yield
    for name in ("api", "auth"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if isinstance(handler.filters[0] if handler.filters else None, RequestIdFilter):
                logger.removeHandler(handler)


@pytest.mark.usefixtures("detach_handlers")
def test_json_lines(make_app: Callable[..., Flask]) -> None:
    app = make_app(LOG_FORMAT="json")
    stream = capture(app, "json")
    response = app.test_client().get("/", headers={"User-Agent": AGENT})
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [e for e in entries if e["logger"] == ACCESS_LOGGER]
    assert len(access) == 1
    entry = access[0]
    assert entry["level"] == "INFO"
    assert datetime.fromisoformat(entry["time"]).tzinfo is not None
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert {k: entry[k] for k in ("method", "path", "route", "status", "user_agent")} == {
        "method": "GET",
        "path": "/",
        "route": "/",
        "status": 200,
        "user_agent": AGENT,
    }


@pytest.mark.usefixtures("detach_handlers")
def test_text_lines_carry_the_request_id(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.get("/t/warn")
    def warn() -> dict[str, bool]:
        logging.getLogger("api.test").warning("something odd")
        return {"ok": True}

    stream = capture(app, "text")
    response = app.test_client().get("/t/warn")
    request_id = response.headers["X-Request-ID"]
    warning, access = stream.getvalue().splitlines()
    assert warning.endswith(f"something odd [request_id={request_id}]")
    assert f"request_id={request_id} " in access and access.count(request_id) == 1


def test_mask_credentials() -> None:
    text = "postgresql://app:pa55@db:5432/x and host=db password=pa55 user=app"
    masked = mask_credentials(text)
    assert "pa55" not in masked
    assert "postgresql://***@db:5432/x" in masked


@pytest.mark.parametrize(
    ("text", "age"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)),
     ("7", timedelta(days=7))],
)  # fmt: skip
def test_parse_age(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


# --- persistent access log -------------------------------------------------------------


def utc_now() -> datetime:
    """Naive UTC, as stored."""
    return datetime.now(UTC).replace(tzinfo=None)


def stored_rows(url: str) -> list[dict[str, object]]:
    """Every stored access record, oldest first."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.select(access_log_table).order_by(access_log_table.c.id)
            rows = connection.execute(query)
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_app(
    request: pytest.FixtureRequest, make_app: Callable[..., Flask], tmp_path
) -> Iterator[tuple[Flask, str]]:
    """An app storing its access log in SQLite (the default file) or PostgreSQL."""
    if request.param == "sqlite":
        app = make_app(ACCESS_LOG_DB="1")
        url = f"sqlite:///{app.instance_path}/access_log.db"
    else:
        url = request.getfixturevalue("access_log_pg_url")
        app = make_app(ACCESS_LOG_DB="1", ACCESS_LOG_DB_URL=url)
    yield app, url
    app.extensions["access_log"].close()
    reader = app.extensions.get("access_log_reader")
    if reader is not None:
        reader.close()


def old_record(days: int) -> dict[str, object]:
    """A stored record from ``days`` ago."""
    return {
        "time": utc_now() - timedelta(days=days),
        "method": "GET",
        "route": "/",
        "path": "/",
        "status": 200,
        "duration_ms": 1.0,
        "remote_ip": "192.0.2.1",
        "uid": None,
        "request_id": "old",
        "user_agent": None,
    }


def test_records_are_stored_and_purged(db_app: tuple[Flask, str]) -> None:
    app, url = db_app
    store = AccessLogStore(url)
    store.write([old_record(days=40)])  # beyond ACCESS_LOG_RETENTION_DAYS (30)
    client = app.test_client()
    token = client.get("/api/public").get_json()["token"]
    client.get("/api/restricted", headers={"Authorization": f"Bearer {token}"})
    client.get("/running")  # monitoring: not stored
    assert app.extensions["access_log"].flush(10)

    # The writer stored both requests and applied the retention to the old record.
    rows = stored_rows(url)
    assert [(r["route"], r["status"]) for r in rows] == [
        ("/api/public", 200),
        ("/api/restricted", 200),
    ]
    with app.app_context():
        uid = decrypt(token)
    assert rows[0]["uid"] is None and rows[1]["uid"] == uid
    assert {r["remote_ip"] for r in rows} == {"127.0.0.1"}
    assert all(r["request_id"] and r["duration_ms"] > 0 for r in rows)
    assert all(abs(r["time"] - utc_now()) < timedelta(minutes=1) for r in rows)

    store.write([old_record(days=3)])
    store.close()
    result = app.test_cli_runner().invoke(args=["access-log", "purge", "--older-than", "2d"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Deleted 1 access-log records")
    assert len(stored_rows(url)) == 2


def test_stored_records_are_searched_by_user_status_and_time(db_app: tuple[Flask, str]) -> None:
    app, url = db_app
    rows = [
        {**old_record(days=days), "uid": uid, "status": status, "request_id": f"r{index}"}
        for index, (days, uid, status) in enumerate(
            [(1, "u1", 200), (2, "u1", 404), (3, "u2", 403), (4, None, 500), (5, "u1", 201)]
        )
    ]
    writer = AccessLogStore(url)
    writer.write(rows)
    writer.close()
    reader = access_log_reader(app)
    assert reader is not None and access_log_reader(app) is reader  # one per app

    def found(offset: int = 0, limit: int = 10, **query: object) -> tuple[list[str], int]:
        records, total = reader.search(AccessLogQuery(**query), offset, limit)  # type: ignore[arg-type]
        return [str(r["request_id"]) for r in records], total

    assert found() == (["r0", "r1", "r2", "r3", "r4"], 5)  # newest first
    assert found(uid="u1") == (["r0", "r1", "r4"], 3)
    assert found(status_min=400, status_max=499) == (["r1", "r2"], 2)
    day = timedelta(days=1)
    window = {"since": utc_now() - 3 * day - day / 2, "until": utc_now() - day - day / 2}
    assert found(**window) == (["r1", "r2"], 2)
    assert found(offset=1, limit=2, uid="u1") == (["r1", "r4"], 3)


def test_nothing_is_read_when_the_access_log_is_not_stored(app: Flask) -> None:
    assert access_log_reader(app) is None


def test_purge_refuses_a_bad_age(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["access-log", "purge", "--older-than", "soon"])
    assert result.exit_code == 2
    assert "'soon' is not an age" in result.output


def test_a_dead_database_never_fails_a_request(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"postgresql+psycopg2://writer:pw-never-logged@127.0.0.1:{free_port()}/nowhere"
    app = make_app(ACCESS_LOG_DB="1", ACCESS_LOG_DB_URL=url)
    sink = app.extensions["access_log"]
    try:
        client = app.test_client()
        assert [client.get("/").status_code for _ in range(3)] == [200] * 3
        assert sink.flush(10)
        assert sink.dropped == 3
        assert "access-log writer could not store" in caplog.text
        assert "pw-never-logged" not in caplog.text
        assert client.get("/").status_code == 200
    finally:
        sink.close()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_lean_writer_lines_match_the_log_formats(log_format: str) -> None:
    from api.ops.logs import AccessLineWriter

    stream = io.StringIO()
    writer = AccessLineWriter(stream, log_format, interval=60)
    fields = {
        "remote_ip": "203.0.113.9", "method": "GET", "path": "/x?token=[redacted]",
        "route": "/x", "status": 200, "duration_ms": 1.25, "uid": "-", "user": "-",
        "request_id": "abc123", "user_agent": "curl/8",
    }  # fmt: skip
    writer.write(logging.INFO, fields)
    writer.write(logging.DEBUG, {**fields, "request_id": "def456"})
    assert stream.getvalue() == ""  # buffered until the flusher (or exit) writes it
    writer.flush()
    first, second = stream.getvalue().splitlines()
    if log_format == "json":
        entry = json.loads(first)
        assert entry["logger"] == ACCESS_LOGGER and entry["level"] == "INFO"
        assert datetime.fromisoformat(entry["time"]).tzinfo is not None
        assert {k: entry[k] for k in fields} == fields
        assert json.loads(second)["level"] == "DEBUG"
    else:
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO api\.access: 203\.0\.113\.9 "
            r'"GET /x\?token=\[redacted\]" 200 1\.2ms route=/x uid=- user=- request_id=abc123 '
            r'agent="curl/8"',
            first,
        ), first
        assert " DEBUG api.access: " in second


def test_lean_writer_flushes_in_the_background() -> None:
    from api.ops.logs import AccessLineWriter

    stream = io.StringIO()
    writer = AccessLineWriter(stream, "text", interval=60, idle_seconds=0.05)
    writer.write(logging.INFO, dict.fromkeys(
        ("remote_ip", "method", "path", "route", "status", "uid", "user", "request_id",
         "user_agent"), "-"
    ) | {"duration_ms": 0.5})  # fmt: skip
    deadline = time.monotonic() + 2
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.getvalue().count("\n") == 1


def test_lean_writer_under_load_is_written_by_the_requests_in_batches() -> None:
    from api.ops.logs import AccessLineWriter

    stream = io.StringIO()
    # The background flusher never runs in this test: the requests write their lines.
    writer = AccessLineWriter(stream, "text", interval=0.2, idle_seconds=3600)
    line = dict.fromkeys(
        ("remote_ip", "method", "path", "route", "status", "uid", "user", "request_id",
         "user_agent"), "-"
    ) | {"duration_ms": 0.5}  # fmt: skip
    for _ in range(AccessLineWriter.BATCH - 1):
        writer.write(logging.INFO, line, created=100.0)
    assert stream.getvalue() == ""  # one batch, one write
    writer.write(logging.INFO, line, created=100.0)
    assert stream.getvalue().count("\n") == AccessLineWriter.BATCH
    # A line more than `interval` younger than the oldest queued one writes the batch too.
    writer.write(logging.INFO, line, created=200.0)
    writer.write(logging.INFO, line, created=200.1)
    assert stream.getvalue().count("\n") == AccessLineWriter.BATCH
    writer.write(logging.INFO, line, created=200.3)
    assert stream.getvalue().count("\n") == AccessLineWriter.BATCH + 3


def test_lean_writer_makes_lazy_fields_off_the_request() -> None:
    from api.ops.logs import AccessLineWriter

    stream = io.StringIO()
    writer = AccessLineWriter(stream, "text", interval=60)
    made: list[int] = []

    def fields() -> dict[str, object]:
        made.append(1)
        return dict.fromkeys(
            (
                "remote_ip",
                "method",
                "path",
                "route",
                "status",
                "uid",
                "user",
                "request_id",
                "user_agent",
            ),
            "-",
        ) | {"duration_ms": 0.5, "request_id": "lazy-1"}

    writer.write(logging.INFO, fields, created=0.0)
    assert made == []  # nothing is formatted in the request
    writer.flush()
    assert made == [1]
    assert "request_id=lazy-1" in stream.getvalue()


def test_lean_writer_in_a_forked_child_starts_empty_with_its_own_flusher() -> None:
    from api.ops.logs import AccessLineWriter

    def fields(request_id: str) -> dict[str, object]:
        keys = ("remote_ip", "method", "path", "route", "status", "uid", "user", "user_agent")
        return dict.fromkeys(keys, "-") | {"duration_ms": 0.5, "request_id": request_id}

    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    writer = AccessLineWriter(stream, "text", interval=60, idle_seconds=0.05)
    writer.write(logging.INFO, fields("parent-line"))  # queued; the parent's flusher runs
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe and its exit code)
        try:
            writer.write(logging.INFO, fields("child-line"))
            time.sleep(0.5)  # the child's own flusher writes it; the parent's did not survive
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    writer.flush()
    stream.close()
    with os.fdopen(read_end) as output:
        text = output.read()
    assert text.count("request_id=parent-line") == 1  # not written again by the child
    assert text.count("request_id=child-line") == 1


@pytest.mark.parametrize(
    "raw",
    [
        ("203.0.113.9", "GET", "/x?t=[redacted]", "/x", 200, 1.25, "u1", "ann", "abc", "curl/8"),
        (None, "POST", "/p", None, 404, 0.049999, None, None, "r2", ""),
        (
            "::1",
            "GET",
            "/a\nb" + "c" * 3000,
            "/<path:p>",
            500,
            12.3456,
            "7",
            None,
            "r3",
            "agent\twith\x1bcontrols" + "z" * 300,
        ),
        ("10.0.0.1", "DELETE", "/n", "/n", 204, 0.95, "9", "bob", "r4", "x"),
    ],
)
def test_the_text_message_is_the_text_format_filled_in(raw: tuple[object, ...]) -> None:
    # The lean writer's text lines are made by _message; the logging path fills ACCESS_TEXT.
    fields = RawFields(*raw)  # type: ignore[arg-type]
    assert _message(fields) == ACCESS_TEXT % _fields(fields)


def test_a_writer_makes_a_raw_line_only_when_it_writes() -> None:
    from api.ops.logs import AccessLineWriter

    raw = RawFields("::1", "GET", "/r", "/r", 201, 0.25, "7", "ann", "raw-1", "curl/8")
    made: list[RawFields] = []

    def make(values: RawFields) -> str:
        made.append(values)
        return _message(values)

    stream = io.StringIO()
    writer = AccessLineWriter(stream, "text", interval=60)
    writer.write_raw(logging.WARNING, make, raw)
    assert made == []
    writer.flush()
    assert made == [raw]
    assert stream.getvalue().endswith(f" WARNING {ACCESS_LOGGER}: {_message(raw)}\n")

    stream = io.StringIO()
    writer = AccessLineWriter(stream, "json", interval=60)
    writer.write_raw(logging.INFO, _fields, raw)
    writer.flush()
    entry = json.loads(stream.getvalue())
    assert entry["user"] == "ann" and entry["status"] == 201 and entry["level"] == "INFO"


def test_a_json_writer_given_a_message_writes_it_as_one() -> None:
    from api.ops.logs import AccessLineWriter

    stream = io.StringIO()
    writer = AccessLineWriter(stream, "json", interval=60)
    assert writer.json
    writer.write(logging.INFO, "made by hand")
    writer.flush()
    entry = json.loads(stream.getvalue())
    assert entry["message"] == "made by hand" and entry["logger"] == ACCESS_LOGGER


def test_a_text_writer_makes_a_lazy_message_when_it_writes() -> None:
    from api.ops.logs import AccessLineWriter

    stream = io.StringIO()
    writer = AccessLineWriter(stream, "text", interval=60)
    made: list[str] = []

    def message() -> str:
        made.append("made")
        return _message(RawFields("::1", "GET", "/", "/", 200, 0.5, None, None, "lazy-2", "curl/8"))

    writer.write(logging.INFO, message)
    assert made == []  # nothing is formatted in the request
    writer.flush()
    assert made == ["made"]
    assert stream.getvalue().endswith(
        ' "GET /" 200 0.5ms route=/ uid=- user=- request_id=lazy-2 agent="curl/8"\n'
    )
