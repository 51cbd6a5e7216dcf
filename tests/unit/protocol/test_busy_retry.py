"""A Server's own 503 "storage busy" (its database gave the request up, nothing applied: a PostgreSQL deadlock's
loser) is sent again by the users' client, twice at most, to the same Server; any other 503 is not, and moves the
next call on to the next Server."""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from typing import ClassVar

import pytest

from services.protocol.server_answers import ApiError
from services.protocol.server_client import ServerClient
from tests.support.silent_servers import scripted

Answer = tuple[int, dict[str, str], object]
BUSY: Answer = (503, {"Retry-After": "0"}, {"detail": "storage busy: the database took no write in time"})
PROXY: Answer = (503, {"Retry-After": "0"}, {"detail": "no healthy upstream"})
DONE: Answer = (200, {}, {"ok": True})


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next of `script` (the last one again when it runs out)."""

    script: ClassVar[list[Answer]] = []
    seen: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(f"{self.headers['Host'].rsplit(':', 1)[1]} {self.path}")
        status, headers, body = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def servers() -> Iterator[list[str]]:
    _Scripted.seen = []
    with scripted(_Scripted) as urls:
        yield urls


def _ports(seen: list[str]) -> list[str]:
    return [s.split()[0] for s in seen]


async def test_a_busy_answer_is_asked_again_at_the_same_server_until_it_goes_through(
    servers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Scripted, "script", [BUSY, BUSY, DONE])
    async with ServerClient(",".join(servers), "tbl_x") as client:
        assert await client.call("POST", "/jobs/1/status", json={"status": "paused"}) == {"ok": True}
        first = servers[0].rsplit(":", 1)[1]
        assert _ports(_Scripted.seen) == [first] * 3
        assert client.base_url == servers[0]


async def test_a_server_busy_three_times_is_an_error_and_still_the_one_asked_next(
    servers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Scripted, "script", [BUSY, BUSY, BUSY, DONE])
    async with ServerClient(",".join(servers), "tbl_x") as client:
        with pytest.raises(ApiError) as caught:
            await client.call("POST", "/jobs/1/status", json={"status": "paused"})
        assert caught.value.status_code == 503 and "storage busy" in caught.value.detail
        assert len(_Scripted.seen) == 3
        assert client.base_url == servers[0]  # it works: its database was busy


async def test_a_proxys_503_is_not_sent_again_and_the_next_call_goes_to_the_next_server(
    servers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Scripted, "script", [PROXY, DONE])
    async with ServerClient(",".join(servers), "tbl_x") as client:
        with pytest.raises(ApiError):
            await client.call("POST", "/jobs/1/status", json={"status": "paused"})
        assert len(_Scripted.seen) == 1
        assert client.base_url == servers[1]


@pytest.mark.parametrize(("given", "wait"), [("1", 1.0), ("0", 0.0), ("-3", 0.0), ("600", 5.0), ("nan", 5.0),
                                             ("inf", 5.0), ("soon", 5.0)])  # fmt: skip
def test_a_busy_answers_wait_is_kept_within_bounds(given: str, wait: float) -> None:
    import httpx

    from services.protocol.server_answers import busy_wait

    answer = httpx.Response(503, headers={"Retry-After": given}, json={"detail": "storage busy: a moment"})
    assert busy_wait(answer) == wait
