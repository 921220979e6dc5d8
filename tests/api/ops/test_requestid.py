"""Request ids: a safe incoming id is kept, otherwise a fresh one, unique across workers."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from flask import Flask

from api.ops.requestid import HEADER, new_request_id


def test_each_request_gets_its_own_id(make_app: Callable[..., Flask]) -> None:
    client = make_app().test_client()
    ids = [client.get("/").headers[HEADER] for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in ids)


@pytest.mark.parametrize(
    ("sent", "kept"), [("abc-123.x:y_z", True), ("bad id", False), ("x" * 129, False)]
)
def test_an_incoming_id_is_kept_only_when_safe(
    make_app: Callable[..., Flask], sent: str, kept: bool
) -> None:
    answered = make_app().test_client().get("/", headers={HEADER: sent}).headers[HEADER]
    assert (answered == sent) is kept


def test_a_forked_worker_never_repeats_its_parents_ids() -> None:
    # gunicorn forks its workers from one process: each must draw its own sequence.
    before = new_request_id()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child reports through the pipe)
        try:
            os.write(write, new_request_id().encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    in_child = os.read(read, 64).decode()
    os.close(read)
    in_parent = new_request_id()
    assert len(in_child) == 32 and int(in_child, 16) >= 0
    # Without a new seed the child would draw exactly what the parent draws next.
    assert in_child != in_parent and in_parent != before


def test_ids_do_not_count_requests() -> None:
    first, second = new_request_id(), new_request_id()
    assert abs(int(second, 16) - int(first, 16)) > 2**64
