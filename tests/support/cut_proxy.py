"""A TCP proxy that can cut the line to a real service and mend it (a network partition between a worker and its
Manager): while cut, open connections are closed and new ones are closed as they come."""

from __future__ import annotations

import socket
import threading

from tests.support.loopback_proxy import LoopbackProxy, close_socket, recv


class CutProxy(LoopbackProxy):
    def __init__(self, upstream_port: int) -> None:
        self.is_cut = False
        super().__init__(upstream_port)

    def close(self) -> None:
        self.cut()
        super().close()

    def cut(self) -> None:
        with self._lock:
            self.is_cut = True
            for s in self._open:
                close_socket(s)
            self._open.clear()

    def mend(self) -> None:
        with self._lock:
            self.is_cut = False

    def _connected(self, client: socket.socket) -> None:
        with self._lock:
            if self.is_cut:
                close_socket(client)
                return
            upstream = self._connect_upstream(client)
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def _pipe(source: socket.socket, dest: socket.socket) -> None:
    while data := recv(source):
        try:
            dest.sendall(data)
        except OSError:
            break
    close_socket(source)
    close_socket(dest)
