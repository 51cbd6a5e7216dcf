"""The HTTP protocol both services serve with: uvicorn's httptools protocol, with bounds on what a client sends.

uvicorn's httptools parser takes a request's head whole, however large: one header of 300 MB grew a Server by
600 MB and stalled its event loop for everyone, and needed no credentials. Nor does anything end a request that
stops half-way: a client that sent 7 bytes of a 100-byte body held its connection open for good. Both are
bounded here, below the application, where a request's bytes arrive:

- a request's head (request line and headers) over `HEAD_MAX_BYTES` is answered 431 and the connection closed;
- a request the parser cannot read is answered 400 with the services' `{detail, errors}` body;
- a request begun and not complete (head or body) with no byte for `IDLE_SECONDS` (30; the environment's
  TABLAO_REQUEST_IDLE_SECONDS) is answered 408 and closed, and a connection that sends nothing that long is
  closed. (This bounds silence, not slowness: a byte every half-minute keeps a request going.)

Neither costs a request that arrives whole in one read anything but a flag test; the idle timer is armed only
while a request is partly read.
"""

from __future__ import annotations

import json
import os
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.protocol.cli_args import positive_float

HEAD_MAX_BYTES = 64 * 1024
IDLE_SECONDS = 30.0  # TABLAO_REQUEST_IDLE_SECONDS
IDLE_ENV = "TABLAO_REQUEST_IDLE_SECONDS"


def _answer(status: bytes, detail: str, field: str) -> bytes:
    body = json.dumps({"detail": detail, "errors": [{"field": field, "message": detail}]}).encode()
    head = (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body


HEAD_TOO_LARGE = _answer(
    b"431 Request Header Fields Too Large",
    f"the request line and headers are over the limit of {HEAD_MAX_BYTES} bytes",
    "headers",
)


def _stalled_answer(seconds: float) -> bytes:
    return _answer(b"408 Request Timeout", f"the request stopped: nothing more of it came for {seconds:g} s", "body")


def idle_seconds_from_env() -> float:
    """TABLAO_REQUEST_IDLE_SECONDS, or the default; a bad value raises ValueError naming the variable."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    try:
        return positive_float(raw) if raw else IDLE_SECONDS
    except ValueError as exc:
        raise ValueError(f"{IDLE_ENV}: {exc}") from None


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's protocol (`uvicorn.Config(http=BoundedHttpToolsProtocol)`), bounding a request's head and the
    time a partly sent request may stay silent (`idle_seconds`, set once per process by serving.quick_server)."""

    idle_seconds = IDLE_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # a request's head is being read (or the first one is awaited)
        self._head_bytes = 0
        self._began = False  # a request began during the read being parsed
        self._partial = False  # a request begun and not yet complete
        self._silent = True  # connected, and not one byte received yet
        self._idle: TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # a connection that never sends a byte would otherwise be held for good (uvicorn arms no timer before a
        # first request; its keep-alive timeout covers the time between requests)
        self._idle = self.loop.call_later(self.idle_seconds, self._stalled)

    def data_received(self, data: bytes) -> None:
        counting, self._began, self._silent = self._in_head, False, False
        super().data_received(data)
        if self.transport.is_closing():
            self._disarm()
            return
        # counted per read, except a read in which a request began (it may end the one before): the bound is
        # approximate by at most one read, and a body's last bytes never count towards the next request's head
        if counting and self._in_head and not self._began:
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_MAX_BYTES:
                self._refuse(HEAD_TOO_LARGE)
                return
        if self._partial:
            self._disarm()
            self._idle = self.loop.call_later(self.idle_seconds, self._stalled)
        elif self._idle is not None:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes, self._partial, self._began = True, 0, True, True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._partial = False
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """A request the parser cannot read (a control character in a header, a malformed request line): the
        services' `{detail, errors}` body rather than uvicorn's plain text."""
        self._disarm()
        self.transport.write(_answer(b"400 Bad Request", f"the request could not be read as HTTP: {msg}", "request"))
        self.transport.close()

    def _disarm(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _stalled(self) -> None:
        self._idle = None
        if self.transport.is_closing():
            return
        if self._silent:  # connected and silent since: nothing to answer
            self.transport.close()
            return
        if not self._partial:
            return
        if self.flow.read_paused:  # the application has not read what came: the wait is ours, not the client's
            self._idle = self.loop.call_later(self.idle_seconds, self._stalled)
            return
        self._refuse(_stalled_answer(self.idle_seconds))

    def _refuse(self, answer: bytes) -> None:
        """Answer and close; the application, if a request is running, sees the client gone. The answer is
        written only where it answers the request at fault: while a head arrives, `cycle` is the request before
        (a long poll, say), which may still answer; while a body does, `cycle` is this request's own, unless
        pipelined behind one still running."""
        self._disarm()
        if self._in_head:
            ours = self.cycle is None or self.cycle.response_complete
        else:
            ours = self.cycle is not None and not self.cycle.response_started and not self.pipeline
        if ours:
            self.transport.write(answer)
        self.transport.close()
