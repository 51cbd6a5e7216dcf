"""Test servers for clients given several Server addresses: scripted HTTP servers in threads, and listeners that
take connections in the kernel's backlog and never answer (a Server stopped with SIGSTOP looks so)."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scripted(handler: type[http.server.BaseHTTPRequestHandler], count: int = 2) -> Iterator[list[str]]:
    """`count` threaded HTTP servers on ephemeral loopback ports answering with `handler`; their URLs."""
    started = []
    for _ in range(count):
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        started.append(httpd)
    try:
        yield [f"http://127.0.0.1:{h.server_address[1]}" for h in started]
    finally:
        for h in started:
            h.shutdown()
            h.server_close()


def taken(listener: socket.socket) -> list[bytes]:
    """What each connection made to a silent listener so far sent (accepting them now; b"" for one that sent
    nothing within half a second)."""
    listener.setblocking(False)
    said: list[bytes] = []
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return said
        with conn:
            conn.settimeout(0.5)
            try:
                said.append(conn.recv(65536))
            except TimeoutError:
                said.append(b"")
