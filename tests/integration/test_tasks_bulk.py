"""`POST /tasks/bulk`, in process on a real SQLite file and on PostgreSQL: each task is done or refused on its
own (unknown, wrong state, another artist's job), repeated ids once, and the end state (tasks, job, job log,
events, Managers' instructions) is the one the single route leaves, request after request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.protocol.states import TaskStatus
from services.server.config import ServerConfig
from services.server.db.tables import EventRow, JobLogRow, JobRow, PendingInstructionRow, TaskRow
from services.server.states.tasks import can_transition
from services.server.store import task_bulk
from services.server.store.tasks import set_task_status
from tests.support.databases import database_url
from tests.support.inprocess_server import admin_client

pytestmark = pytest.mark.timeout(300)

API = "/api/v1"


@pytest.fixture(params=["sqlite", "postgres"])
async def client(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    with database_url(request.param, tmp_path) as url:
        async with admin_client(ServerConfig(data_dir=tmp_path, database_url=url)) as c:
            yield c


def render(name: str, frames: str = "1-8", preview: bool = True, **more: Any) -> dict[str, Any]:
    """Eight render tasks and a preview video that depends on them all."""
    settings = {
        "blendfile": "/projects/shot.blend",
        "frames": frames,
        "chunk_size": 1,
        "output_path": "/renders/shot/frame_####",
        "preview_video": preview,
    }
    return {"name": name, "type": "blender-render", "settings": settings, **more}


async def submit(client: httpx.AsyncClient, body: dict[str, Any], token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await client.post(f"{API}/jobs", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def task_ids(client: httpx.AsyncClient, job_id: int) -> list[int]:
    with client.app.state.read_sessions() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(TaskRow.id).where(TaskRow.job_id == job_id).order_by(TaskRow.index)))


# what each task of a job is moved to before the action, by index (the rest stay queued)
PATHS: dict[int, list[TaskStatus]] = {
    1: [TaskStatus.ASSIGNED],
    2: [TaskStatus.ASSIGNED, TaskStatus.ACTIVE],
    3: [TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.SOFT_FAILED],
    4: [TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.COMPLETED],
    5: [TaskStatus.ASSIGNED, TaskStatus.ACTIVE, TaskStatus.FAILED],
    6: [TaskStatus.CANCELED],
    7: [TaskStatus.PAUSED],
}


def shape(client: httpx.AsyncClient, job_id: int, manager_id: int) -> None:
    """Tasks of the job in every status, as a Manager's reports and a wrangler would have left them."""
    with client.app.state.write_sessions() as s:  # type: ignore[attr-defined]
        job = s.get_one(JobRow, job_id)
        tasks = s.scalars(select(TaskRow).where(TaskRow.job_id == job_id).order_by(TaskRow.index)).all()
        for index, path in PATHS.items():
            for status in path:
                if not can_transition(TaskStatus(tasks[index].status), status):
                    break  # a fail-job job failed at task 5 and canceled those that had not started
                set_task_status(s, tasks[index], status, actor="test", job=job)
                if status == TaskStatus.ASSIGNED:
                    tasks[index].manager_id = manager_id
                    tasks[index].worker_id = "w1"
                    tasks[index].worker_name = "w1"
        s.commit()


async def add_manager(client: httpx.AsyncClient) -> int:
    r = await client.post(f"{API}/managers", json={"name": "m1"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def end_state(client: httpx.AsyncClient, job_id: int, since: int) -> dict[str, Any]:
    """What a task action leaves, without ids and times (which differ between two jobs made alike); events after
    the one of id `since`."""
    with client.app.state.read_sessions() as s:  # type: ignore[attr-defined]
        job = s.get_one(JobRow, job_id)
        tasks = s.scalars(select(TaskRow).where(TaskRow.job_id == job_id).order_by(TaskRow.index)).all()
        index_of = {t.id: t.index for t in tasks}
        events: list[tuple[Any, ...]] = []
        job_events = []  # one per request of the single route; one per transaction of the bulk route
        for row in s.scalars(select(EventRow).where(EventRow.id > since).order_by(EventRow.id)):
            data = row.data
            if row.type == "task-updated" and data["job_id"] == job_id:
                events.append(("task", index_of[data["id"]], data["status"], data["activity"], data["manager_id"]))
            elif row.type == "job-updated" and data["id"] == job_id:
                counts = [data[k] for k in ("tasks_completed", "tasks_failed", "tasks_canceled", "tasks_active")]
                job_events.append(("job", data["status"], data["activity"], *counts))
            elif row.type == "job-tasks-changed" and data["job_id"] == job_id:
                events.append(("job-tasks-changed",))
        events.append(job_events[-1] if job_events else ("no job-updated",))  # the job as the last event tells it
        instructions = set()  # which, not how many times: a Manager resets a job's blocklist once as twice
        for i in s.scalars(select(PendingInstructionRow)):
            if i.kind == "reset-blocklist" and i.task_id == job_id:  # its "task id" is the job's
                instructions.add((i.kind, "job"))
            elif i.kind != "reset-blocklist" and i.task_id in index_of:
                instructions.add((i.kind, index_of[i.task_id]))
        log = [
            r.message.replace(f"job {job_id}", "job J")
            for r in s.scalars(select(JobLogRow).where(JobLogRow.job_id == job_id).order_by(JobLogRow.id))
        ]
        return {
            "job": {
                k: getattr(job, k)
                for k in (
                    "status",
                    "activity",
                    "tasks_total",
                    "tasks_completed",
                    "tasks_failed",
                    "tasks_canceled",
                    "tasks_active",
                    "tasks_running",
                    "tasks_timed",
                )
            },
            "tasks": [
                (
                    t.index,
                    t.status,
                    t.activity,
                    t.failure_count,
                    t.manager_id,
                    t.worker_id,
                    t.deps_pending,
                    t.steps_done,
                    t.started is None,
                    t.render_seconds is None,
                    t.lease_expires is None,
                )
                for t in tasks
            ],
            "events": events,
            "instructions": instructions,
            "log": log,
        }


@pytest.mark.parametrize("action", ["requeue", "cancel"])
@pytest.mark.parametrize("on_failure", ["continue", "fail-job"])
async def test_bulk_leaves_what_one_request_per_task_leaves(
    client: httpx.AsyncClient, action: str, on_failure: str
) -> None:
    manager_id = await add_manager(client)
    single = await submit(client, render("single", on_task_failure=on_failure))
    many = await submit(client, render("many", on_task_failure=on_failure))
    for job_id in (single, many):
        shape(client, job_id, manager_id)
    with client.app.state.read_sessions() as s:  # type: ignore[attr-defined]
        before = s.scalar(select(func.max(EventRow.id))) or 0
    # the single route, a request per task in id order (what the bulk route promises to be)
    singles = []
    for task_id in task_ids(client, single):
        r = await client.post(f"{API}/tasks/{task_id}/status", json={"action": action, "reason": "fixed"})
        assert r.status_code in (200, 409), r.text
        singles.append(None if r.status_code == 200 else r.json()["detail"])
    r = await client.post(
        f"{API}/tasks/bulk", json={"ids": task_ids(client, many), "action": action, "reason": "fixed"}
    )
    assert r.status_code == 200, r.text
    bulk = [None if item["ok"] else item["error"] for item in r.json()["results"]]
    assert [b and b.replace(f"job {many}", "job J") for b in bulk] == [
        s and s.replace(f"job {single}", "job J") for s in singles
    ]
    assert any(b is None for b in bulk) and any(b is not None for b in bulk)  # both kinds of answer were met
    assert end_state(client, many, before) == end_state(client, single, before)


async def test_one_refusal_stops_no_other_and_repeats_count_once(client: httpx.AsyncClient) -> None:
    job_id = await submit(client, render("mixed"))
    ids = task_ids(client, job_id)
    await client.post(f"{API}/tasks/{ids[0]}/status", json={"action": "cancel"})  # canceled already
    body = {"ids": [ids[1], 999_999_999, ids[0], ids[1], ids[2]], "action": "cancel"}
    r = await client.post(f"{API}/tasks/bulk", json=body)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["id"] for x in results] == [ids[1], 999_999_999, ids[0], ids[2]]  # in the order asked, each once
    assert [x["ok"] for x in results] == [True, False, False, True]
    assert results[1]["error"] == "no task with id 999999999"
    assert results[2]["error"].startswith("cannot cancel a task that is canceled")
    job = (await client.get(f"{API}/jobs/{job_id}")).json()
    assert job["tasks_canceled"] == 4  # the three, and the preview video that waited for them
    log = [e["message"] for e in job["log"]]
    assert sum("canceled" in m and m.startswith("task ") for m in log) == 3  # one line per task, none twice


async def test_more_than_a_transaction_of_tasks(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several transactions: a refusal in the second undoes nothing of the first, and every task is answered."""
    monkeypatch.setattr(task_bulk, "PER_TRANSACTION", 4)
    job_id = await submit(client, render("chunks", frames="1-10", preview=False))
    ids = task_ids(client, job_id)
    await client.post(f"{API}/tasks/{ids[5]}/status", json={"action": "cancel"})
    r = await client.post(f"{API}/tasks/bulk", json={"ids": ids, "action": "cancel"})
    assert r.status_code == 200, r.text
    assert [x["ok"] for x in r.json()["results"]] == [i != 5 for i in range(10)]
    job = (await client.get(f"{API}/jobs/{job_id}")).json()
    assert job["status"] == "canceled" and job["tasks_canceled"] == 10
    assert sum(m["message"].startswith("task ") for m in job["log"]) == 10


async def test_artists_act_only_on_their_own_jobs(client: httpx.AsyncClient) -> None:
    tokens = {}
    for name, role in (("ana", "artist"), ("bo", "artist"), ("wes", "wrangler")):
        r = await client.post(f"{API}/users", json={"name": name, "role": role, "password": f"{name}-password"})
        assert r.status_code == 201, r.text
        tokens[name] = (await client.post(f"{API}/tokens", json={"user": name})).json()["token"]
    anas = task_ids(client, await submit(client, render("ana's", frames="1-2"), tokens["ana"]))
    bos = task_ids(client, await submit(client, render("bo's", frames="1-2"), tokens["bo"]))

    async def cancel(who: str, ids: list[int]) -> list[tuple[bool, str | None]]:
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        r = await client.post(f"{API}/tasks/bulk", json={"ids": ids, "action": "cancel"}, headers=headers)
        assert r.status_code == 200, r.text
        return [(x["ok"], x["error"]) for x in r.json()["results"]]

    got = await cancel("bo", [anas[0], bos[0]])
    assert got[1] == (True, None)
    assert got[0][0] is False and "belongs to ana; artists manage only their own jobs" in str(got[0][1])
    single = await client.post(
        f"{API}/tasks/{anas[0]}/status", json={"action": "cancel"}, headers={"Authorization": f"Bearer {tokens['bo']}"}
    )
    assert single.status_code == 403 and single.json()["detail"] == got[0][1]  # the single route's refusal
    assert await cancel("ana", [anas[0]]) == [(True, None)]
    assert await cancel("wes", [anas[1], bos[1]]) == [(True, None), (True, None)]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"ids": [], "action": "cancel"}, "ids"),
        ({"ids": list(range(1, 10_002)), "action": "cancel"}, "ids"),
        ({"ids": [1], "action": "pause"}, "action"),
        ({"ids": [1], "action": "cancel", "reason": "a\nb"}, "reason"),
        ({"ids": [-1], "action": "cancel"}, "ids.0"),
    ],
)
async def test_bad_requests_name_the_field(client: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    r = await client.post(f"{API}/tasks/bulk", json=body)
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}, r.text


async def test_a_get_of_the_bulk_path_is_a_405(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{API}/tasks/bulk")
    assert r.status_code == 405 and r.headers["Allow"] == "POST", r.text
