"""gunicorn.conf.py's hooks, called as gunicorn calls them."""

from __future__ import annotations

import gc
import runpy
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gunicorn import REPO_ROOT


@pytest.fixture
def hooks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, Callable[..., Any]]]:
    """The file's functions; its metrics folder is a temporary one; the collector is left
    unfrozen afterwards."""
    # Set, the file does not make a folder of its own or change this process's environment.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    yield runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))
    gc.unfreeze()


class Node:
    """An object that can be in a reference cycle and be watched with a weak reference."""

    other: object = None


def test_a_loaded_worker_collects_then_freezes_its_start_up_objects(
    hooks: dict[str, Callable[..., Any]],
) -> None:
    gc.unfreeze()
    start_up = [Node() for _ in range(10)]  # stand-ins for what loading the app made
    cycle = Node()
    cycle.other = cycle  # start-up garbage only the collector frees
    dead = weakref.ref(cycle)
    del cycle
    tracked_before = len(gc.get_objects())
    hooks["post_worker_init"](None)
    assert dead() is None  # collected, not frozen
    assert gc.get_freeze_count() >= len(start_up)
    # Frozen objects are in no generation: a full collection no longer walks them.
    assert len(gc.get_objects()) < tracked_before / 10
    gc.collect()
    assert all(isinstance(node, Node) for node in start_up)  # alive: frozen, not freed
