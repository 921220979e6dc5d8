"""Host names that carry their port (``"db.internal:5432"``), as the original project took them."""

from __future__ import annotations

from database.errors import ConfigurationError


def split_host_port(host: str, port: int | None = None) -> tuple[str, int | None]:
    """The host and its port, read from ``"name:port"`` or ``"[v6-address]:port"`` when present.

    A bare IPv6 address (``"::1"``) carries no port. A port written in ``host`` and also
    given as ``port`` must be the same number.
    """
    name, inside = _split(host.strip())
    if inside is not None and port is not None and inside != port:
        raise ConfigurationError(
            f"The port is given twice with different values: {inside} in host={host!r} and "
            f"port={port}; give it once, either in host or as port."
        )
    return name, port if inside is None else inside


def join_host_port(host: str, port: int | None) -> str:
    """``host:port`` (IPv6 addresses in brackets), or the host alone without a port."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _split(host: str) -> tuple[str, int | None]:
    """Separate the port written after the last colon, if the host has one."""
    if host.startswith("["):
        address, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ConfigurationError(
                f"The host {host!r} is not valid; write an IPv6 address as [address] or "
                "[address]:port, e.g. [::1]:5432."
            )
        return address, _port(host, rest[1:]) if rest else None
    if host.count(":") != 1:
        return host, None  # no port, or a bare IPv6 address
    name, _, text = host.partition(":")
    return name, _port(host, text)


def _port(host: str, text: str) -> int:
    """The port number written in ``host``."""
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise ConfigurationError(
            f"The host {host!r} ends with a port that is not a number from 1 to 65535; "
            "write it as host:port, e.g. db.internal:5432."
        )
    return int(text)
