"""README sections that a new user follows literally, run as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from api.settings import SETTINGS
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # the README's .venv/bin
CODE_BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
# What a fresh clone holds that the app and the flask CLI read.
CLONE_PARTS = ("api", "auth", "database", "migrations", ".flaskenv", "pyproject.toml")


def section(title: str) -> str:
    """The README text under the heading ``title``, up to the next heading of its level."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"^(#+) {re.escape(title)}\n", text, re.MULTILINE)
    assert match, f"README has no section {title!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced block, indentation removed."""
    return [(m.group(2), textwrap.dedent(m.group(3))) for m in CODE_BLOCK.finditer(text)]


def test_protecting_a_new_route_type_checks_and_runs(
    tmp_path: Path, client: FlaskClient, app: Flask, auth_headers
) -> None:
    [(language, code)] = code_blocks(section("Protecting a new route"))
    assert language == "python"
    module = tmp_path / "reports.py"
    module.write_text(code)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tmp_path / "mypy"), str(module)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout  # what `make lint` would say

    namespace: dict[str, object] = {"__name__": "reports"}
    exec(compile(code, str(module), "exec"), namespace)  # noqa: S102 (the README's own code)
    app.register_blueprint(namespace["reports_bp"])  # type: ignore[arg-type]
    headers = auth_headers(client)
    answer = client.get("/api/reports/7", headers=headers)
    assert answer.status_code == 200
    assert answer.get_json()["id"] == 7 and answer.get_json()["owner"]
    assert client.get("/api/reports/7").status_code == 401


def clean_environment() -> dict[str, str]:
    """This process's environment without any app setting: a new user's shell."""
    names = {setting.name for setting in SETTINGS}
    return {k: v for k, v in os.environ.items() if k not in names and not k.startswith("FLASK_")}


def serve_first_request(clone: Path, env: dict[str, str]) -> None:
    """What `make run` and a first visit do: serve, answer GET /, stop."""
    port = free_port()
    server = subprocess.Popen(
        [str(VENV_BIN / "flask"), "run", "--host", "127.0.0.1", "--port", str(port)],
        cwd=clone, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200
                return
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "flask run did not answer in 30 s"
                assert server.poll() is None, "flask run exited"
                time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=15)


def run_documented(line: str, clone: Path, env: dict[str, str]) -> None:
    """Run one README command line (``.venv/bin/...``) in the clone."""
    argv = shlex.split(line, comments=True)
    assert argv[0].startswith(".venv/bin/"), line
    argv[0] = str(VENV_BIN / argv[0].removeprefix(".venv/bin/"))
    done = subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"


def tables(database: Path) -> dict[str, list[str]]:
    """Table name -> column names of a SQLite file."""
    with sqlite3.connect(database) as connection:
        names = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        return {
            name: [row[1] for row in connection.execute(f"PRAGMA table_info('{name}')")]
            for name in names
        }


@pytest.mark.slow
def test_adding_a_model_and_its_migration_after_make_run(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    for part in CLONE_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, clone / part)
    env = clean_environment()
    serve_first_request(clone, env)
    database = clone / "instance" / "app.db"
    assert {"test", "items"} <= set(tables(database))  # built by db_create_all, no migrations

    steps = code_blocks(section("Adding a model and its migration"))
    assert [language for language, _ in steps] == ["sh", "python", "sh"]
    for language, code in steps:
        if language == "python":
            with (clone / "database" / "sql" / "models.py").open("a") as models:
                models.write("\n\n" + code)
            continue
        for line in code.splitlines():
            if line.strip():
                run_documented(line, clone, env)

    [migration] = (clone / "migrations" / "versions").glob("*_add_orders.py")
    assert "orders" in migration.read_text()
    assert tables(database)["orders"] == ["id", "reference", "quantity"]
    assert not list((ROOT / "migrations" / "versions").glob("*_add_orders.py"))
