"""Monitoring endpoints (no authentication): /running, /version, /healthcheck, /metrics."""

from __future__ import annotations

import logging
import os
import threading
import time
import tomllib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, jsonify

from api.errorhandler import error_response
from api.ops.logs import mask_credentials
from api.ops.metrics import metrics_response
from api.sessions import SESSION_DIR
from api.validation import operation

logger = logging.getLogger(__name__)

monitoring_bp = Blueprint("monitoring", __name__)

EXTENSION = "healthchecks"
UNKNOWN = "unknown"
PROJECT_FILE = Path(__file__).resolve().parents[2] / "pyproject.toml"
MAX_CHECK_THREADS = 8

Check = Callable[[], object]
Outcome = tuple[float, str]


@dataclass
class HealthChecks:
    """The app's named readiness checks and the threads that run them with a time bound."""

    timeout: float
    checks: dict[str, Check] = field(default_factory=dict)
    # A check still running from an earlier probe is not started again: a hung dependency
    # then holds one thread, not one per probe.
    running: dict[str, Future[Outcome]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    executor: ThreadPoolExecutor | None = None

    def run(self) -> list[dict[str, object]]:
        """Run every check in parallel; answer within ``timeout`` seconds whatever they do."""
        started = time.perf_counter()
        futures = {name: self._submit(name, check) for name, check in self.checks.items()}
        wait_for(futures.values(), timeout=self.timeout)
        return [self._result(name, future, started) for name, future in futures.items()]

    def _submit(self, name: str, check: Check) -> Future[Outcome]:
        """Start ``check`` unless its previous run is still going; return that run's future."""
        with self.lock:
            future = self.running.get(name)
            if future is None or future.done():
                if self.executor is None:
                    self.executor = ThreadPoolExecutor(MAX_CHECK_THREADS, "healthcheck")
                future = self.executor.submit(_timed, name, check)
                self.running[name] = future
            return future

    def _result(self, name: str, future: Future[Outcome], started: float) -> dict[str, object]:
        """One entry of the answer: name, status, latency; an error type name when it failed."""
        if not future.done():
            latency = (time.perf_counter() - started) * 1000.0
            return _entry(name, latency, f"did not answer within {self.timeout:g} s")
        latency, error = future.result()
        return _entry(name, latency, error)


def _timed(name: str, check: Check) -> Outcome:
    """Run the check: its latency in ms and, when it raised, the error's type name."""
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        logger.warning("Health check %s failed: %s", name, mask_credentials(repr(exc)))
        return (time.perf_counter() - started) * 1000.0, type(exc).__name__
    return (time.perf_counter() - started) * 1000.0, ""


def _entry(name: str, latency_ms: float, error: str = "") -> dict[str, object]:
    """The public shape of a result; never the error text (it may quote hosts or URLs)."""
    entry: dict[str, object] = {
        "name": name,
        "status": "failure" if error else "success",
        "latency_ms": round(latency_ms, 2),
    }
    if error:
        entry["error"] = error
    return entry


def _health_checks(app: Flask) -> HealthChecks:
    """The app's registry, created on first use so layers may register before or after init."""
    checks: HealthChecks | None = app.extensions.get(EXTENSION)
    if checks is None:
        checks = app.extensions[EXTENSION] = HealthChecks(
            timeout=float(app.config.get("HEALTHCHECK_TIMEOUT_SECONDS", 1.5))
        )
    return checks


def register_check(app: Flask, name: str, check: Check) -> None:
    """Add a readiness check: ``check()`` returns when the dependency works and raises if not.

    It runs in a worker thread with no app context: capture what it needs (an engine, a
    client) when registering. Give it its own short timeouts; /healthcheck reports it as
    failed after HEALTHCHECK_TIMEOUT_SECONDS whatever it does.
    """
    checks = _health_checks(app)
    if name in checks.checks:
        raise RuntimeError(f"A health check named {name!r} is already registered; pick another.")
    checks.checks[name] = check


@monitoring_bp.get("/running")
@operation(tags=["monitoring"])
def running() -> Response:
    """Liveness: the process answers; touches no dependency."""
    return jsonify(running=True)


@monitoring_bp.get("/version")
@operation(tags=["monitoring"])
def version() -> Response:
    """What is deployed: version, commit and build."""
    return jsonify(current_app.extensions["version"])


@monitoring_bp.get("/healthcheck")
@operation(tags=["monitoring"], responses={200: None})
def healthcheck() -> Response:
    """Readiness: 200 when every dependency answers, 503 naming the ones that do not."""
    results = _health_checks(current_app).run()
    failed = [result["name"] for result in results if result["status"] == "failure"]
    if not failed:
        return jsonify(status="success", results=results)
    return error_response(
        503,
        f"These dependencies are not ready: {', '.join(map(str, failed))}.",
        status="failure",
        results=results,
    )


monitoring_bp.add_url_rule(
    "/metrics",
    "metrics",
    operation(tags=["monitoring"], content_type="text/plain", errors=(401, 404))(metrics_response),
    methods=["GET"],
)


def project_version() -> str:
    """The version in the installed package metadata, else in pyproject.toml, else unknown."""
    try:
        with PROJECT_FILE.open("rb") as handle:
            project = tomllib.load(handle).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return UNKNOWN
    name = project.get("name", "")
    try:
        return metadata.version(name) if name else str(project.get("version", UNKNOWN))
    except metadata.PackageNotFoundError:
        return str(project.get("version", UNKNOWN))


def init_app(app: Flask) -> None:
    """Register the endpoints, the version answer and the session-store check."""
    app.extensions["version"] = {
        "version": app.config["APP_VERSION"] or project_version(),
        "git_commit": app.config["GIT_COMMIT"] or UNKNOWN,
        "build_id": app.config["BUILD_ID"] or UNKNOWN,
    }
    _health_checks(app)
    redis_client = app.extensions.get("session_redis")
    if redis_client is not None:
        register_check(app, "session_store", redis_client.ping)
    else:
        session_dir = os.path.join(app.instance_path, SESSION_DIR)
        register_check(app, "session_store", lambda: _check_writable(session_dir))
    app.register_blueprint(monitoring_bp)


def _check_writable(directory: str) -> None:
    """The file session store's folder exists and this process may write there."""
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError("The session folder is missing or not writable.")
