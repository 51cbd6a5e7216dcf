"""The HTTP plumbing of ServerClient (server_client.py): a farm's Server addresses and the move to the next one,
each request's deadline and answer cap, answers checked against their models, and the event stream.

With several addresses, a Server not heard from since the client came to it is first asked for its health, which
it answers in milliseconds, within `first_answer` seconds: one that takes the connection and says nothing (a
Server stopped, swapping, a paused VM) is passed over for the next before the request is sent, so it costs those
seconds, not the request's whole deadline, and a request that is not safe to repeat is still sent once. A Server
that answered is then given the whole deadline: a big submission or listing is never abandoned half way. When no
Server answers in time, the first that took a connection gets the request (it may only be slow), as before.
When no connection can be made to the Server in use, a call goes to the next address at once (nothing was
sent); when one fails after that, or answers 502/503/504 from a load balancer, the call fails as usual and the
next call, or the event stream's reconnection, goes to the next address. A Server's own 503 "storage busy" (its
database gave the request up: nothing was applied) is asked again after its Retry-After, twice at most, and moves
nothing on: a wrangler's pause that lost a deadlock to a Manager's claim goes through instead of failing. The
event stream is taken for dead after `STREAM_SILENCE` keep-alive periods of silence (the Server announces its
period), and reconnects to the next Server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from services.protocol import API_PREFIX
from services.protocol.common import KEEPALIVE_HEADER, NEXT_CURSOR_HEADER
from services.protocol.farm import Event
from services.protocol.server_answers import (
    AnswerTimeout,
    BadAnswer,
    busy_wait,
    json_of,
    kind,
    no_longer_than,
    raise_for_error,
    shown_size,
    valid,
)
from services.protocol.server_memory import ServerMemory
from services.protocol.tls import client_context

M = TypeVar("M", bound=BaseModel)

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the connection was never made
_UNAVAILABLE = (502, 503, 504)  # a load balancer with no Server behind it, or a Server going down
# a Server whose database gave a request up (a deadlock's loser) applied nothing of it: sent again, twice at most
BUSY_TRIES = 3
_BODY_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}
# seconds a Server not heard from yet has to answer its health (with other Servers to go to): it answers in
# milliseconds, over a WAN and a TLS handshake well under a second
FIRST_ANSWER = 3.0
STREAM_SILENCE = 3  # keep-alive periods of silence that end the event stream: the Server hangs
STREAM_READ = 60.0  # the event stream's wait for a line from a Server that announces no keep-alive (before it did)


class ServerTransport:
    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_bundle: str | None = None,
        deadline: float | None = None,
        max_answer: int | None = None,
        first_answer: float | None = FIRST_ANSWER,
        memory: ServerMemory | None = None,
    ) -> None:
        """`deadline` (seconds) bounds each request and its whole answer, `max_answer` (bytes) an answer's size; both
        leave the event stream alone (it is meant to stay open). The command-line client sets them. `first_answer`
        (seconds; None: not asked) is what a Server not heard from yet has to answer its health when there are
        others to go to. `memory`: where the address that answered last is recalled from (the first call starts
        there) and kept at `aclose()`."""
        self.deadline = deadline
        self.max_answer = max_answer
        self.first_answer = first_answer
        self.memory = memory
        self.token = token  # also for the Managers a task's log is read from (task_log_source.py)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.urls = [u.strip().rstrip("/") for u in base_url.split(",") if u.strip()] or [base_url.rstrip("/")]
        self._current = 0
        self._heard: set[int] = set()  # Servers that answered since the client last moved away from them
        self.answered: int | None = None  # the place of the Server that answered last
        if memory is not None and len(self.urls) > 1:
            self._current = memory.recall(self.urls) or 0
        # https is verified against ca_bundle, else TABLAO_CA_BUNDLE, else the system's CAs (tls.py)
        self._clients = [
            httpx.AsyncClient(
                base_url=url + API_PREFIX,
                headers=headers,
                # the deadline, when set, is what a silent Server meets (its message names it): an answer waited for
                # 30 s was "ReadTimeout" under a 60 s deadline
                timeout=httpx.Timeout(timeout, read=max(timeout, deadline + 5)) if deadline is not None else timeout,
                transport=transport,
                verify=client_context(ca_bundle) if url.startswith("https:") else True,
            )
            for url in self.urls
        ]

    @property
    def base_url(self) -> str:
        """The Server address in use (the next one after it stops answering)."""
        return self.urls[self._current]

    @property
    def _http(self) -> httpx.AsyncClient:
        return self._clients[self._current]

    def _move_on(self, failed: int) -> None:
        self._heard.discard(failed)  # asked for its health again before the next request, if it comes to it
        if self._current == failed and len(self.urls) > 1:
            self._current = (failed + 1) % len(self.urls)

    def _heard_from(self, index: int) -> None:
        self._heard.add(index)
        self.answered = index

    async def _pick(self) -> None:
        """Make the Server in use one that answers, as the module says: each not heard from yet is asked for its
        health; one refusing connections, saying it is unavailable, or silent past `first_answer` is passed over.
        When none answers, the first that may only be slow (it took a connection, or was slow to) stays in use."""
        bound = self.first_answer
        if bound is None or len(self.urls) < 2:
            return
        slow: int | None = None
        for _other in range(len(self.urls)):
            index = self._current
            if index in self._heard:
                return
            try:
                async with asyncio.timeout(bound):  # a Server dripping bytes resets httpx's read timeout, not this
                    response = await self._clients[index].get("/health", timeout=bound)
            except httpx.ConnectError:
                pass  # nobody there: a request would move past it at once as well
            except (httpx.TransportError, TimeoutError):
                slow = index if slow is None else slow
            else:
                if response.status_code not in _UNAVAILABLE:
                    self._heard_from(index)
                    return
                slow = index if slow is None else slow  # a load balancer with no Server behind it, this moment
            self._move_on(index)
        if slow is not None:
            self._current = slow

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()
        if self.memory is not None and self.answered is not None and len(self.urls) > 1:
            self.memory.keep(self.urls, self.answered)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return json_of(await self._response(method, path, **kwargs))

    async def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        response = await self._response(method, path, **kwargs)
        return valid(model, json_of(response), response.status_code)

    async def _models(self, model: type[M], method: str, path: str, **kwargs: Any) -> list[M]:
        return _items(model, await self._response(method, path, **kwargs))

    async def _listed_page(self, model: type[M], path: str, **kwargs: Any) -> tuple[list[M], str | None]:
        """A GET of a list answered as a JSON list, and the cursor of its next page (`X-Next-Cursor`): None on the
        last page, and from a Server from before paging, which answers the whole list."""
        response = await self._response("GET", path, **kwargs)
        return _items(model, response), response.headers.get(NEXT_CURSOR_HEADER) or None

    async def _page(self, model: type[M], path: str, at_most: dict[str, int], **kwargs: Any) -> M:
        """A GET of lists no longer than asked for (`at_most`: list key → limit): longer ones are refused before
        validation, whose cost grows with every item that does not fit."""
        response = await self._response("GET", path, **kwargs)
        answer = json_of(response)
        for key, limit in at_most.items():
            no_longer_than(answer, key, limit, response.status_code)
        return valid(model, answer, response.status_code)

    async def _response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _busy in range(BUSY_TRIES - 1):
            response = await self._answer(method, path, **kwargs)
            wait = busy_wait(response)
            if wait is None:
                break
            await asyncio.sleep(wait)
        else:
            response = await self._answer(method, path, **kwargs)
        raise_for_error(response)
        return response

    async def _answer(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request's answer, from the next Server when this one is not reached; a 502/503/504 that is not
        the Server's own "busy" moves the next call on too."""
        await self._pick()
        for _other in range(len(self.urls)):
            index = self._current
            try:
                response = await self._send(index, method, path, **kwargs)
                break
            except _NOT_SENT:
                # no connection was made, so nothing was sent: the next address is asked at once, any request
                self._move_on(index)
                if self._current == index or _other == len(self.urls) - 1:
                    raise
            except httpx.TransportError:
                self._move_on(index)  # it may have been sent: the next call goes elsewhere, this one fails
                raise
        if response.status_code in _UNAVAILABLE and busy_wait(response) is None:
            self._move_on(index)
        else:
            self._heard_from(index)
        return response

    async def _send(self, index: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request and its whole answer, within the deadline and the size cap when they are set."""
        http = self._clients[index]
        if self.deadline is None and self.max_answer is None:
            return await http.request(method, path, **kwargs)
        request = http.build_request(method, path, **kwargs)
        try:
            async with asyncio.timeout(self.deadline):
                response = await http.send(request, stream=True)
                try:
                    body = await self._capped(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise AnswerTimeout(
                f"the Server's answer did not come in whole within {self.deadline:g} s", request=request
            ) from None
        # the body as read (decoded): the new response must not decode it again
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
        return httpx.Response(
            response.status_code, headers=headers, content=body, request=request, extensions=response.extensions
        )

    async def _capped(self, response: httpx.Response) -> bytes:
        cap = self.max_answer
        length = response.headers.get("content-length", "")
        if cap is not None and length.isdigit() and int(length) > cap:
            raise BadAnswer(response.status_code, f"{int(length):,} bytes announced, over the {shown_size(cap)} cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if cap is not None and size > cap:
                raise BadAnswer(response.status_code, f"over {shown_size(cap)}")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _bytes(self, path: str) -> bytes | None:
        """A binary GET; None on 404."""
        await self._pick()
        index = self._current
        try:
            response = await self._send(index, "GET", path)
        except httpx.TransportError:
            self._move_on(index)
            raise
        if response.status_code == 404:
            return None
        raise_for_error(response)
        return response.content

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Any route under /api/v1 (the parsed JSON answer, or None): for clients of routes listed elsewhere,
        e.g. admin_client.py."""
        return await self._call(method, path, **kwargs)

    # ---- events ----
    async def events(
        self, last_event_id: int | None = None, on_open: Callable[[], Awaitable[None]] | None = None
    ) -> AsyncGenerator[Event, None]:
        """Yield events as they come. Ends when the connection drops; resume with the last id seen.

        `on_open` is awaited once the stream is open (its start is then fixed) and before any event is read:
        the place to load snapshots so that no change falls between the snapshot and the stream.
        """
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        await self._pick()
        index = self._current
        try:
            # closed at once however the caller leaves (its task canceled while it handles an event, too), so the
            # streaming response and its connection are released now, not when a garbage collection finds them
            async with contextlib.aclosing(self._stream(self._clients[index], headers, on_open)) as stream:
                async for event in stream:
                    yield event
        except httpx.TransportError:
            self._move_on(index)  # the caller reconnects, to the next Server
            raise

    async def _stream(
        self,
        http: httpx.AsyncClient,
        headers: dict[str, str],
        on_open: Callable[[], Awaitable[None]] | None,
    ) -> AsyncGenerator[Event, None]:
        timeout = httpx.Timeout(10.0, read=STREAM_READ)
        async with http.stream("GET", "/events", headers=headers, timeout=timeout) as response:
            if response.status_code in _UNAVAILABLE:
                self._move_on(self._clients.index(http))
            if not response.is_success:
                await response.aread()
                raise_for_error(response)
            self._heard_from(self._clients.index(http))
            if on_open is not None:
                await on_open()
            data: list[str] = []
            async for line in _lines(response):
                if line.startswith("data:"):
                    data.append(line[5:].lstrip())
                elif not line and data:
                    yield Event.model_validate(json.loads("\n".join(data)))
                    data = []


def _silence(announced: str | None) -> float | None:
    """Seconds without a line that end an event stream whose Server announced its keep-alive period so; None for
    a Server that announced none (it is waited for STREAM_READ a line, as before)."""
    try:
        period = float(announced or "nan")
    except ValueError:
        return None
    if not math.isfinite(period) or period <= 0:
        return None
    return STREAM_SILENCE * min(max(period, 1.0), 300.0)  # a strange period is kept within reason


async def _lines(response: httpx.Response) -> AsyncGenerator[str, None]:
    """The event stream's lines; httpx.ReadTimeout after a silence of STREAM_SILENCE keep-alive periods (a Server
    that hangs keeps the connection open and says nothing). Only the wait for a line counts: not the time the
    caller spends on what it was given."""
    silence = _silence(response.headers.get(KEEPALIVE_HEADER))
    lines = response.aiter_lines()
    if silence is None:
        async for line in lines:
            yield line
        return
    while True:
        try:
            async with asyncio.timeout(silence):
                line = await anext(lines)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise httpx.ReadTimeout(
                f"the event stream said nothing for {silence:g} s (its Server sends a keep-alive every "
                f"{silence / STREAM_SILENCE:g} s): the Server hangs",
                request=response.request,
            ) from None
        yield line


def _items(model: type[M], response: httpx.Response) -> list[M]:
    answer = json_of(response)
    if not isinstance(answer, list):
        raise BadAnswer(response.status_code, f"a list was expected, not {kind(answer)}")
    # one by one: the first that does not fit ends it (pydantic would list every problem of every item)
    return [valid(model, x, response.status_code, f"{i}.") for i, x in enumerate(answer)]
