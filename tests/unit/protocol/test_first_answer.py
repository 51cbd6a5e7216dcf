"""The health question a client with several Servers asks a Server before its first request there: a Server slow
at the request itself is not left, a load balancer with no Server behind it is passed over, and when no Server
answers in time the request goes, once, to the first that took the connection."""

from __future__ import annotations

import http.server
import json
import socket
import time
from collections.abc import Iterator
from typing import ClassVar

import httpx
import pytest

from services.protocol.server_client import ServerClient
from tests.support.silent_servers import scripted, taken


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Health at once, or the status given; each POST after `slow` seconds."""

    health: ClassVar[dict[int, int]] = {}  # port -> health status
    slow: ClassVar[float] = 0.0
    posts: ClassVar[list[int]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _port(self) -> int:
        return int(self.server.server_address[1])  # type: ignore[index]  # an AF_INET server's (host, port)

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(self.health.get(self._port(), 200), {"status": "ok"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.posts.append(self._port())
        time.sleep(self.slow)
        self._answer(200, {"ok": True})


@pytest.fixture
def servers() -> Iterator[list[str]]:
    _Scripted.posts = []
    _Scripted.health = {}
    _Scripted.slow = 0.0
    with scripted(_Scripted) as urls:
        yield urls


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def test_a_server_slower_at_the_request_than_the_health_bound_is_waited_for(servers: list[str]) -> None:
    """A big submission or listing takes longer than the health question may: it is not left half way, nor sent
    again elsewhere."""
    _Scripted.slow = 1.5
    async with ServerClient(",".join(servers), "tbl_x", first_answer=0.5, deadline=10) as client:
        assert await client.call("POST", "/jobs/1/status", json={"action": "pause"}) == {"ok": True}
        assert _Scripted.posts == [port(servers[0])]
        assert client.base_url == servers[0]


async def test_a_load_balancer_without_a_server_behind_it_is_passed_over(servers: list[str]) -> None:
    _Scripted.health = {port(servers[0]): 503}
    async with ServerClient(",".join(servers), "tbl_x") as client:
        assert await client.call("POST", "/jobs/1/status", json={"action": "pause"}) == {"ok": True}
        assert _Scripted.posts == [port(servers[1])]


def _said(listener: socket.socket) -> list[str]:
    return [said.split(b"\r\n")[0].decode() for said in taken(listener)]


async def test_with_no_server_answering_the_request_goes_once_to_the_first_that_took_the_connection() -> None:
    with socket.socket() as first, socket.socket() as second, socket.socket() as closed:
        for s in (first, second, closed):
            s.bind(("127.0.0.1", 0))
        first.listen(8)
        second.listen(8)
        urls = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in (closed, first, second)]
        closed.close()  # refuses: nobody there
        async with ServerClient(",".join(urls), "tbl_x", first_answer=0.3, deadline=1) as client:
            with pytest.raises(httpx.ReadTimeout):  # the deadline's AnswerTimeout: it may only have been slow
                await client.call("POST", "/jobs/1/status", json={"action": "pause"})
        assert _said(first) == ["GET /api/v1/health HTTP/1.1", "POST /api/v1/jobs/1/status HTTP/1.1"]
        assert _said(second) == ["GET /api/v1/health HTTP/1.1"]
