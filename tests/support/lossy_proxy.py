"""A TCP proxy in front of a real Server that loses answers: the first `lose` requests starting with `prefix` reach
the Server whole and are done there, and the client's connection is closed when the answer starts to come back,
before any of it is passed on (a Server killed after its commit, a dropped connection, a client's timeout).

`how`: "drop" (as above), "cut" (the answer's head and a few bytes of its body pass, then the connection closes),
"502" (a load balancer's Bad Gateway instead of the answer). `then_refuse`: once the last answer is lost, the proxy
takes no more connections (the Server is gone)."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.loopback_proxy import LoopbackProxy, close_socket, recv


class LossyProxy(LoopbackProxy):
    def __init__(
        self,
        upstream_port: int,
        prefix: bytes = b"POST /api/v1/jobs",
        lose: int = 1,
        how: str = "drop",
        then_refuse: bool = False,
    ) -> None:
        self.prefix = prefix
        self.to_lose = lose
        self.how = how
        self.then_refuse = then_refuse
        self.lost = 0
        super().__init__(upstream_port)

    def _connected(self, client: socket.socket) -> None:
        upstream = self._connect_upstream(client)
        losing = threading.Event()  # the request on its way is one whose answer is lost
        threading.Thread(target=self._requests, args=(client, upstream, losing), daemon=True).start()
        threading.Thread(target=self._answers, args=(upstream, client, losing), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, losing: threading.Event) -> None:
        while data := recv(client):
            if data.startswith(self.prefix):  # a request's first bytes come in one piece on loopback
                with self._lock:
                    if self.lost < self.to_lose:
                        self.lost += 1
                        losing.set()
            try:
                upstream.sendall(data)
            except OSError:
                break
        close_socket(upstream)

    def _answers(self, upstream: socket.socket, client: socket.socket, losing: threading.Event) -> None:
        head = b""
        while data := recv(upstream):
            if losing.is_set():  # the Server has answered, so it has done the request
                if self.how == "cut":
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    data = head[: head.index(b"\r\n\r\n") + 4 + 10]
                elif self.how == "502":
                    data = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Gateway"
                else:
                    data = b""
                with contextlib.suppress(OSError):
                    client.sendall(data)
                if self.then_refuse and self.lost >= self.to_lose:
                    close_socket(self._listener)  # shut down first: a close alone leaves accept() taking them
                break
            try:
                client.sendall(data)
            except OSError:
                break
        close_socket(client)
        close_socket(upstream)
