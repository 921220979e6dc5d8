"""Run the real app under gunicorn on a free loopback port, for multi-worker tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.services import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Server:
    """A running gunicorn: its base URL, log file and master process id."""

    url: str
    log_path: Path
    pid: int = 0

    def log(self) -> str:
        """What gunicorn and the app printed so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def gunicorn(
    env: Mapping[str, str],
    log_path: Path,
    workers: int = 2,
    app: str = "api:create_app()",
    extra_args: tuple[str, ...] = (),
    ready: Callable[[Server], bool] | None = None,
) -> Iterator[Server]:
    """Start gunicorn with ``env`` on top of this process's environment; stop it on exit.

    It counts as started when ``ready(server)`` is true; by default, when ``GET /`` answers.
    """
    port = free_port()
    full_env = {**os.environ, **env}
    command = [
        sys.executable, "-m", "gunicorn",
        "--workers", str(workers),
        "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5",
        *extra_args,
        app,
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    server = Server(url=f"http://127.0.0.1:{port}", log_path=log_path, pid=process.pid)
    try:
        _wait_until_serving(process, server, ready or _answers)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(server: Server) -> bool:
    """True when ``GET /`` answers 200."""
    try:
        return requests.get(server.url + "/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _wait_until_serving(
    process: subprocess.Popen[bytes], server: Server, ready: Callable[[Server], bool]
) -> None:
    """Poll until ``ready(server)``, or fail with gunicorn's own output."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{server.log()}")
        if ready(server):
            return
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not answer within {START_TIMEOUT:.0f} s:\n{server.log()}")
