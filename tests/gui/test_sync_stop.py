"""Stopping the sync ends every request it started, side requests included, before the window closes its client:
a request left running (cancelled later, at some garbage collection) closed its socket too late or never."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from services.protocol.server_client import ServerClient


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A listening socket that never accepts: connections are made by the kernel, and no answer ever comes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"


def test_stop_ends_side_requests_in_flight(qloop, silent_server: str) -> None:
    async def scenario() -> None:
        sync = FarmSync(ClientStore(), ServerClient(silent_server, "token"))
        sync.start()
        asked = [sync.spawn(sync.client.me()), sync.spawn(sync.load_all())]  # type: ignore[arg-type]
        await asyncio.sleep(0.3)  # each is waiting for an answer now
        assert not any(t.done() for t in asked)
        await asyncio.wait_for(sync.stop(), timeout=10)
        assert all(t.cancelled() for t in asked)
        assert sync.state == ConnectionState.STOPPED
        await sync.client.aclose()

    qloop.run_until_complete(scenario())


def test_stop_called_from_a_side_request_does_not_wait_for_itself(qloop, silent_server: str) -> None:
    async def scenario() -> None:
        sync = FarmSync(ClientStore(), ServerClient(silent_server, "token"))
        other = sync.spawn(asyncio.sleep(60))
        stopping = sync.spawn(sync.stop())
        await asyncio.wait_for(asyncio.shield(stopping), timeout=10)
        assert other.cancelled() and not stopping.cancelled()
        await sync.client.aclose()

    qloop.run_until_complete(scenario())


def test_a_side_request_asked_for_after_stop_is_not_made(qloop, silent_server: str) -> None:
    """A Qt timer or signal firing after the window stopped its sync (a worker's history, the farm view) would
    otherwise open a connection nothing waits for or closes."""

    async def scenario() -> None:
        sync = FarmSync(ClientStore(), ServerClient(silent_server, "token"))
        await sync.stop()
        started: list[bool] = []

        async def request() -> None:
            started.append(True)
            await sync.client.me()

        late = sync.spawn(request())
        await asyncio.sleep(0.1)
        assert late.cancelled() and started == []
        sync.start()  # started again, it makes them again
        again = sync.spawn(request())
        await asyncio.sleep(0.1)
        assert started == [True] and not again.done()
        await sync.stop()
        await sync.client.aclose()

    qloop.run_until_complete(scenario())
