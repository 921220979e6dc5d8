"""Real gunicorn: tokens work on every worker, survive a restart, die with logout; several
workers starting on a fresh database all answer their first requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, inspect

from database.sql.dbtype import DBType
from tests.support.gunicorn import Server, gunicorn
from tests.support.services import port_open, unavailable
from tests.support.sql import force_drop, new_database_url, plain

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CALLS = 50


def store_env(store: str, tmp_path: Path) -> dict[str, str]:
    """Settings for one run; the secret comes from instance/ (development default)."""
    env = {
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SESSION_TYPE": store,
        "SECRET_KEY": "",
    }
    if store == "redis":
        if not port_open(REDIS_HOST, REDIS_PORT):
            unavailable("Redis", f"nothing listens on {REDIS_HOST}:{REDIS_PORT}")
        env["REDIS_URL"] = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("store", ["filesystem", "redis"])
def test_tokens_across_workers_restart_and_logout(store: str, tmp_path: Path) -> None:
    env = store_env(store, tmp_path)
    log_path = tmp_path / "gunicorn.log"
    browser = requests.Session()
    with gunicorn(env, log_path, workers=2) as server:
        token = browser.get(f"{server.url}/api/public", timeout=5).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [
            browser.get(f"{server.url}/api/restricted", headers=headers, timeout=5).status_code
            for _ in range(CALLS)
        ]
        assert statuses == [200] * CALLS

    with gunicorn(env, log_path, workers=2) as server:
        # Same store, same secret: the session and its token outlive the restart.
        again = browser.get(f"{server.url}/api/restricted", headers=headers, timeout=5)
        assert again.status_code == 200, again.text
        cookie = browser.cookies.get("session")
        assert cookie
        assert browser.delete(f"{server.url}/api/session", timeout=5).status_code == 200
        refused = [
            requests.get(
                f"{server.url}/api/restricted",
                headers=headers,
                cookies={"session": cookie},  # the old cookie, as a thief would keep it
                timeout=5,
            )
            for _ in range(4)
        ]
        assert [r.status_code for r in refused] == [401] * 4
        assert {r.json()["code"] for r in refused} == {"session_invalid"}
    assert "Traceback" not in log_path.read_text()


WORKERS = 4


def apps_built(server: Server) -> bool:
    """True once every worker has built its app (each logs its SQL database once).

    Readiness is read from the log, not from a request: a request would create the tables
    before the concurrent first requests this test is about.
    """
    return server.log().count("SQL database:") >= WORKERS


def first_requests(url: str, count: int) -> list[int]:
    """``count`` GETs released at the same moment; their statuses."""
    barrier = threading.Barrier(count)

    def get(_: int) -> int:
        barrier.wait()
        return requests.get(url, timeout=30).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(get, range(count)))


@pytest.mark.slow
@pytest.mark.parametrize("kind", [DBType.SQLITE, DBType.POSTGRESQL, DBType.MYSQL], ids=str)
def test_workers_create_a_fresh_database_together(kind: DBType, tmp_path: Path) -> None:
    url = new_database_url(kind, str(tmp_path))  # not created: development creates it
    env = {
        "APP_ENV": "development",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SESSION_TYPE": "filesystem",
        "SECRET_KEY": "",
        "DATABASE_URL": plain(url),
    }
    log_path = tmp_path / "gunicorn.log"
    try:
        with gunicorn(env, log_path, workers=WORKERS, ready=apps_built) as server:
            statuses = first_requests(f"{server.url}/", 2 * WORKERS)
        assert statuses == [200] * (2 * WORKERS), server.log()
        engine = create_engine(url)
        try:
            assert {"test", "items"} <= set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
    finally:
        force_drop(url)
    assert "Traceback" not in log_path.read_text()
