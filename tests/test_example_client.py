"""examples/client.py runs as printed against a live gunicorn (SQLite file, two workers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from database.sql import db_create_all
from tests.conftest import TEST_SECRET_KEY
from tests.support.accounts import PASSWORD, make_user
from tests.support.gunicorn import REPO_ROOT, gunicorn


@pytest.mark.slow
def test_example_client_logs_in_refreshes_and_logs_out(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    app = make_app(DATABASE_URL=database_url)
    with app.app_context():
        db_create_all()
    make_user(app, "ada")
    env = {
        "APP_ENV": "development",
        "SECRET_KEY": TEST_SECRET_KEY,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        # Access tokens expire after about two seconds, so the client must refresh once.
        "ACCESS_TOKEN_TTL_SECONDS": "1",
        "TOKEN_LEEWAY_SECONDS": "1",
    }
    with gunicorn(env, tmp_path / "gunicorn.log", workers=2) as server:
        result = subprocess.run(
            [sys.executable, "examples/client.py", "--url", server.url, "--username", "ada",
             "--wait", "2.5"],
            cwd=REPO_ROOT, env={**os.environ, "API_PASSWORD": PASSWORD},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "logged in as ada",
        "this is a restricted url.",
        "refreshed 1 time(s)",
        "logged out",
    ]
