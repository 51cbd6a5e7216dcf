"""Live views hear of Managers (the desktop app applies `manager-updated`, which nothing sent): one added, one
that calls for the first time or again after a silence (online), and one that falls silent (offline), once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.server.background import run_sweeps_once
from services.server.config import ServerConfig
from services.server.store import events
from tests.support.inprocess_server import admin_client

API = "/api/v1"
LEASE = 1.0


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(ServerConfig(data_dir=tmp_path, lease_seconds=LEASE)) as c:
        yield c


def manager_events(client: httpx.AsyncClient, after: int) -> tuple[list[dict[str, Any]], int]:
    """The `manager-updated` events after event id `after`, and the newest event id."""
    app: Any = client.app  # type: ignore[attr-defined]
    with app.state.read_sessions() as session:
        rows = events.read_after(session, after)
        return [r.data for r in rows if r.type == "manager-updated"], (rows[-1].id if rows else after)


def sweep(client: httpx.AsyncClient) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    run_sweeps_once(app.state.write_sessions, app.state.sweeps)


async def test_a_manager_is_announced_when_added_when_it_calls_and_when_it_falls_silent(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(f"{API}/managers", json={"name": "site-a"})
    assert r.status_code == 201, r.text
    manager_id, token = r.json()["id"], r.json()["token"]
    got, last = manager_events(client, 0)
    assert [(m["id"], m["name"], m["status"]) for m in got] == [(manager_id, "site-a", "never-seen")]

    async def claim() -> None:
        body = {"capacity": 1, "task_types": ["exec"], "wait_seconds": 0}
        r = await client.post(f"{API}/manager/claim", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text

    await claim()
    got, last = manager_events(client, last)
    assert [m["status"] for m in got] == ["online"]
    await claim()  # online already: nothing new to say
    got, last = manager_events(client, last)
    assert got == []

    await asyncio.sleep(LEASE + 0.3)  # silent past its lease (and the Server past its own first lease period)
    sweep(client)
    got, last = manager_events(client, last)
    assert [(m["id"], m["status"]) for m in got] == [(manager_id, "offline")]
    sweep(client)  # still silent: announced once
    got, last = manager_events(client, last)
    assert got == []

    await claim()  # back
    got, last = manager_events(client, last)
    assert [m["status"] for m in got] == ["online"]
    sweep(client)
    assert manager_events(client, last)[0] == []


async def test_a_silent_manager_whose_announcement_was_not_stored_is_announced_at_the_next_sweep(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(f"{API}/managers", json={"name": "site-a"})
    manager_id, token = r.json()["id"], r.json()["token"]
    body = {"capacity": 1, "task_types": ["exec"], "wait_seconds": 0}
    r = await client.post(f"{API}/manager/claim", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    _, last = manager_events(client, 0)
    await asyncio.sleep(LEASE + 0.3)

    app: Any = client.app  # type: ignore[attr-defined]
    silent_sweep = next(s for s in app.state.sweeps if s.name == "offline workers of silent managers")
    with app.state.write_sessions() as session:
        silent_sweep.run(session)
        session.rollback()  # its commit failed (a full disk, the database away)
    assert manager_events(client, last)[0] == []
    sweep(client)
    got, _ = manager_events(client, last)
    assert [(m["id"], m["status"]) for m in got] == [(manager_id, "offline")]
