"""The client's event stream against scripted Servers: a Server that announces its keep-alive period and then
falls silent (it hangs: the connection stays open) is left after a few periods for the next Server; one that keeps
its word, or announces nothing (a Server from before the announcement), is waited for as long as it takes."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from services.protocol.server_client import ServerClient

EVENT = {"id": 7, "type": "job-created", "time": "2026-01-01T00:00:00Z", "data": {"name": "late"}}


@dataclass
class Script:
    announce: str | None  # X-Keepalive-Seconds
    keepalive_every: float | None  # seconds between the comments it sends; None: silent
    event_after: float | None  # seconds before its one event; None: never
    opened: list[float] = field(default_factory=list)


def serve(script: Script, stop: threading.Event) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.endswith("/health"):
                body = b'{"status": "ok", "version": "test"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            script.opened.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            if script.announce is not None:
                self.send_header("X-Keepalive-Seconds", script.announce)
            self.end_headers()
            self.wfile.write(b"retry: 1000\n\n")
            start = last = time.monotonic()
            sent_event = False
            while not stop.wait(0.05):
                now = time.monotonic()
                if script.keepalive_every is not None and now - last >= script.keepalive_every:
                    self.wfile.write(b": keep-alive\n\n")
                    last = now
                if script.event_after is not None and not sent_event and now - start >= script.event_after:
                    self.wfile.write(f"id: 7\ndata: {json.dumps(EVENT)}\n\n".encode())
                    sent_event = True

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def farm() -> Iterator[tuple[list[str], list[Script]]]:
    """Two scripted Servers; a test sets their scripts."""
    stop = threading.Event()
    scripts = [Script(None, None, None), Script(None, None, None)]
    servers = [serve(s, stop) for s in scripts]
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in servers], scripts
    stop.set()
    for s in servers:
        s.shutdown()
        s.server_close()


def set_script(scripts: list[Script], i: int, **what: object) -> None:
    for key, value in what.items():
        setattr(scripts[i], key, value)


async def first_event(client: ServerClient) -> dict[str, object]:
    async for event in client.events(0):
        return {"id": event.id, "name": event.data["name"]}
    raise AssertionError("the stream ended without an event")


async def test_a_stream_gone_silent_past_its_keepalives_moves_to_the_next_server(
    farm: tuple[list[str], list[Script]],
) -> None:
    """From an audit: the desktop app waited its 60 s read timeout on a Server stopped with SIGSTOP."""
    urls, scripts = farm
    set_script(scripts, 0, announce="1", keepalive_every=None)  # says it speaks every second, then hangs
    set_script(scripts, 1, announce="1", keepalive_every=0.5, event_after=0.2)
    async with ServerClient(",".join(urls), "tbl_x") as client:
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout) as caught:
            async with asyncio.timeout(15):
                await first_event(client)
        took = time.monotonic() - start
        assert 2.5 < took < 6, f"{took:.1f} s"
        assert "said nothing for 3 s" in str(caught.value)
        assert client.base_url == urls[1]
        assert await first_event(client) == {"id": 7, "name": "late"}  # the reconnection, at the next Server


async def test_a_stream_that_keeps_its_word_is_not_left(farm: tuple[list[str], list[Script]]) -> None:
    urls, scripts = farm
    set_script(scripts, 0, announce="1", keepalive_every=0.5, event_after=4.5)  # quiet for longer than 3 periods
    async with ServerClient(",".join(urls), "tbl_x") as client:
        async with asyncio.timeout(15):
            assert await first_event(client) == {"id": 7, "name": "late"}
        assert client.base_url == urls[0] and len(scripts[0].opened) == 1


async def test_a_server_that_announces_no_keepalive_is_waited_for_as_before(
    farm: tuple[list[str], list[Script]],
) -> None:
    urls, scripts = farm
    set_script(scripts, 0, announce=None, keepalive_every=None, event_after=4.0)
    async with ServerClient(",".join(urls), "tbl_x") as client:
        async with asyncio.timeout(15):
            assert await first_event(client) == {"id": 7, "name": "late"}
        assert client.base_url == urls[0]


@pytest.mark.parametrize("announced", ["0", "soon", "inf"])
async def test_a_period_that_is_no_period_is_as_none(farm: tuple[list[str], list[Script]], announced: str) -> None:
    urls, scripts = farm
    set_script(scripts, 0, announce=announced, keepalive_every=None, event_after=3.5)
    async with ServerClient(",".join(urls), "tbl_x") as client:
        async with asyncio.timeout(15):
            assert await first_event(client) == {"id": 7, "name": "late"}


async def test_time_spent_on_an_event_is_not_silence(farm: tuple[list[str], list[Script]]) -> None:
    """The caller may take long over what it was given (the app loads what an event asks for): only the wait for
    the next line counts."""
    urls, scripts = farm
    set_script(scripts, 0, announce="1", keepalive_every=None, event_after=0.2)  # then silent
    async with ServerClient(",".join(urls), "tbl_x") as client:
        resumed = 0.0
        with pytest.raises(httpx.ReadTimeout):
            async with asyncio.timeout(15):
                async for event in client.events(0):
                    assert event.id == 7
                    await asyncio.sleep(2.5)
                    resumed = time.monotonic()
        assert time.monotonic() - resumed > 2.5
