"""Task and job times over real HTTP, on SQLite and PostgreSQL: a Manager of the test's own reports runs with
their times; the Server answers each task's start, end and render time, the job's elapsed time, mean and
longest task time, and an ETA from the tasks left and the workers that can run them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        yield c


class Link:
    """A Manager speaking the link with plain HTTP, with workers of the test's own."""

    def __init__(self, client: httpx.Client, task_type: str) -> None:
        self.client = client
        self.seq = 0
        self.type = task_type
        self.workers: list[dict[str, Any]] = []

    def worker(self, status: str = "awake", task_types: list[str] | None = None, tags: list[str] | None = None) -> None:
        wid = f"w-{uuid.uuid4().hex[:8]}"
        self.workers.append(
            {"id": wid, "name": wid, "platform": "linux", "task_types": task_types or [self.type],
             "tags": tags or [], "status": status}
        )  # fmt: skip

    def claim(self, capacity: int = 100) -> list[dict[str, Any]]:
        r = self.client.post("/claim", json={"capacity": capacity, "task_types": [self.type]})
        assert r.status_code == 200, r.text
        return list(r.json()["tasks"])

    def push(self, *updates: dict[str, Any]) -> None:
        self.seq += 1
        r = self.client.post("/updates", json={"seq": self.seq, "task_updates": list(updates), "workers": self.workers})
        assert r.status_code == 200, r.text
        assert r.json()["rejected"] == []


@pytest.fixture
def link(server: ServerProcess) -> Iterator[Link]:
    token = add_manager(server, f"m-{uuid.uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url + API + "/manager", headers=headers, timeout=30) as c:
        yield Link(c, f"t{uuid.uuid4().hex[:10]}")


def submit(admin: httpx.Client, link: Link, frames: str) -> dict[str, Any]:
    body = {
        "name": "timed",
        "type": "exec",
        "settings": {"command": ["true"], "frames": frames, "task_type": link.type},
    }
    r = admin.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def iso(t: datetime) -> str:
    return t.isoformat()


def at(s: str) -> datetime:
    return datetime.fromisoformat(s)


def update(c: dict[str, Any], status: str, **times: datetime) -> dict[str, Any]:
    return {"task_id": c["id"], "attempt": c["attempt"], "status": status, **{k: iso(v) for k, v in times.items()}}


def test_task_times_and_the_jobs_figures(admin: httpx.Client, link: Link) -> None:
    job = submit(admin, link, "1-4")
    assert job["task_types"] == [link.type] and job["started"] is None and job["elapsed_seconds"] is None
    a, b, c, d = link.claim()
    t0 = datetime.now(UTC) - timedelta(seconds=60)
    link.push(update(a, "active", started=t0), update(b, "active", started=t0 + timedelta(seconds=1)))
    running = admin.get(f"/jobs/{job['id']}").json()
    assert running["tasks_running"] == 2 and at(running["started"]) == t0
    assert at(running["running_since_mean"]) == t0 + timedelta(seconds=0.5)
    assert running["elapsed_seconds"] == pytest.approx(60, abs=5)
    assert running["task_seconds_mean"] is None and running["eta_seconds"] is None  # no task has ended yet
    # a ends after 2 s; b started and ended between two batches (its start rides on the final update)
    link.push(update(a, "completed", time=t0 + timedelta(seconds=2)))
    link.push(update(b, "completed", started=t0 + timedelta(seconds=1), time=t0 + timedelta(seconds=5)))
    ta = admin.get(f"/tasks/{a['id']}").json()
    assert at(ta["started"]) == t0 and at(ta["finished"]) == t0 + timedelta(seconds=2)
    assert ta["render_seconds"] == pytest.approx(2.0)
    assert admin.get(f"/tasks/{b['id']}").json()["render_seconds"] == pytest.approx(4.0)
    listed = {t["id"]: t for t in admin.get(f"/jobs/{job['id']}/tasks").json()["items"]}
    assert listed[a["id"]]["render_seconds"] == pytest.approx(2.0) and listed[c["id"]]["started"] is None
    j = admin.get(f"/jobs/{job['id']}").json()
    assert j["tasks_timed"] == 2 and j["tasks_running"] == 0
    assert j["task_seconds_mean"] == pytest.approx(3.0) and j["task_seconds_max"] == pytest.approx(4.0)
    assert at(j["finished"]) == t0 + timedelta(seconds=5)
    # a wrangler requeues the longest: it leaves the mean and the longest, and its times are cleared
    r = admin.post(f"/tasks/{b['id']}/status", json={"action": "requeue"})
    assert r.status_code == 200, r.text
    assert r.json()["started"] is None and r.json()["render_seconds"] is None
    j = admin.get(f"/jobs/{job['id']}").json()
    assert j["tasks_timed"] == 1 and j["task_seconds_mean"] == pytest.approx(2.0)
    assert j["task_seconds_max"] == pytest.approx(2.0)
    # requeueing the whole job starts its figures afresh
    for t in (c, d):
        link.push(update(t, "completed", started=t0 + timedelta(seconds=10), time=t0 + timedelta(seconds=11)))
    for t in link.claim():
        link.push(update(t, "completed", started=t0 + timedelta(seconds=20), time=t0 + timedelta(seconds=23)))
    done = admin.get(f"/jobs/{job['id']}").json()
    assert done["status"] == "completed" and done["tasks_timed"] == 4
    assert done["task_seconds_mean"] == pytest.approx((2 + 1 + 1 + 3) / 4)
    assert done["elapsed_seconds"] == pytest.approx(23.0)  # first start to last end, not to now
    r = admin.post(f"/jobs/{job['id']}/status", json={"action": "requeue"})
    assert r.status_code == 200, r.text
    fresh = r.json()
    assert fresh["tasks_timed"] == 0 and fresh["task_seconds_mean"] is None and fresh["started"] is None


def test_eta_from_the_tasks_left_their_mean_and_the_workers_that_can_run_them(admin: httpx.Client, link: Link) -> None:
    link.worker()
    link.worker()
    link.worker(task_types=["something-else"])  # cannot run it
    link.worker(status="asleep")  # can, but sleeps
    job = submit(admin, link, "1-6")
    claimed = link.claim()
    now = datetime.now(UTC)
    for i, t in enumerate(claimed[:2]):  # two done in 4 s each
        link.push(update(t, "completed", started=now - timedelta(seconds=30 - i), time=now - timedelta(seconds=26 - i)))
    link.push(update(claimed[2], "active", started=datetime.now(UTC) - timedelta(seconds=1)))
    j = admin.get(f"/jobs/{job['id']}").json()
    assert j["eta_workers"] == 2 and j["task_seconds_mean"] == pytest.approx(4.0)
    # 4 left, 1 running for 1 s: 3 × 4 s + (4 − 1) s = 15 s of work over 2 workers
    assert j["eta_seconds"] == pytest.approx(7.5, abs=0.3)
    assert at(j["eta"]) - datetime.now(UTC) == pytest.approx(timedelta(seconds=7.5), abs=timedelta(seconds=1))
    listed = next(x for x in admin.get("/jobs", params={"limit": 1000}).json()["items"] if x["id"] == job["id"])
    assert listed["eta_seconds"] == pytest.approx(7.5, abs=0.5) and listed["eta_workers"] == 2
    # a worker clock ahead of the Server's cannot start a task in the future
    link.push(update(claimed[3], "active", started=datetime.now(UTC) + timedelta(hours=1)))
    assert at(admin.get(f"/tasks/{claimed[3]['id']}").json()["started"]) <= datetime.now(UTC)
    # with no worker awake that can run it, there is no estimate; paused, neither
    for w in link.workers:
        w["status"] = "offline"
    link.push()
    j = admin.get(f"/jobs/{job['id']}").json()
    assert j["eta_workers"] == 0 and j["eta_seconds"] is None and j["eta"] is None
    r = admin.post(f"/jobs/{job['id']}/status", json={"action": "pause"})
    assert r.status_code == 200, r.text
    assert admin.get(f"/jobs/{job['id']}").json()["eta_seconds"] is None


def test_a_start_long_before_its_job_existed_is_taken_as_an_hour_before_and_the_list_still_answers(
    admin: httpx.Client, link: Link
) -> None:
    """A worker clock at 1970 (or a Manager's year 1) made the job's mean decades long: its ETA's date overflowed
    and GET /jobs answered 500 to everyone, for good."""
    link.worker()
    job = submit(admin, link, "1-300")
    created = at(job["created"])
    first, second, *_ = link.claim(2)
    link.push(update(first, "completed", started=datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC), time=datetime.now(UTC)))
    link.push(update(second, "completed", started=datetime(1, 1, 1, tzinfo=UTC), time=datetime.now(UTC)))
    r = admin.get("/jobs", params={"limit": 1000})
    assert r.status_code == 200, r.text
    j = admin.get(f"/jobs/{job['id']}").json()
    assert at(j["started"]) >= created - timedelta(hours=1)
    assert at(admin.get(f"/tasks/{first['id']}").json()["started"]) >= created - timedelta(hours=1)
    assert 3600 <= j["task_seconds_max"] <= 3600 + 120
    assert j["eta_seconds"] is not None and j["eta"] is not None  # 298 tasks of an hour over one worker


def test_job_events_carry_the_time_figures(admin: httpx.Client, link: Link, server: ServerProcess) -> None:
    job = submit(admin, link, "1")
    (t,) = link.claim()
    start = datetime.now(UTC) - timedelta(seconds=3)
    link.push(update(t, "completed", started=start, time=start + timedelta(seconds=3)))
    headers = {**server.headers(), "Last-Event-ID": "0"}
    with httpx.stream("GET", server.url + API + "/events", headers=headers, timeout=30) as r:
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line.removeprefix("data:"))
            data = event["data"]
            if event["type"] == "job-updated" and data["id"] == job["id"] and data["status"] == "completed":
                break
    assert data["tasks_timed"] == 1 and data["task_seconds_mean"] == pytest.approx(3.0)
    assert data["eta_seconds"] is None  # events leave the ETA to the client (it depends on the workers)
