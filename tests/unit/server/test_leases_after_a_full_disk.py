"""Leases are not expired the moment a full disk has room again, or a lock another process held is let go
(found by a fault-injection audit: the Server's disk full for longer than a lease, the first sweep after expired
every lease before the Managers' batches, held back by their back-off, could renew them; finished work ran again,
and counted a failure). A refused write starts one lease period of grace, as a stall of the Server's process
does, and so does a sweep's long wait for the database."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from services.server.background import run_sweeps_once
from services.server.config import ServerConfig
from services.server.db.engine import SQLITE_NAME
from tests.support.inprocess_server import admin_client

API = "/api/v1"
LEASE = 1.5


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(ServerConfig(data_dir=tmp_path, lease_seconds=LEASE)) as c:
        yield c


def no_room(dbapi_conn: Any, _record: Any) -> None:
    pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
    dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")


async def task_status(client: httpx.AsyncClient, job_id: int) -> str:
    r = await client.get(f"{API}/jobs/{job_id}/tasks")
    assert r.status_code == 200, r.text
    return str(r.json()["items"][0]["status"])


@pytest.mark.timeout(60)
async def test_a_lease_waits_one_lease_period_after_the_disk_had_room_again(client: httpx.AsyncClient) -> None:
    app: Any = client.app  # type: ignore[attr-defined]
    r = await client.post(f"{API}/managers", json={"name": "m"})
    manager = {"Authorization": f"Bearer {r.json()['token']}"}
    job = await client.post(f"{API}/jobs", json={"name": "j", "type": "exec",
                                                 "settings": {"command": ["true"], "frames": "1"}})  # fmt: skip
    assert job.status_code == 201, job.text
    claim = {"capacity": 1, "task_types": ["exec"], "wait_seconds": 0}
    r = await client.post(f"{API}/manager/claim", json=claim, headers=manager)
    assert len(r.json()["tasks"]) == 1, r.text
    assert await task_status(client, job.json()["id"]) == "assigned"

    # the disk is full past the lease: the Manager's batches (here, any write) are refused
    engine = app.state.engine
    event.listen(engine, "connect", no_room)
    engine.dispose()
    await asyncio.sleep(LEASE + 0.2)
    big = {"name": "k", "type": "exec", "settings": {"command": ["echo", "x" * 2000], "frames": "1-200"}}
    assert (await client.post(f"{API}/jobs", json=big)).status_code == 507
    event.remove(engine, "connect", no_room)
    engine.dispose()

    # room again: the lease, run out meanwhile, is not expired at once; the Manager has a lease period to renew
    run_sweeps_once(app.state.write_sessions, app.state.sweeps, awake=app.state.awake)
    assert await task_status(client, job.json()["id"]) == "assigned"
    await asyncio.sleep(LEASE + 0.2)  # it never came back: now it goes
    run_sweeps_once(app.state.write_sessions, app.state.sweeps, awake=app.state.awake)
    assert await task_status(client, job.json()["id"]) == "queued"


@pytest.mark.timeout(60)
async def test_a_lease_waits_one_lease_period_after_another_process_held_the_database(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """Found by a fault-injection audit: a lock on the database longer than a lease (`BEGIN EXCLUSIVE` from another
    process, a backup tool) held back the Managers' batches and the sweep alike; the sweep, first to get the lock,
    expired the leases the waiting batches were renewing, and 9 – 13 of 150 finished tasks ran again."""
    app: Any = client.app  # type: ignore[attr-defined]
    r = await client.post(f"{API}/managers", json={"name": "m"})
    manager = {"Authorization": f"Bearer {r.json()['token']}"}
    job = await client.post(f"{API}/jobs", json={"name": "j", "type": "exec",
                                                 "settings": {"command": ["true"], "frames": "1"}})  # fmt: skip
    claim = {"capacity": 1, "task_types": ["exec"], "wait_seconds": 0}
    assert len((await client.post(f"{API}/manager/claim", json=claim, headers=manager)).json()["tasks"]) == 1
    hold = app.state.awake.stall_after + 0.5
    locked = threading.Event()

    def other_process() -> None:
        conn = sqlite3.connect(tmp_path / SQLITE_NAME, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(hold)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=other_process)
    holder.start()
    assert locked.wait(10)
    # the sweep waits for the lock past the lease, as the Manager's batches do
    await asyncio.to_thread(run_sweeps_once, app.state.write_sessions, app.state.sweeps, awake=app.state.awake)
    holder.join()
    assert await task_status(client, job.json()["id"]) == "assigned"
    await asyncio.sleep(LEASE + 0.2)  # the Manager never came back: now it goes
    run_sweeps_once(app.state.write_sessions, app.state.sweeps, awake=app.state.awake)
    assert await task_status(client, job.json()["id"]) == "queued"
