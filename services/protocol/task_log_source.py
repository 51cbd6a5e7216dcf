"""Reading a task's full log, wherever it is, for the desktop app (its viewer: app/ui/task_log.py) and
`tablao log`; no Qt here.

The Server says which Manager ran the task and where its users reach it (`GET /tasks/{id}/log-source`). The
log is read there with the user's own token (the Manager checks it with the Server), a part at a time: the
end first, earlier parts on demand, new lines followed live. When that Manager cannot be reached from here,
the Server's copy is read instead (asked for when it has none: the Manager uploads it with its next update
batch); when there is none, the Server's last lines.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from enum import StrEnum

import httpx

from services.protocol import API_PREFIX
from services.protocol.failures import LogPart, LogSource
from services.protocol.server_client import ApiError, ServerClient
from services.protocol.tls import client_context

PAGE_CHARS = 256 * 1024  # what is read at a time: the end of a 100 MB log shows at once
COPY_WAIT = 8.0  # how long to wait for the Manager's upload of a copy before showing the Server's last lines


class Place(StrEnum):
    MANAGER = "manager"
    SERVER_COPY = "server-copy"
    SERVER_TAIL = "server-tail"


class TaskLogReader:
    def __init__(
        self, client: ServerClient, token: str, task_id: int, *, timeout: float = 10.0, copy_wait: float = COPY_WAIT
    ) -> None:
        self.client = client
        self.token = token
        self.task_id = task_id
        self.timeout = timeout
        self.copy_wait = copy_wait
        self.source: LogSource | None = None
        self.place = Place.SERVER_TAIL
        self.note = ""  # where the text comes from, for the viewer's header
        self._http: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def _manager_http(self, url: str) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=f"{url}{API_PREFIX}/tasks/{self.task_id}",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=httpx.Timeout(self.timeout, read=None),  # a followed log may be quiet for minutes
                verify=client_context() if url.startswith("https:") else True,
            )
        return self._http

    async def open(self, chars: int = PAGE_CHARS) -> LogPart:
        """Find the log and read its end."""
        self.source = src = await self.client.log_source(self.task_id)
        why = "no Manager has run this task yet"
        if src.manager_url:
            try:
                part = await self._from_manager(src.manager_url, tail=chars)
                self.place = Place.MANAGER
                self.note = f"Full log from manager {src.manager_name} ({src.manager_url})"
                return part
            except httpx.HTTPStatusError as exc:
                why = f"manager {src.manager_name} answered {exc.response.status_code}"
            except (httpx.HTTPError, OSError) as exc:
                why = f"manager {src.manager_name} at {src.manager_url} cannot be reached from here ({exc})"
        elif src.manager_name:
            why = f"manager {src.manager_name} has not told the Server where it can be reached"
        if src.manager_id is not None and await self._copy_ready(src):
            self.place = Place.SERVER_COPY
            self.note = f"The Server's copy of the full log ({why})"
            return await self.client.log_copy(self.task_id, tail=chars)
        self.place = Place.SERVER_TAIL
        self.note = f"The Server's last lines only ({why})"
        text = "\n".join(src.log_tail) + ("\n" if src.log_tail else "")
        return LogPart(text=text, first=0, last=0, earlier=False)

    async def earlier(self, before: int, chars: int = PAGE_CHARS) -> LogPart:
        """The part of the log before cursor `before` (a part's `first`)."""
        return await self._part(before=before, limit=chars)

    async def later(self, after: int, chars: int = PAGE_CHARS) -> LogPart:
        """The part of the log after cursor `after` (a part's `last`; 0: from its start); empty at its end."""
        return await self._part(after=after, limit=chars)

    async def _part(self, **params: int) -> LogPart:
        if self.place == Place.MANAGER and self.source and self.source.manager_url:
            return await self._from_manager(self.source.manager_url, **params)
        if self.place == Place.SERVER_COPY:
            return await self.client.log_copy(self.task_id, **params)
        return LogPart(text="", first=0, last=0, earlier=False)

    async def follow(self, after: int) -> AsyncIterator[str]:
        """New text after cursor `after` (a part's `last`) while the task runs; only a Manager has it live."""
        if self.place != Place.MANAGER or self.source is None or not self.source.manager_url:
            return
        http = self._manager_http(self.source.manager_url)
        async with http.stream("GET", "/log", params={"follow": 1, "after": after}) as response:
            response.raise_for_status()
            async for chunk in response.aiter_text():
                yield chunk

    async def _from_manager(self, url: str, **params: int) -> LogPart:
        # a part is what was asked for (a few hundred kB as UTF-8 at most): a Manager sending more is cut off
        limit = 4 * max(params.get("tail", 0), params.get("limit", 0), PAGE_CHARS) + 65_536
        async with self._manager_http(url).stream("GET", "/log", params=params) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise httpx.DecodingError(f"the Manager's answer is over {limit:,} bytes", request=response.request)
            return LogPart.from_answer(body.decode(errors="replace"), response.headers)

    async def _copy_ready(self, src: LogSource) -> bool:
        """The Server has a copy, or gets one within copy_wait (asked for here)."""
        if src.server_copy_bytes is not None:
            return True
        try:
            await self.client.request_log_copy(self.task_id)
        except ApiError:
            return False
        deadline = time.monotonic() + self.copy_wait
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            if (await self.client.log_source(self.task_id)).server_copy_bytes is not None:
                return True
        return False
