"""Per-request work done in batches, off the request: access lines and metric observations.

A request only queues an item. The request that completes a batch (``size`` items, or an
item ``interval`` seconds younger than the oldest queued) hands the whole batch to the
queue's handler, with warm caches; a background thread hands over what a quiet period
leaves, every ``idle_seconds``; what is left at exit is handed over then. A forked child
(gunicorn --preload) starts with empty queues and threads of its own.

Why the threads wake so rarely: each time a sleeping thread wakes it needs the interpreter
lock, and the request thread then waits for it at its next system call; woken every 0.2 s,
the access log's thread cost a protected request more than its own access line.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

BATCH_SIZE = 128
BATCH_INTERVAL_SECONDS = 0.2
IDLE_SECONDS = 1.0


class BatchQueue(Generic[T]):
    """Items queued by requests, handed to ``handle`` in batches, in the order queued."""

    _items: list[T]
    _lock: threading.Lock
    _flush_lock: threading.Lock
    _oldest: float
    _started: bool

    def __init__(
        self,
        handle: Callable[[list[T]], None],
        name: str,
        size: int = BATCH_SIZE,
        interval: float = BATCH_INTERVAL_SECONDS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._handle = handle
        self.name = name
        self.size = size
        self.interval = interval
        self.idle_seconds = idle_seconds
        self._reset()
        _QUEUES.add(self)  # type: ignore[arg-type]  # any item type

    def put(self, item: T, now: float) -> None:
        """Queue ``item`` (``now``: its time, on the clock of every other ``put``)."""
        with self._lock:
            if not self._started:
                self._start()
            items = self._items
            if not items:
                self._oldest = now
            items.append(item)
            due = len(items) >= self.size or now - self._oldest >= self.interval
        if due:
            self.flush()

    def flush(self) -> None:
        """Hand what is queued to the handler now; a failing handler is logged, not raised."""
        with self._flush_lock:
            with self._lock:
                items, self._items = self._items, []
            if not items:
                return
            try:
                self._handle(items)
            except Exception:
                logger.exception("The batch of %s could not be handled.", self.name)

    def _reset(self) -> None:
        """Empty, with no thread (a new queue, or one in the child of a fork)."""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._items = []
        self._oldest = 0.0
        self._started = False

    def _start(self) -> None:
        """This process's thread for the queue, started by its first item."""
        self._started = True
        thread = threading.Thread(
            target=_flush_while_alive,
            args=(weakref.ref(self), self.idle_seconds),
            name=f"{self.name}-flusher",
            daemon=True,
        )
        thread.start()


def _flush_while_alive(queue: weakref.ref[BatchQueue[object]], idle_seconds: float) -> None:
    """Flush the queue every ``idle_seconds`` for as long as it exists (apps come and go)."""
    while True:
        time.sleep(idle_seconds)
        alive = queue()
        if alive is None:
            return
        alive.flush()
        del alive


# Every queue of the process, for the fork and exit hooks (weakly: a queue lives with its app).
_QUEUES: weakref.WeakSet[BatchQueue[object]] = weakref.WeakSet()


def _reset_all() -> None:
    """In a forked child: the parent's items are the parent's to hand over."""
    for queue in list(_QUEUES):
        queue._reset()


def _flush_all() -> None:
    """At exit: hand over what is still queued."""
    for queue in list(_QUEUES):
        queue.flush()


os.register_at_fork(after_in_child=_reset_all)
atexit.register(_flush_all)
