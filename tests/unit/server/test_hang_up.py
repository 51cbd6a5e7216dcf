"""A waiting request hears its client hang up (services/server/api/hang_up.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from services.server.api import hang_up

Messages = asyncio.Queue[dict[str, Any]]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def _listening() -> AsyncIterator[tuple[Messages, asyncio.Event, hang_up.HangUp]]:
    """A request whose server says what the test puts in `messages`, listened to (the listener started)."""
    messages: Messages = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await messages.get()

    wake = asyncio.Event()
    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
    async with hang_up.listening(request, wake) as gone:
        await _settle()
        yield messages, wake, gone


def test_a_hang_up_while_the_block_runs_sets_the_flag_and_wakes_the_wait() -> None:
    async def scenario() -> None:
        async with _listening() as (messages, wake, gone):
            assert not gone.heard and not wake.is_set()
            messages.put_nowait({"type": "http.request", "body": b"", "more_body": False})  # a trailing empty part
            await _settle()
            assert not gone.heard and not wake.is_set()
            messages.put_nowait({"type": "http.disconnect"})
            await asyncio.wait_for(wake.wait(), 1)
            assert gone.heard

    asyncio.run(scenario())


def test_after_the_block_nothing_listens() -> None:
    async def scenario() -> None:
        async with _listening() as (messages, wake, gone):
            pass
        await _settle()
        messages.put_nowait({"type": "http.disconnect"})  # what the server says once the answer is sent
        await _settle()
        assert not gone.heard and not wake.is_set()
        assert messages.qsize() == 1  # not even read
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())
