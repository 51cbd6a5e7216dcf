"""The part every test proxy shares: a listener on 127.0.0.1 in front of a real service on `upstream_port`, the
connections it opened, and closing them all. A proxy says what it does with each connection in `_connected`."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self


class LoopbackProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        close_socket(self._listener)
        with self._lock:
            for s in self._open:
                close_socket(s)
            self._open.clear()

    def _connect_upstream(self, client: socket.socket) -> socket.socket:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self._open += [client, upstream]
        return upstream

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._connected(client)

    def _connected(self, client: socket.socket) -> None:
        raise NotImplementedError


def recv(s: socket.socket) -> bytes:
    """The next bytes, or none once the socket is closed (by either side)."""
    try:
        return s.recv(65536)
    except OSError:
        return b""


def close_socket(s: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already by the other direction
        s.shutdown(socket.SHUT_RDWR)
    s.close()
