"""gunicorn settings: metrics summed over all workers (prometheus-client multiprocess mode).

gunicorn reads this file from the working directory: ``gunicorn 'api:create_app()'``.
Its own command-line options (--workers, --bind, ...) still apply. Like any server config it
reads the process environment; the application itself reads settings only in api/settings.py.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
from typing import Any

# prometheus-client picks its multiprocess mode when it is first imported, which happens in
# each worker after the fork: the variable must be set here, in the master, before that.
_CREATED_HERE = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _CREATED_HERE:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")
_METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

# gunicorn's own access log stays off: the app writes a richer one (api.access).
accesslog = None


def on_starting(server: Any) -> None:
    """Start from empty counters: files left by an earlier server would be added in."""
    os.makedirs(_METRICS_DIR, exist_ok=True)
    for name in os.listdir(_METRICS_DIR):
        if name.endswith(".db"):
            os.remove(os.path.join(_METRICS_DIR, name))


def post_worker_init(worker: Any) -> None:
    """Keep the garbage collector off the objects the app made at start-up.

    A loaded worker holds about 145,000 objects (modules, classes, SQLAlchemy and pydantic
    models) that live as long as it does; every full collection walked all of them again (75
    ms on the benchmark machine, every 10,000 to 20,000 requests, in the middle of one). Once
    start-up garbage is collected, ``gc.freeze`` moves the rest to a generation collections
    skip; objects made by requests are collected as before.
    """
    gc.collect()
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Tell prometheus-client a worker is gone (its live gauges are dropped)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the metrics folder when this file created it."""
    if _CREATED_HERE:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
