"""Real gunicorn, 2 workers: tokens work on every worker, survive a restart, die with logout."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.support.gunicorn import gunicorn
from tests.support.services import port_open, unavailable

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
