"""A TCP proxy that can cut the line to a real service and mend it (a network partition between a worker and its
Manager): while cut, open connections are closed and new ones are closed as they come."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

from tests.support.lossy_proxy import close_socket


class CutProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.is_cut = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CutProxy:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        close_socket(self._listener)
        self.cut()

    def cut(self) -> None:
        with self._lock:
            self.is_cut = True
            for s in self._open:
                close_socket(s)
            self._open.clear()

    def mend(self) -> None:
        with self._lock:
            self.is_cut = False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self.is_cut:
                    close_socket(client)
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                self._open += [client, upstream]
            threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def _pipe(source: socket.socket, dest: socket.socket) -> None:
    while True:
        try:
            data = source.recv(65536)
        except OSError:
            break
        if not data:
            break
        try:
            dest.sendall(data)
        except OSError:
            break
    close_socket(source)
    close_socket(dest)
