"""A real MongoDB wire-protocol server for the tests: MONGO_URI if set, else SecantusDB.

SecantusDB (GPL-2.0, a test dependency only) is started in this process on a free loopback
port the first time a test asks for it, with its data in a temporary folder, and stopped when
the process exits. pymongo talks to it over TCP like to any mongod.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import uuid

from tests.support.services import unavailable

_lock = threading.Lock()
_uri: str | None = None


def mongo_uri() -> str:
    """The URI of the test server (started on first use)."""
    global _uri
    with _lock:
        if _uri is None:
            _uri = os.environ.get("MONGO_URI") or _start_secantus()
        return _uri


def unique_database_name() -> str:
    """A database name no other test run uses."""
    return f"test_{uuid.uuid4().hex[:16]}"


def _start_secantus() -> str:
    """Start SecantusDB on 127.0.0.1 with a free port; stop it and delete its data at exit."""
    try:
        from secantus import SecantusDBServer
    except ImportError as exc:
        unavailable(
            "MongoDB", f"SecantusDB is not installed ({exc}); pip install -r requirements-dev.txt"
        )
    storage = tempfile.mkdtemp(prefix="secantus-")
    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=storage)
    try:
        server.start()
    except Exception as exc:  # any start-up failure is reported as an unavailable server
        shutil.rmtree(storage, ignore_errors=True)
        unavailable("MongoDB", f"SecantusDB did not start: {type(exc).__name__}: {exc}")

    def stop() -> None:
        server.stop()
        shutil.rmtree(storage, ignore_errors=True)

    atexit.register(stop)
    return str(server.uri)
