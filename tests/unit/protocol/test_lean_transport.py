"""The lean HTTP transport against a scripted HTTP server on 127.0.0.1: answers, keep-alive, failures."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from services.protocol.lean_transport import LeanTransport, transport_for

# One scripted answer: given the raw request, write bytes (or nothing) and say whether to keep the connection.
Script = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class ScriptedServer:
    script: Script
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + (await reader.readexactly(length) if length else b"")
                self.requests.append(request)
                if not await self.script(request, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


Serve = Callable[[Script], Awaitable[ScriptedServer]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> ScriptedServer:
        scripted = ScriptedServer(script)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        scripted.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return scripted

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def answer(status: int = 200, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def echo(request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(answer(200, request.split(b"\r\n\r\n", 1)[1], ("Content-Type: application/octet-stream",)))
    return True


def client(port: int, timeout: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=LeanTransport(), timeout=timeout)


async def test_requests_and_answers_share_one_kept_alive_connection(serve: Serve) -> None:
    server = await serve(echo)
    async with client(server.port) as http:
        first = await http.post("/a/b?x=1", content=b'{"n": 1}', headers={"Content-Type": "application/json"})
        second = await http.get("/c", auth=("worker", "secret"))
    assert (first.status_code, first.content) == (200, b'{"n": 1}')
    assert second.status_code == 200 and second.content == b""
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /a/b?x=1 HTTP/1.1\r\n")
    assert b"content-length: 8" in server.requests[0].lower()
    assert b"authorization: basic " in server.requests[1].lower()


async def test_chunked_and_gzipped_answers_are_decoded(serve: Serve) -> None:
    packed = gzip.compress(b"hello farm")

    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n")
        for part in (packed[:5], packed[5:]):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    server = await serve(chunked)
    async with client(server.port) as http:
        resp = await http.get("/")
    assert resp.text == "hello farm"


async def test_a_connection_the_server_closes_is_not_used_again(serve: Serve) -> None:
    async def close_after(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(204, headers=("Connection: close",)))
        return False

    server = await serve(close_after)
    async with client(server.port) as http:
        for _ in range(3):
            assert (await http.get("/")).status_code == 204
    assert server.connections == 3


async def test_an_idle_connection_closed_by_the_server_is_replaced(serve: Serve) -> None:
    async def answer_then_hang_up(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(200, b"ok"))
        return False  # closes after answering, without saying so: like uvicorn's keep-alive timeout

    server = await serve(answer_then_hang_up)
    async with client(server.port) as http:
        assert (await http.get("/")).content == b"ok"
        await asyncio.sleep(0.05)  # the FIN arrives
        assert (await http.get("/")).content == b"ok"
    assert server.connections == 2


async def test_no_answer_within_the_read_timeout(serve: Serve) -> None:
    async def silent(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(1)
        return True

    server = await serve(silent)
    async with client(server.port, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/")


async def test_a_server_hanging_up_without_an_answer(serve: Serve) -> None:
    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    server = await serve(hang_up)
    async with client(server.port) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="without answering"):
            await http.get("/")


async def test_a_malformed_answer(serve: Serve) -> None:
    async def garbage(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        return True

    server = await serve(garbage)
    async with client(server.port) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
            await http.get("/")


async def test_nobody_listening() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with client(port) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_concurrent_requests_get_their_own_connections(serve: Serve) -> None:
    async def slow_echo(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        return await echo(request, writer)

    server = await serve(slow_echo)
    async with client(server.port) as http:
        answers = await asyncio.gather(*(http.post("/", content=str(i).encode()) for i in range(4)))
        assert [a.content for a in answers] == [b"0", b"1", b"2", b"3"]
        await http.post("/", content=b"again")
    assert server.connections == 4  # the fifth request reused one


async def test_a_cancelled_request_does_not_leave_its_connection_for_the_next(
    serve: Serve,
) -> None:
    async def first_slow(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if b"slow" in request:
            await asyncio.sleep(0.3)
        return await echo(request, writer)

    server = await serve(first_slow)
    async with client(server.port) as http:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await http.post("/", content=b"slow")
        assert (await http.post("/", content=b"fast")).content == b"fast"  # not the late answer to "slow"
    assert server.connections == 2


def test_proxied_hosts_use_httpx_own_transport_and_https_the_lean_one_over_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy",
                 "NO_PROXY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert isinstance(transport_for("http://manager:8471"), LeanTransport)
    assert isinstance(transport_for("https://manager:8471"), LeanTransport)  # verified TLS (tests/e2e/test_tls.py)
    monkeypatch.setenv("http_proxy", "http://proxy:3128")
    monkeypatch.setenv("https_proxy", "http://proxy:3128")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    assert isinstance(transport_for("http://manager:8471"), httpx.AsyncHTTPTransport)
    assert isinstance(transport_for("https://manager:8471"), httpx.AsyncHTTPTransport)
    assert isinstance(transport_for("http://127.0.0.1:8471"), LeanTransport)


async def test_a_big_upload_goes_out_whole(serve: Serve) -> None:
    async def count(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(200, str(len(request.split(b"\r\n\r\n", 1)[1])).encode()))
        return True

    server = await serve(count)
    async with client(server.port) as http:
        resp = await http.post("/output", content=b"x" * (16 * 2**20))
    assert resp.text == str(16 * 2**20)


async def test_a_body_nobody_reads_hits_the_write_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        timeout = httpx.Timeout(5.0, write=0.3)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", transport=LeanTransport(), timeout=timeout
        ) as http:
            with pytest.raises(httpx.WriteTimeout):
                await http.post("/output", content=b"x" * (64 * 2**20))
    finally:
        for w in accepted:
            w.close()
        server.close()
        await server.wait_closed()


async def test_an_endless_answer_is_refused_past_the_limit(serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.protocol import lean_transport

    monkeypatch.setattr(lean_transport, "MAX_RESPONSE_BYTES", 1_000_000)

    async def endless(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"x" * 65536
        for _ in range(100):  # 6.5 MB, far past the limit; a real attacker would not stop
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            try:
                await writer.drain()
            except ConnectionError:
                return False
        return False

    server = await serve(endless)
    async with client(server.port) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="larger than 1000000"):
            await http.get("/")
