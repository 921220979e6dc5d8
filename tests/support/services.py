"""Skip a test when a server is unreachable, or fail it when REQUIRE_SERVICES=1 (as in CI)."""

from __future__ import annotations

import os
import socket
import unittest
from typing import NoReturn


def services_required() -> bool:
    """True when a missing server must fail the run instead of skipping (CI sets this)."""
    return os.environ.get("REQUIRE_SERVICES", "") == "1"


def unavailable(service: str, reason: str) -> NoReturn:
    """Skip with a one-line reason, or fail when REQUIRE_SERVICES=1."""
    message = f"{service} is unavailable: {reason}"
    if services_required():
        raise RuntimeError(f"{message} (REQUIRE_SERVICES=1, so this fails instead of skipping)")
    # unittest.SkipTest is honoured by both pytest and unittest.
    raise unittest.SkipTest(message)


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
