"""Benchmark: selecting a job of 1,000,000 tasks in the desktop app's models (a real Server process on SQLite).

Prints, with the app's cap on the tasks it holds and without it (every task, as before): the time to the first
tasks shown, the time until the load ends, the tasks held and the process's RSS growth. Run with
`pytest -m bench -s tests/bench/bench_gui_big_job.py`; not part of `make test`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
import psutil
import pytest

from app.models import sync as sync_module
from app.models.store import ClientStore
from app.models.sync import ConnectionState, FarmSync
from services.protocol.server_client import ServerClient
from tests.support.manager import API
from tests.support.services import ServerProcess

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]
TASKS = 1_000_000


async def _until(done: Callable[[], bool]) -> None:
    while True:
        if done():
            return
        await asyncio.sleep(0.001)


async def _select(server: ServerProcess, job_id: int) -> tuple[float, float, int, float]:
    store = ClientStore()
    sync = FarmSync(store, ServerClient(server.url, server.admin_token))
    proc = psutil.Process()
    gc.collect()
    rss = proc.memory_info().rss
    sync.start()
    await _until(lambda: sync.state == ConnectionState.CONNECTED and job_id in store.jobs)
    start = time.perf_counter()
    sync.select_job(job_id)
    await _until(lambda: len(store.tasks) > 0)
    first = time.perf_counter() - start
    assert sync._tasks_load is not None
    await sync._tasks_load
    whole = time.perf_counter() - start
    held = len(store.tasks)
    grown = (proc.memory_info().rss - rss) / 2**20
    await sync.stop()
    await sync.client.aclose()
    return first, whole, held, grown


def test_selecting_a_million_task_job(tmp_path: Path, qapp) -> None:
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    try:
        body = {"name": "big", "type": "exec", "settings": {"command": ["true"], "frames": f"1-{TASKS}"}}
        job = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=600).json()
        loop = asyncio.new_event_loop()
        capped = loop.run_until_complete(_select(server, job["id"]))
        sync_module.TASKS_SHOWN = 10**9  # every task, as before the cap
        whole = loop.run_until_complete(_select(server, job["id"]))
        loop.close()
        for name, (first, done, held, grown) in (("capped", capped), ("every task", whole)):
            print(
                f"\n[bench] select a {TASKS:,}-task job ({name}): first tasks {first * 1000:.0f} ms, "
                f"load done {done:.1f} s, {held:,} tasks held, RSS +{grown:.0f} MiB"
            )
    finally:
        server.stop()
