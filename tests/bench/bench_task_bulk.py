"""Benchmark: requeue and cancel the 20,000 tasks of one job through `POST /tasks/bulk` (10,000 ids a request, as
the desktop app sends them), against one `POST /tasks/{id}/status` per task, 8 in flight as the app sent them
before (timed on 2,000 tasks and scaled: 20,000 single requests take minutes).

A real Server process on SQLite, over HTTP. Run with `pytest -m bench -s tests/bench/bench_task_bulk.py`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.bench.results import record
from tests.support.manager import API
from tests.support.services import ServerProcess

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]

BULK_TASKS = 20_000
SINGLE_TASKS = 2_000
PER_REQUEST = 10_000
IN_FLIGHT = 8


def _canceled_job(http: httpx.Client, name: str, tasks: int) -> list[int]:
    """A job of `tasks` tasks, all canceled (so each may be requeued); their ids."""
    body = {"name": name, "type": "exec", "settings": {"command": ["true"], "frames": f"1-{tasks}", "chunk_size": 1}}
    r = http.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    assert http.post(f"/jobs/{job_id}/status", json={"action": "cancel"}).status_code == 200
    ids: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 5000, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"/jobs/{job_id}/tasks", params=params).json()
        ids += [t["id"] for t in page["items"]]
        if not (cursor := page["next_cursor"]):
            return ids


def _bulk(http: httpx.Client, ids: list[int], action: str) -> float:
    start = time.perf_counter()
    for i in range(0, len(ids), PER_REQUEST):
        r = http.post("/tasks/bulk", json={"ids": ids[i : i + PER_REQUEST], "action": action})
        assert r.status_code == 200, r.text
        assert all(x["ok"] for x in r.json()["results"]), r.text[:500]
    return time.perf_counter() - start


async def _singles(srv: ServerProcess, ids: list[int], action: str) -> float:
    todo = iter(ids)
    async with httpx.AsyncClient(base_url=srv.url + API, headers=srv.headers(), timeout=60) as http:

        async def worker() -> None:
            for task_id in todo:
                r = await http.post(f"/tasks/{task_id}/status", json={"action": action})
                assert r.status_code == 200, r.text

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        return time.perf_counter() - start


def test_bulk_route_against_one_request_per_task(tmp_path: Path) -> None:
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    try:
        with httpx.Client(base_url=srv.url + API, headers=srv.headers(), timeout=600) as http:
            many = _canceled_job(http, "bulk", BULK_TASKS)
            few = _canceled_job(http, "single", SINGLE_TASKS)
            bulk_requeue = _bulk(http, many, "requeue")
            bulk_cancel = _bulk(http, many, "cancel")
            single_requeue = asyncio.run(_singles(srv, few, "requeue"))
            single_cancel = asyncio.run(_singles(srv, few, "cancel"))
    finally:
        srv.stop()
    scale = BULK_TASKS / SINGLE_TASKS
    print(
        f"\nrequeue of {BULK_TASKS:,} tasks of one job (SQLite, over HTTP): bulk route {bulk_requeue:.1f} s "
        f"({BULK_TASKS / bulk_requeue:,.0f} tasks/s, {-(-BULK_TASKS // PER_REQUEST)} requests); one request per task "
        f"{single_requeue:.1f} s for {SINGLE_TASKS:,} ({SINGLE_TASKS / single_requeue:,.0f} tasks/s, "
        f"~{single_requeue * scale:.0f} s for {BULK_TASKS:,})"
        f"\ncancel of the same: bulk route {bulk_cancel:.1f} s ({BULK_TASKS / bulk_cancel:,.0f} tasks/s); one request "
        f"per task {single_cancel:.1f} s for {SINGLE_TASKS:,} ({SINGLE_TASKS / single_cancel:,.0f} tasks/s)"
    )
    record("task_bulk_requeue_tasks_per_s", BULK_TASKS / bulk_requeue)
    record("task_single_requeue_tasks_per_s", SINGLE_TASKS / single_requeue)
    record("task_bulk_cancel_tasks_per_s", BULK_TASKS / bulk_cancel)
    record("task_single_cancel_tasks_per_s", SINGLE_TASKS / single_cancel)
