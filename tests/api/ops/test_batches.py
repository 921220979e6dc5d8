"""BatchQueue: per-request work handed over in batches, by requests or a quiet period's thread."""

from __future__ import annotations

import gc
import logging
import threading
import time

import pytest

from api.ops.batches import BatchQueue


def wait_for(condition: object, seconds: float = 2.0) -> bool:
    """Poll ``condition()`` until true or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_the_request_completing_a_batch_hands_it_over_in_order() -> None:
    batches: list[list[int]] = []
    queue = BatchQueue(batches.append, "t", size=3, interval=60, idle_seconds=3600)
    queue.put(1, 0.0)
    queue.put(2, 0.0)
    assert batches == []
    queue.put(3, 0.0)
    assert batches == [[1, 2, 3]]
    # An item `interval` younger than the oldest queued one hands the batch over too.
    queue.put(4, 10.0)
    queue.put(5, 69.0)
    assert batches == [[1, 2, 3]]
    queue.put(6, 70.0)
    assert batches == [[1, 2, 3], [4, 5, 6]]


def test_a_quiet_period_is_handed_over_by_the_thread() -> None:
    batches: list[list[str]] = []
    queue = BatchQueue(batches.append, "t", size=100, interval=60, idle_seconds=0.05)
    queue.put("only", time.monotonic())
    assert wait_for(lambda: batches == [["only"]])


def test_a_failing_handler_is_logged_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def fail(batch: list[int]) -> None:
        raise RuntimeError("disk full")

    queue = BatchQueue(fail, "failing-work", size=1, interval=60, idle_seconds=3600)
    queue.put(1, 0.0)  # the request that completes the batch does not see the error
    assert "The batch of failing-work could not be handled." in caplog.text
    assert "disk full" in caplog.text


def test_the_thread_ends_with_its_queue() -> None:
    queue = BatchQueue(lambda batch: None, "short-lived", size=100, idle_seconds=0.05)
    queue.put(1, 0.0)

    def flushers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "short-lived-flusher"]

    assert len(flushers()) == 1
    del queue
    gc.collect()
    assert wait_for(lambda: not flushers())


def test_items_queued_by_threads_are_each_handed_over_once() -> None:
    handed: list[int] = []
    queue = BatchQueue(handed.extend, "t", size=7, interval=60, idle_seconds=3600)

    def request_thread(start: int) -> None:
        for item in range(start, start + 500):
            queue.put(item, 0.0)

    threads = [threading.Thread(target=request_thread, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.flush()
    assert sorted(handed) == [n * 1000 + i for n in range(4) for i in range(500)]


def test_the_logger_is_the_modules(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="api.ops.batches")
    queue = BatchQueue(lambda batch: 1 / 0, "div", size=1)  # type: ignore[func-returns-value]
    queue.put(1, 0.0)
    assert [r.name for r in caplog.records] == ["api.ops.batches"]
