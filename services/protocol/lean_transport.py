"""A lean HTTP/1.1 keep-alive transport for httpx, for the calls between Tablao's own services.

Workers ask their Manager for a task, and Managers claim from the Server, many times a second; on those
paths httpx's default transport (httpcore over anyio, h11 in pure Python) costs about 0.7 ms of client CPU
per request here (0.29 ms with this one), more than three times the whole round trip through uvicorn measured
with a bare socket (0.2 ms). This transport keeps httpx's client API (auth, timeouts, errors, the Response
type) and replaces only the connection layer: an asyncio protocol per connection and httptools' C parser
(llhttp, already here because uvicorn uses it).

It speaks HTTP/1.1 to one origin, in plain or over TLS (with a verifying client context); `transport_for`
falls back to httpx's own transport for hosts an environment proxy applies to.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import urllib.request
from collections import deque
from typing import Any, cast

import httptools
import httpx

from services.protocol.tls import client_context

# uvicorn closes a connection idle for 5 s; dropping ours sooner avoids sending on one it is closing
IDLE_EXPIRY_SECONDS = 4.0
# an answer larger than this is refused as it arrives: a broken or hostile peer cannot grow us without bound
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class _Connection(asyncio.Protocol):
    """One TCP connection: a request goes out, the parser collects its response, then it is free again."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = time.monotonic()
        self._waiter: asyncio.Future[None] | None = None
        self._writable = asyncio.Event()  # cleared while the socket's send buffer is full (a big upload)
        self._writable.set()
        self._received_any = False
        self.status = 0
        self.keep_alive = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_size = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # nobody asked: a server talking out of turn cannot be trusted with the next request
            return
        self._received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))
            self.close()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._writable.set()
        if self._received_any:
            self._fail(httpx.RemoteProtocolError("the server closed the connection in the middle of an answer"))
        else:
            self._fail(httpx.RemoteProtocolError("the server closed the connection without answering"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # llhttp forgets both once the message is complete: read them while they are known
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > MAX_RESPONSE_BYTES:
            self._fail(httpx.RemoteProtocolError(f"the answer is larger than {MAX_RESPONSE_BYTES} bytes"))
            self.close()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        self._writable.set()  # an answer before the whole body went out (413): stop sending
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # use

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    async def exchange(
        self, head: bytes, body: bytes, write_timeout: float | None, read_timeout: float | None
    ) -> httpx.Response:
        assert self.transport is not None
        self.headers, self.body, self._received_any, self.status, self.keep_alive = [], [], False, 0, False
        self.body_size = 0
        self._waiter = asyncio.get_running_loop().create_future()
        if len(body) < 65536:
            self.transport.write(head + body)  # one segment for the usual small request
        else:
            self.transport.write(head)
            self.transport.write(body)  # no copy of a big upload into the head
        try:
            if not self._writable.is_set():
                # the write timeout covers getting a big body out, the read timeout waiting for the answer
                try:
                    async with asyncio.timeout(write_timeout):
                        await self._writable.wait()
                except TimeoutError:
                    raise httpx.WriteTimeout("the request body was not taken within the write timeout") from None
            try:
                async with asyncio.timeout(read_timeout):
                    await self._waiter
            except TimeoutError:
                raise httpx.ReadTimeout("no answer within the read timeout") from None
        finally:
            self._waiter = None
        if not self.keep_alive:
            self.close()
        self.idle_since = time.monotonic()
        return httpx.Response(
            self.status,
            headers=self.headers,
            stream=httpx.ByteStream(b"".join(self.body)),
            extensions={"http_version": b"HTTP/1.1"},
        )


class LeanTransport(httpx.AsyncBaseTransport):
    """Plain-HTTP keep-alive connections to one host; as many as there are requests at the same time."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._idle: deque[_Connection] = deque()
        self._open: set[_Connection] = set()
        self._ssl = ssl_context  # https when given

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        wanted = "https" if self._ssl is not None else "http"
        if request.url.scheme != wanted:
            raise httpx.UnsupportedProtocol(f"this lean transport speaks {wanted}, not {request.url.scheme!r}")
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = await request.aread()
        head = _request_head(request, body)
        conn = await self._acquire(request.url, timeouts.get("connect"))
        try:
            response = await conn.exchange(head, body, timeouts.get("write"), timeouts.get("read"))
        except BaseException:
            # an unanswered or cancelled exchange leaves the connection in an unknown state
            conn.close()
            self._open.discard(conn)
            raise
        if conn.closed:
            self._open.discard(conn)
        else:
            self._idle.append(conn)
        return response

    async def _acquire(self, url: httpx.URL, connect_timeout: float | None) -> _Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used one is the least likely to be closing
            if not conn.closed and now - conn.idle_since < IDLE_EXPIRY_SECONDS:
                return conn
            conn.close()
            self._open.discard(conn)
        host = url.host
        port = url.port or (443 if self._ssl is not None else 80)
        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = {"ssl": self._ssl, "server_hostname": host} if self._ssl is not None else {}
        try:
            async with asyncio.timeout(connect_timeout):
                _transport, conn = await loop.create_connection(_Connection, host, port, **tls)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {connect_timeout} s") from None
        except ssl.SSLError as exc:  # a certificate we cannot verify: never fall back to plain
            raise httpx.ConnectError(f"TLS with {host}:{port} failed: {exc.reason or exc}") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        self._open.add(conn)
        return conn

    async def aclose(self) -> None:
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()


def _request_head(request: httpx.Request, body: bytes) -> bytes:
    lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.url.raw_path)]
    for name, value in request.headers.raw:
        if name.lower() in (b"transfer-encoding", b"content-length"):
            continue  # the body is read whole: it always goes with its length
        lines.append(name + b": " + value)
    if body or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n"


def transport_for(base_url: str, *, ca_bundle: str | None = None, **kwargs: Any) -> httpx.AsyncBaseTransport:
    """The lean transport for a URL reached directly (https verified against `ca_bundle`, see tls.py);
    httpx's own through a proxy. kwargs go to httpx.AsyncHTTPTransport when that is the one chosen.
    """
    url = httpx.URL(base_url)
    https = url.scheme == "https"
    proxies = urllib.request.getproxies()
    proxy = proxies.get("https" if https else "http") or proxies.get("all")
    proxied = bool(proxy) and not urllib.request.proxy_bypass(url.host)
    if proxied:
        return httpx.AsyncHTTPTransport(verify=client_context(ca_bundle), **kwargs)
    return LeanTransport(client_context(ca_bundle) if https else None)
