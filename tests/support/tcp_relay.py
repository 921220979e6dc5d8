"""A TCP relay to a real server on a port of its own: stopping it makes the server unreachable
(connections cut, new ones refused) without touching the server other tests share."""

from __future__ import annotations

import select
import socket
import threading

from tests.support.services import free_port

POLL_SECONDS = 0.05


class TcpRelay:
    """Forwards 127.0.0.1:``port`` to ``target`` while started; ``stop`` and ``start`` again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._stopped = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._pumps: list[threading.Thread] = []

    def start(self) -> None:
        """Accept connections on the port again (the same port each time)."""
        self._stopped.clear()
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(POLL_SECONDS)
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        """Cut every relayed connection and refuse new ones until ``start``."""
        self._stopped.set()
        if self._acceptor is not None:
            self._acceptor.join(5)  # it closes the listener: connects are refused from now on
        for pump in self._pumps:
            pump.join(5)  # each closes its two sockets
        self._pumps.clear()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            while not self._stopped.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                pump = threading.Thread(target=self._pump, args=(client,), daemon=True)
                self._pumps.append(pump)
                pump.start()

    def _pump(self, client: socket.socket) -> None:
        """Copy bytes both ways until either side closes or the relay stops."""
        with client, socket.create_connection(self.target, timeout=5) as server:
            peers = {client: server, server: client}
            while not self._stopped.is_set():
                readable, _, _ = select.select(list(peers), [], [], POLL_SECONDS)
                try:
                    for sock in readable:
                        data = sock.recv(65536)
                        if not data:
                            return
                        peers[sock].sendall(data)
                except OSError:
                    return
