"""The Server's side of the Manager link over real HTTP, on SQLite and PostgreSQL: claim order and filters,
update batches applied once by seq, stale attempts refused, leases expired, instructions delivered."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess

LEASE = 3.0


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        data_dir=tmp_path_factory.mktemp("server"), database_url=db_url, extra_args=("--lease-seconds", str(LEASE))
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:
        yield c


@pytest.fixture
def link(server: ServerProcess) -> Iterator[httpx.Client]:
    """A Manager of the test's own, speaking the link with plain HTTP."""
    with new_link(server) as c:
        yield c


@contextlib.contextmanager
def new_link(server: ServerProcess) -> Iterator[httpx.Client]:
    name = f"m-{uuid.uuid4().hex[:8]}"
    token = add_manager(server, name)
    with httpx.Client(base_url=server.url + API + "/manager", headers={"Authorization": f"Bearer {token}"}) as c:
        c.timeout = httpx.Timeout(30)
        c.seq = 0  # type: ignore[attr-defined]
        c.manager_name = name  # type: ignore[attr-defined]
        yield c


def _last_seen(admin: httpx.Client, name: str) -> str | None:
    (manager,) = [m for m in admin.get("/managers").json() if m["name"] == name]
    seen: str | None = manager["last_seen"]
    return seen


def claim_that_waits(
    pool: ThreadPoolExecutor, admin: httpx.Client, link: httpx.Client, body: dict[str, Any]
) -> Future[httpx.Response]:
    """Send a claim that waits, and return once the Server has looked at the queue for it and holds it open.

    A hand-off reaches only an open claim; a fixed sleep was not always long enough on a loaded machine."""
    name = link.manager_name  # type: ignore[attr-defined]
    before = _last_seen(admin, name)
    answer = pool.submit(link.post, "/claim", json=body)
    deadline = time.monotonic() + 20
    while _last_seen(admin, name) == before:  # the claim's first look has committed
        assert not answer.done(), answer.result().text
        assert time.monotonic() < deadline, "the Server never looked at the claim"
        time.sleep(0.02)
    time.sleep(0.2)  # from that commit to the claim opening: a few steps of the Server's event loop
    return answer


def kind() -> str:
    """A task type of the test's own, so tests sharing the Server never claim each other's tasks."""
    return f"t{uuid.uuid4().hex[:10]}"


def submit(admin: httpx.Client, ttype: str, frames: str = "1-3", **extra: Any) -> dict[str, Any]:
    body = {
        "name": f"job-{ttype}",
        "type": "exec",
        "settings": {"command": ["true"], "frames": frames, "task_type": ttype},
        **extra,
    }
    r = admin.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def claim(link: httpx.Client, types: list[str], capacity: int = 100, tags: list[str] | None = None) -> list[Any]:
    r = link.post("/claim", json={"capacity": capacity, "task_types": types, "tags": tags or []})
    assert r.status_code == 200, r.text
    return list(r.json()["tasks"])


def push(link: httpx.Client, updates: list[dict[str, Any]], seq: int | None = None, **extra: Any) -> httpx.Response:
    if seq is None:
        link.seq += 1  # type: ignore[attr-defined]
        seq = link.seq  # type: ignore[attr-defined]
    return link.post("/updates", json={"seq": seq, "task_updates": updates, **extra})


def task(admin: httpx.Client, task_id: int) -> dict[str, Any]:
    return dict(admin.get(f"/tasks/{task_id}").json())


def test_claim_follows_priority_then_age_then_index(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    older = submit(admin, t, priority=50)
    urgent = submit(admin, t, priority=80)
    newer = submit(admin, t, priority=50)
    got = claim(link, [t])
    assert [c["job_id"] for c in got] == [urgent["id"]] * 3 + [older["id"]] * 3 + [newer["id"]] * 3
    assert [c["index"] for c in got[:3]] == sorted(c["index"] for c in got[:3])
    assert all(c["attempt"] == 1 for c in got)
    assert task(admin, got[0]["id"])["status"] == "assigned"
    assert claim(link, [t]) == []  # nothing is handed out twice


def test_claim_respects_capacity_types_tags_pause_and_manager_restriction(
    admin: httpx.Client, link: httpx.Client, server: ServerProcess
) -> None:
    t = kind()
    other_id = admin.get("/managers").json()[0]["id"]
    own = submit(admin, t, frames="1-2")
    submit(admin, t, frames="1-2", start_paused=True)
    submit(admin, t, frames="1-2", manager_id=other_id)
    gpu = submit(admin, t, frames="1-2", tags=["gpu"])
    assert claim(link, ["something-else"]) == []
    first = claim(link, [t], capacity=1)
    assert [c["job_id"] for c in first] == [own["id"]]
    rest = claim(link, [t])
    assert [c["job_id"] for c in rest] == [own["id"]]  # not paused, not another Manager's, not needing gpu
    assert [c["job_id"] for c in claim(link, [t], tags=["gpu", "big"])] == [gpu["id"]] * 2
    assert claim(link, [t], capacity=0) == []


def test_only_tasks_whose_dependencies_completed_are_claimed(admin: httpx.Client, link: httpx.Client) -> None:
    body = {
        "name": "deps",
        "type": "blender-render",
        "settings": {
            "blendfile": "/p/s.blend", "frames": "1-2", "chunk_size": 1,
            "output_path": "/r/s/frame_####", "preview_video": True,
        },
    }  # fmt: skip
    r = admin.post("/jobs", json=body)
    assert r.status_code == 201, r.text
    assert claim(link, ["ffmpeg"]) == []  # the preview waits for the renders
    renders = claim(link, ["blender"])
    assert len(renders) == 2
    ack = push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "completed"} for c in renders])
    assert ack.status_code == 200 and ack.json()["rejected"] == []
    preview = claim(link, ["ffmpeg"])
    assert len(preview) == 1 and preview[0]["name"] == "preview-video"


def test_a_job_waits_for_the_jobs_it_depends_on(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    first = submit(admin, t, frames="1")
    second = submit(admin, t, frames="1", depends_on=[first["id"]], priority=90)
    got = claim(link, [t])
    assert [c["job_id"] for c in got] == [first["id"]]  # the urgent job waits for the one it depends on
    c = got[0]
    assert push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "completed"}]).status_code == 200
    assert admin.get(f"/jobs/{first['id']}").json()["status"] == "completed"
    assert [c["job_id"] for c in claim(link, [t])] == [second["id"]]


def test_a_waiting_claim_answers_as_soon_as_a_task_becomes_runnable(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    started = time.monotonic()
    r = link.post("/claim", json={"capacity": 5, "task_types": [t], "wait_seconds": 0.5})
    assert r.status_code == 200 and r.json()["tasks"] == []
    assert time.monotonic() - started >= 0.45  # it waited the time asked for

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(link.post, "/claim", json={"capacity": 5, "task_types": [t], "wait_seconds": 20})
        time.sleep(0.5)
        assert not waiting.done()
        submitted = time.monotonic()
        job = submit(admin, t, frames="1-2")
        answer = waiting.result(timeout=10)
        woke_after = time.monotonic() - submitted
    assert answer.status_code == 200, answer.text
    assert [c["job_id"] for c in answer.json()["tasks"]] == [job["id"]] * 2
    assert woke_after < 5  # not the 20 s the claim was allowed to wait
    r = link.post("/claim", json={"capacity": 1, "task_types": [t], "wait_seconds": 30})
    assert r.status_code == 422 and "wait_seconds" in r.text


def test_a_job_submitted_while_claims_wait_is_handed_to_them_as_it_is_stored(
    server: ServerProcess, admin: httpx.Client, link: httpx.Client
) -> None:
    t = kind()
    with new_link(server) as second, ThreadPoolExecutor(3) as pool:
        wait = {"task_types": [t], "wait_seconds": 20}
        # oldest first: the first claim is offered tasks before the next one
        first = claim_that_waits(pool, admin, link, {"capacity": 1, **wait})
        then = claim_that_waits(pool, admin, second, {"capacity": 5, **wait})
        other_type = pool.submit(link.post, "/claim", json={"capacity": 5, "task_types": [kind()], "wait_seconds": 3})
        time.sleep(0.2)
        job = submit(admin, t, frames="1-3")
        # the leases were part of the submit's transaction: when it answers, no task is left in the queue
        statuses = [x["status"] for x in admin.get(f"/jobs/{job['id']}/tasks").json()["items"]]
        assert statuses == ["assigned"] * 3
        got_first, got_then = first.result(timeout=10), then.result(timeout=10)
        assert [c["index"] for c in got_first.json()["tasks"]] == [0]
        assert [c["index"] for c in got_then.json()["tasks"]] == [1, 2]
        # checked before the 3 s lease of this module can expire and put the tasks back
        assert admin.get(f"/jobs/{job['id']}").json()["status"] == "active"
        assert other_type.result(timeout=10).json()["tasks"] == []  # offered nothing: waited its 3 s out


def test_a_waiting_claim_gets_a_resumed_job_but_not_a_paused_one_or_another_managers(
    server: ServerProcess, admin: httpx.Client, link: httpx.Client
) -> None:
    t = kind()
    with new_link(server), ThreadPoolExecutor(1) as pool:
        other_id = max(m["id"] for m in admin.get("/managers").json())  # the one just added, not `link`'s
        waiting = claim_that_waits(pool, admin, link, {"capacity": 5, "task_types": [t], "wait_seconds": 20})
        paused = submit(admin, t, frames="1-2", start_paused=True)
        bound = submit(admin, t, frames="1-2", manager_id=other_id)
        time.sleep(0.3)
        assert not waiting.done()
        r = admin.post(f"/jobs/{paused['id']}/status", json={"action": "resume"})
        assert r.status_code == 200, r.text
        statuses = {x["status"] for x in admin.get(f"/jobs/{paused['id']}/tasks").json()["items"]}
        assert statuses == {"assigned"}
        answer = waiting.result(timeout=10)
    assert [c["job_id"] for c in answer.json()["tasks"]] == [paused["id"]] * 2
    assert {x["status"] for x in admin.get(f"/jobs/{bound['id']}/tasks").json()["items"]} == {"queued"}


def test_jobs_resumed_together_are_handed_to_a_waiting_claim(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    paused = [submit(admin, t, frames="1", start_paused=True) for _ in range(2)]
    with ThreadPoolExecutor(1) as pool:
        waiting = claim_that_waits(pool, admin, link, {"capacity": 5, "task_types": [t], "wait_seconds": 20})
        # the unknown job in the middle rolls back its savepoint; the others still go out, and the claim is
        # not woken by a savepoint (it would be looking, not waiting, when the change commits)
        ids = [paused[0]["id"], 999_999, paused[1]["id"]]
        r = admin.post("/jobs/bulk", json={"ids": ids, "action": "resume"})
        assert r.status_code == 200, r.text
        assert [x["ok"] for x in r.json()["results"]] == [True, False, True]
        for job in paused:  # leased in the bulk change's own transaction
            assert {x["status"] for x in admin.get(f"/jobs/{job['id']}/tasks").json()["items"]} == {"assigned"}
        answer = waiting.result(timeout=10)
    assert sorted(c["job_id"] for c in answer.json()["tasks"]) == sorted(j["id"] for j in paused)


def test_a_requeued_task_is_handed_to_a_waiting_claim_as_it_is_requeued(
    admin: httpx.Client, link: httpx.Client
) -> None:
    t = kind()
    job = submit(admin, t, frames="1-2")
    a, b = claim(link, [t])
    done = [
        {"task_id": a["id"], "attempt": a["attempt"], "status": "completed", "worker_id": "w1", "worker_name": "w1"},
        {"task_id": b["id"], "attempt": b["attempt"], "status": "completed", "worker_id": "w1", "worker_name": "w1"},
    ]
    assert push(link, done).status_code == 200
    assert admin.get(f"/jobs/{job['id']}").json()["status"] == "completed"
    with ThreadPoolExecutor(1) as pool:
        waiting = claim_that_waits(pool, admin, link, {"capacity": 5, "task_types": [t], "wait_seconds": 20})
        assert not waiting.done()
        r = admin.post(f"/tasks/{b['id']}/status", json={"action": "requeue", "reason": "bad frame"})
        assert r.status_code == 200, r.text
        # leased in the requeue's own transaction, not at the claim's next look
        assert r.json()["status"] == "assigned"
        answer = waiting.result(timeout=10)
    assert [(c["id"], c["attempt"]) for c in answer.json()["tasks"]] == [(b["id"], b["attempt"] + 1)]
    assert task(admin, a["id"])["status"] == "completed"


def test_a_waiting_claim_whose_manager_hung_up_takes_nothing(
    server: ServerProcess, admin: httpx.Client, link: httpx.Client
) -> None:
    t = kind()
    impatient = httpx.Client(base_url=str(link.base_url), headers=dict(link.headers), timeout=1.0)
    with pytest.raises(httpx.ReadTimeout):  # the Manager gives up after 1 s, 19 s before the claim's deadline
        impatient.post("/claim", json={"capacity": 5, "task_types": [t], "wait_seconds": 20})
    impatient.close()
    time.sleep(0.2)  # the Server hears the hang-up within milliseconds
    job = submit(admin, t, frames="1-2")  # no claim waits now: nothing is leased to the one that left
    asked = time.monotonic()
    r = link.post("/claim", json={"capacity": 5, "task_types": [t], "wait_seconds": 10})
    assert r.status_code == 200, r.text
    # leased once: not first to the claim that left and given back (each lease counts an attempt)
    assert [(c["job_id"], c["attempt"]) for c in r.json()["tasks"]] == [(job["id"], 1)] * 2
    assert time.monotonic() - asked < 2


def test_batches_apply_once_by_seq_and_stale_attempts_are_refused(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    submit(admin, t, frames="1-2")
    a, b = claim(link, [t])
    lines = [f"line {i}" for i in range(12)]
    ups = [
        {"task_id": a["id"], "attempt": a["attempt"], "status": "active", "worker_id": "w1", "worker_name": "w1"},
        {"task_id": a["id"], "attempt": a["attempt"], "log_tail": lines, "steps_done": 1},
    ]
    first = push(link, ups)
    assert first.status_code == 200, first.text
    seq = first.json()["last_seq"]
    again = push(link, ups, seq=seq)  # the ack was lost: the Manager sends the same batch again
    assert again.status_code == 200 and again.json()["last_seq"] == seq
    got = task(admin, a["id"])
    assert got["status"] == "active" and got["worker_name"] == "w1"
    assert got["log_tail"] == lines  # not twice
    # more lines: the Server keeps the last 20
    more = [f"more {i}" for i in range(12)]
    assert push(link, [{"task_id": a["id"], "attempt": a["attempt"], "log_tail": more}]).status_code == 200
    assert task(admin, a["id"])["log_tail"] == (lines + more)[-20:]
    # a batch that skips ahead is refused, naming the field
    gap = push(link, [], seq=seq + 10)
    assert gap.status_code == 409 and gap.json()["errors"][0]["field"] == "seq"
    # stale attempt and unknown task: the batch goes through, those updates are listed as rejected
    bad = push(
        link,
        [
            {"task_id": b["id"], "attempt": b["attempt"] - 1, "status": "completed"},
            {"task_id": 10**9, "attempt": 1, "status": "completed"},
            {"task_id": a["id"], "attempt": a["attempt"], "status": "completed"},
        ],
    )
    assert bad.status_code == 200, bad.text
    rejected = {r["task_id"]: r["reason"] for r in bad.json()["rejected"]}
    assert set(rejected) == {b["id"], 10**9}
    assert "stale" in rejected[b["id"]]
    assert task(admin, b["id"])["status"] == "assigned"
    assert task(admin, a["id"])["status"] == "completed"
    # a finished task takes no more status changes
    late = push(link, [{"task_id": a["id"], "attempt": a["attempt"], "status": "active"}])
    assert [r["task_id"] for r in late.json()["rejected"]] == [a["id"]]
    assert task(admin, a["id"])["status"] == "completed"


def test_bad_input_names_the_field(link: httpx.Client, server: ServerProcess) -> None:
    r = link.post("/claim", json={"capacity": -1})
    assert r.status_code == 422 and "capacity" in r.text
    r = link.post("/updates", json={"seq": 0})
    assert r.status_code == 422 and "seq" in r.text
    r = link.post("/updates", json={"seq": 1, "task_updates": [{"task_id": 1, "attempt": 1, "status": "bogus"}]})
    assert r.status_code == 422 and "status" in r.text
    r = httpx.post(f"{server.url}{API}/manager/claim", json={"capacity": 1}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    r = link.post("/client-token", json={"token": server.admin_token})
    assert r.status_code == 200 and r.json()["user"] == "admin"
    assert link.post("/client-token", json={"token": "not-a-token"}).status_code == 404


def test_reported_times_are_made_utc_and_one_with_no_utc_equivalent_is_refused_naming_it(
    admin: httpx.Client, link: httpx.Client
) -> None:
    """A time whose offset takes it out of datetime's range stopped the Manager's every later batch (a 500 on
    each resend) or, stored on PostgreSQL as a date BC, every job listing; one with an offset was stored on
    SQLite as if it were UTC."""
    ttype = kind()
    submit(admin, ttype, frames="1")
    (t,) = claim(link, [ttype])
    no_utc = "0001-01-01T00:00:00+14:00"
    for field in ("time", "started"):
        update = {"task_id": t["id"], "attempt": t["attempt"], "status": "active", field: no_utc}
        r = push(link, [update], seq=link.seq + 1)  # type: ignore[attr-defined]
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [f"task_updates.0.{field}"]
    report = {**worker_report("w", ttype), "last_seen": no_utc}
    r = push(link, [], seq=link.seq + 1, workers=[report])  # type: ignore[attr-defined]
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["workers.0.last_seen"], r.text
    # a minute ago, at +05:00 (a start long before the job's submission would be moved up to it)
    began = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0)
    five = timezone(timedelta(hours=5))
    started, ended = began.astimezone(five).isoformat(), (began + timedelta(seconds=2)).astimezone(five).isoformat()
    assert started.endswith("+05:00")
    update = {"task_id": t["id"], "attempt": t["attempt"], "status": "completed", "started": started, "time": ended}
    assert push(link, [update]).status_code == 200
    got = task(admin, t["id"])
    utc = "%Y-%m-%dT%H:%M:%SZ"
    assert (got["status"], got["started"], got["finished"]) == (
        "completed",
        began.strftime(utc),
        (began + timedelta(seconds=2)).strftime(utc),
    )
    assert admin.get("/jobs").status_code == 200


def test_a_workers_name_and_tags_are_made_ones_a_worker_may_sign_on_with(
    admin: httpx.Client, link: httpx.Client
) -> None:
    """The rule of the Manager's worker routes holds at the Server too, without refusing a report: a name with a
    line break or a right-to-left override (or one a Manager kept from before the rule, `Render Node 1`) is kept
    with each run of other characters a dash, wherever a Manager reports one; a tag likewise is its tag."""
    ttype = kind()
    submit(admin, ttype, frames="1")
    (t,) = claim(link, [ttype])
    evil = "evil\n\u202egnp.exe"
    report = {**worker_report("w", ttype), "name": evil, "tags": ["rtx 4090\n", "gpu"]}
    assert push(link, [], workers=[report]).status_code == 200
    (got,) = [w for w in admin.get("/workers").json() if w["id"] == report["id"]]
    assert got["name"] == "evil-gnp.exe" and sorted(got["tags"]) == ["gpu", "rtx-4090"]
    update = {"task_id": t["id"], "attempt": t["attempt"], "status": "active", "worker_id": report["id"],
              "worker_name": "Render Node 1"}  # fmt: skip
    assert push(link, [update]).status_code == 200
    assert task(admin, t["id"])["worker_name"] == "Render-Node-1"
    image = {"content_type": "image/jpeg", "width": 4, "height": 4, "data": "/9j/4A==", "frame_path": "/r/f.png"}
    preview = {"task_id": t["id"], "job_id": t["job_id"], "worker_id": report["id"], "worker_name": evil,
               "time": "2026-01-01T00:00:00Z", "preview": image}  # fmt: skip
    assert push(link, [], previews=[preview]).status_code == 200
    shown = admin.get(f"/jobs/{t['job_id']}/last-rendered/info").json()
    assert shown["worker_name"] == "evil-gnp.exe", shown


def test_cancel_reaches_the_manager_in_the_ack(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    job = submit(admin, t, frames="1")
    (c,) = claim(link, [t])
    assert push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "active"}]).status_code == 200
    r = admin.post(f"/jobs/{job['id']}/status", json={"action": "cancel"})
    assert r.status_code == 200, r.text
    ack = push(link, []).json()
    assert ack["cancel_task_ids"] == [c["id"]]
    assert push(link, []).json()["cancel_task_ids"] == []  # delivered once
    # the Manager's report settles the running task as canceled
    settle = push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "canceled"}])
    assert settle.json()["rejected"] == []
    assert task(admin, c["id"])["status"] == "canceled"


@pytest.mark.parametrize(
    ("action", "doing", "done", "ends"),
    [("cancel", "canceling", "canceled", "canceled"), ("pause", "pausing", "paused", "completed")],
)
def test_a_jobs_activity_follows_its_running_tasks_as_they_stop(
    admin: httpx.Client, link: httpx.Client, action: str, doing: str, done: str, ends: str
) -> None:
    """Before, the activity said "canceling: 2 tasks still running" for ever after the job was canceled. A
    cancel stops running tasks; a pause lets them finish."""
    t = kind()
    job = submit(admin, t, frames="1-3")
    running = claim(link, [t], capacity=2)
    active = [{"task_id": c["id"], "attempt": c["attempt"], "status": "active"} for c in running]
    assert push(link, active).status_code == 200
    assert admin.post(f"/jobs/{job['id']}/status", json={"action": action}).status_code == 200
    got = admin.get(f"/jobs/{job['id']}").json()
    assert (got["status"], got["activity"]) == (f"{action}-requested", f"{doing}: 2 tasks still running")
    first, second = running
    assert push(link, [{"task_id": first["id"], "attempt": first["attempt"], "status": ends}]).status_code == 200
    got = admin.get(f"/jobs/{job['id']}").json()
    assert (got["status"], got["activity"]) == (f"{action}-requested", f"{doing}: 1 task still running")
    assert push(link, [{"task_id": second["id"], "attempt": second["attempt"], "status": ends}]).status_code == 200
    got = admin.get(f"/jobs/{job['id']}").json()
    assert (got["status"], got["activity"]) == (done, f"{done}: no task still running")


def test_a_priority_change_reaches_the_managers_holding_tasks_of_the_job(
    server: ServerProcess, admin: httpx.Client, link: httpx.Client
) -> None:
    t = kind()
    held = submit(admin, t, frames="1-2")
    assert len(claim(link, [t], capacity=1)) == 1  # this Manager holds one task of the job
    unheld = submit(admin, t + "x", frames="1")
    r = admin.post(f"/jobs/{held['id']}/priority", json={"priority": 90})
    assert r.status_code == 200, r.text
    r = admin.post(f"/jobs/{held['id']}/priority", json={"priority": 95})  # the latest one is what counts
    assert r.status_code == 200, r.text
    assert admin.post(f"/jobs/{unheld['id']}/priority", json={"priority": 10}).status_code == 200
    with new_link(server) as other:  # holds nothing of the job: told nothing
        assert push(other, []).json()["job_priorities"] == []
    ack = push(link, [])
    assert ack.status_code == 200, ack.text
    assert ack.json()["job_priorities"] == [{"job_id": held["id"], "priority": 95}]
    assert push(link, []).json()["job_priorities"] == []  # delivered once


def worker_report(name: str, task_type: str, status: str = "awake") -> dict[str, Any]:
    return {"id": f"{name}-{uuid.uuid4().hex[:6]}", "name": name, "platform": "linux", "task_types": [task_type],
            "tags": [], "status": status}  # fmt: skip


def test_a_task_no_worker_of_its_manager_may_run_goes_to_another_manager_or_fails_with_the_reason(
    server: ServerProcess, admin: httpx.Client, link: httpx.Client
) -> None:
    t = kind()
    job = submit(admin, t, frames="1-2", max_task_failures=5)
    a, b = claim(link, [t])
    failed_a = {"task_id": a["id"], "attempt": a["attempt"], "status": "soft-failed", "failure_count": 1}
    back = [{"task_id": x["id"], "attempt": x["attempt"], "status": "queued", "unrunnable_here": True} for x in (a, b)]
    with new_link(server) as other:
        # another Manager with an awake worker of this type: the tasks wait for it
        assert push(other, [], workers=[worker_report("o1", t)]).status_code == 200
        r = push(link, [failed_a, *back])
        assert r.status_code == 200 and r.json()["rejected"] == [], r.text
        assert task(admin, a["id"])["status"] == "queued"
        assert claim(link, [t]) == []  # never offered again to the Manager that gave them back
        got = claim(other, [t])
        assert sorted(c["id"] for c in got) == [a["id"], b["id"]]
        # the other Manager's workers are blocklisted too: nobody is left, the task fails with the reason
        ga, _gb = sorted(got, key=lambda c: c["id"])
        r = push(other, [{"task_id": ga["id"], "attempt": ga["attempt"], "status": "queued", "unrunnable_here": True}])
        assert r.status_code == 200, r.text
    failed = task(admin, ga["id"])
    assert failed["status"] == "failed"
    assert "no worker may run it" in failed["activity"]
    log = admin.get(f"/jobs/{job['id']}/log").json()
    entries = log["items"] if isinstance(log, dict) else log
    assert any("no worker may run it" in e["message"] for e in entries)
    # a requeue (after a fix) lets the first Manager try again
    assert admin.post(f"/jobs/{job['id']}/status", json={"action": "requeue"}).status_code == 200
    again = claim(link, [t])
    assert ga["id"] in [c["id"] for c in again]


def test_requeueing_a_failed_job_tells_every_manager_to_forget_its_blocklist(
    admin: httpx.Client, link: httpx.Client
) -> None:
    t = kind()
    job = submit(admin, t, frames="1", max_task_failures=1)
    (c,) = claim(link, [t])
    failed = push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "failed"}])
    assert failed.status_code == 200 and failed.json()["reset_blocklist_job_ids"] == []
    assert admin.get(f"/jobs/{job['id']}").json()["status"] == "failed"
    r = admin.post(f"/jobs/{job['id']}/status", json={"action": "requeue"})
    assert r.status_code == 200, r.text
    assert push(link, []).json()["reset_blocklist_job_ids"] == [job["id"]]
    assert push(link, []).json()["reset_blocklist_job_ids"] == []  # delivered once
    assert [x["id"] for x in claim(link, [t])] == [c["id"]]


def test_a_task_of_a_job_failed_by_another_task_is_not_requeued_alone(admin: httpx.Client, link: httpx.Client) -> None:
    """From a hostile-input audit: the requeue answered 200, the job went requeueing → queued → failed again at
    once for the failed task left, and canceled the requeued one: nothing changed but four log lines."""
    t = kind()
    job = submit(admin, t, frames="1-3", max_task_failures=1)
    first, *_ = claim(link, [t], capacity=1)
    assert push(link, [{"task_id": first["id"], "attempt": first["attempt"], "status": "failed"}]).status_code == 200
    tasks = admin.get(f"/jobs/{job['id']}/tasks").json()["items"]
    canceled = next(x for x in tasks if x["status"] == "canceled")
    log_before = admin.get(f"/jobs/{job['id']}/log").json()
    r = admin.post(f"/tasks/{canceled['id']}/status", json={"action": "requeue"})
    assert r.status_code == 409 and [e["field"] for e in r.json()["errors"]] == ["status"], r.text
    assert "requeue-failed" in r.json()["detail"]
    assert admin.get(f"/jobs/{job['id']}/log").json() == log_before
    assert (task(admin, canceled["id"])["status"], admin.get(f"/jobs/{job['id']}").json()["status"]) == (
        "canceled", "failed"
    )  # fmt: skip
    r = admin.post(f"/tasks/{first['id']}/status", json={"action": "requeue"})  # the failed one itself: it may
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text
    assert admin.get(f"/jobs/{job['id']}").json()["status"] != "failed"


@pytest.mark.timeout(60)
def test_expired_leases_requeue_and_a_started_task_counts_a_failure(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    submit(admin, t, frames="1-2")
    started, idle = claim(link, [t])
    assert (
        push(link, [{"task_id": started["id"], "attempt": started["attempt"], "status": "active"}]).status_code == 200
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if task(admin, started["id"])["status"] == "queued" and task(admin, idle["id"])["status"] == "queued":
            break
        time.sleep(0.5)
    s, i = task(admin, started["id"]), task(admin, idle["id"])
    # each still names the Manager it was taken from, which may report its run late or claim it back
    assert (s["status"], s["failure_count"]) == ("queued", 1) and s["manager_id"] is not None
    assert (i["status"], i["failure_count"], i["manager_id"]) == ("queued", 0, s["manager_id"])
    again = claim(link, [t])
    assert {c["id"]: (c["attempt"], c["resumes_attempt"]) for c in again} == {started["id"]: (2, 1), idle["id"]: (2, 1)}
    late = push(link, [{"task_id": started["id"], "attempt": started["attempt"], "status": "completed"}])
    assert [r["task_id"] for r in late.json()["rejected"]] == [started["id"]]  # the new hand-out is the one now


def test_renewed_leases_do_not_expire(admin: httpx.Client, link: httpx.Client) -> None:
    t = kind()
    submit(admin, t, frames="1")
    (c,) = claim(link, [t])
    for _ in range(8):  # 8 s, well past the 3 s lease and a sweep
        assert push(link, [], held_task_ids=[c["id"]]).status_code == 200
        time.sleep(1.0)
    assert task(admin, c["id"])["status"] == "assigned"


def test_a_server_stopped_for_longer_than_a_lease_gives_the_managers_a_lease_period_when_it_resumes(
    admin: httpx.Client, link: httpx.Client, server: ServerProcess
) -> None:
    """A paused VM or a frozen process: the leases' wall-clock times ran on while it did not, and its first sweep
    at resumption expired them all before the Managers' waiting batches arrived, so finished work ran again."""
    t = kind()
    submit(admin, t, frames="1-2")
    running, waiting = claim(link, [t])
    first = {"task_id": running["id"], "attempt": running["attempt"], "status": "active", "worker_id": "w1"}
    assert push(link, [first], held_task_ids=[running["id"], waiting["id"]]).status_code == 200
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(LEASE + 5.0)  # past the lease, and past what the Server takes for a stall (5 s + a quarter lease)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    time.sleep(1.0)  # its overdue sweep runs at once
    done = {"task_id": running["id"], "attempt": running["attempt"], "status": "completed", "worker_id": "w1"}
    ack = push(link, [done], held_task_ids=[waiting["id"]])
    assert ack.status_code == 200 and ack.json()["rejected"] == [], ack.text
    r, w = task(admin, running["id"]), task(admin, waiting["id"])
    assert (r["status"], r["failure_count"]) == ("completed", 0)
    assert (w["status"], w["attempt"]) == ("assigned", waiting["attempt"])
    assert "did not run for" in server.log_path.read_text()


def test_full_log_upload(link: httpx.Client, admin: httpx.Client, server: ServerProcess, tmp_path: Path) -> None:
    t = kind()
    submit(admin, t, frames="1")
    (c,) = claim(link, [t])

    def upload() -> httpx.Response:
        return link.post(f"/tasks/{c['id']}/log", content=b"all\nthe\nlines\n", headers={"Content-Type": "text/plain"})

    r = upload()  # nobody asked: a Manager cannot fill the Server's disk
    assert r.status_code == 409 and r.json()["errors"][0]["field"] == "id", r.text
    assert "did not ask" in r.json()["detail"]
    assert list(server.data_dir.glob(f"task-logs/*/task-{c['id']}.log")) == []
    ask_for_log(admin, link, c["id"])
    r = upload()
    assert r.status_code == 204, r.text
    stored = list(server.data_dir.glob(f"task-logs/*/task-{c['id']}.log"))
    assert [p.read_text() for p in stored] == ["all\nthe\nlines\n"]
    assert upload().status_code == 204  # a retry after a lost answer
    assert list((server.data_dir / "task-logs" / "uploads").iterdir()) == []
    # no such task is not one this Manager holds either: the same 409, telling no Manager which ids exist
    assert link.post("/tasks/999999999/log", content=b"x").status_code == 409


def test_a_finished_tasks_log_copied_after_it_finished_is_not_uploaded_again(
    link: httpx.Client, admin: httpx.Client, server: ServerProcess
) -> None:
    """Any user could have the Manager upload the same 32 MiB again after each delivery."""
    t = kind()
    submit(admin, t, frames="1")
    (c,) = claim(link, [t])
    assert push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "completed"}]).status_code == 200
    ask_for_log(admin, link, c["id"])
    assert link.post(f"/tasks/{c['id']}/log", content=b"the whole log\n").status_code == 204
    ask_for_log(admin, link, c["id"])  # just after the end: its last lines may still come, so it is asked again
    assert link.post(f"/tasks/{c['id']}/log", content=b"the whole log\nand its last line\n").status_code == 204
    (copy,) = server.data_dir.glob(f"task-logs/*/task-{c['id']}.log")
    later = copy.stat().st_mtime + 120  # as received two minutes after the task finished
    os.utime(copy, (later, later))
    r = admin.post(f"/tasks/{c['id']}/log/request")
    assert r.status_code == 202 and r.json()["requested"] is False, r.text
    assert c["id"] not in push(link, []).json()["upload_log_task_ids"]
    assert admin.get(f"/tasks/{c['id']}/log").text == "the whole log\nand its last line\n"


def ask_for_log(admin: httpx.Client, link: httpx.Client, task_id: int) -> None:
    """A user asks for the task's full log; the Manager hears of it in the answer to its next batch."""
    assert admin.post(f"/tasks/{task_id}/log/request").status_code == 202
    ack = push(link, [])
    assert ack.status_code == 200 and task_id in ack.json()["upload_log_task_ids"], ack.text


@pytest.mark.parametrize("limit", [7, 10, 64])
def test_the_servers_copy_of_a_log_pages_forward_whole(link: httpx.Client, admin: httpx.Client, limit: int) -> None:
    """Each page after the first lost its first line (every part was begun at the line after its start)."""
    t = kind()
    submit(admin, t, frames="1")
    (c,) = claim(link, [t])
    whole = "".join(f"line {i}\n" for i in range(40)) + "é🎬日" * 9 + "\nthe last, unfinished"
    ask_for_log(admin, link, c["id"])
    assert link.post(f"/tasks/{c['id']}/log", content=whole.encode()).status_code == 204
    pages, after = [], 0
    for _ in range(200):
        r = admin.get(f"/tasks/{c['id']}/log", params={"after": after, "limit": limit})
        assert r.status_code == 200, r.text
        if not r.content:
            break
        assert int(r.headers["X-Log-First"]) == after
        pages.append(r.content.decode())  # each page whole characters: a line longer than `limit` too
        after = int(r.headers["X-Log-Last"])
    assert "".join(pages) == whole
    assert all(p.endswith("\n") or "\n" not in p for p in pages[:-1])  # at a line's end, or a long line's piece


def _report(worker_id: str) -> dict[str, Any]:
    return {"id": worker_id, "name": worker_id, "platform": "linux", "task_types": ["exec"], "tags": [],
            "status": "awake"}  # fmt: skip


def test_a_waiting_claim_ends_when_instructions_for_its_manager_appear(
    admin: httpx.Client, link: httpx.Client, server: ServerProcess
) -> None:
    t = kind()
    job = submit(admin, t, frames="1")
    (c,) = claim(link, [t])
    worker = f"w-{uuid.uuid4().hex[:8]}"
    ack = push(link, [{"task_id": c["id"], "attempt": c["attempt"], "status": "active"}], workers=[_report(worker)])
    assert ack.status_code == 200, ack.text
    waiting = {"task_types": [kind()], "wait_seconds": 20}
    with new_link(server) as other, ThreadPoolExecutor(3) as pool:
        for_tasks = pool.submit(link.post, "/claim", json={"capacity": 5, **waiting})
        for_nothing = pool.submit(link.post, "/claim", json={"capacity": 0, "wait_seconds": 20})
        another_managers = pool.submit(other.post, "/claim", json={"capacity": 0, "wait_seconds": 2})
        time.sleep(0.5)
        assert not for_tasks.done() and not for_nothing.done()
        asked = time.monotonic()
        assert admin.post(f"/jobs/{job['id']}/status", json={"action": "cancel"}).status_code == 200
        answers = [for_tasks.result(timeout=10), for_nothing.result(timeout=10)]
        assert time.monotonic() - asked < 5  # not the 20 s the claims were allowed to wait
        for r in answers:
            assert r.status_code == 200 and r.json()["instructions"] is True and r.json()["tasks"] == [], r.text
        assert another_managers.result(timeout=10).json()["instructions"] is False  # not its instructions

    # undelivered one-shot instructions: a claim that may wait says so at once
    r = link.post("/claim", json={"capacity": 0, "wait_seconds": 20})
    assert r.json()["instructions"] is True
    assert push(link, []).json()["cancel_task_ids"] == [c["id"]]

    # a wrangler's request to a worker is repeated in every answer until done: a claim ends only when it is new
    with ThreadPoolExecutor(1) as pool:
        waiting_claim = pool.submit(link.post, "/claim", json={"capacity": 0, "wait_seconds": 20})
        time.sleep(0.5)
        r = admin.post(f"/workers/{worker}/status-request", json={"status": "asleep"})
        assert r.status_code == 200, r.text
        assert waiting_claim.result(timeout=10).json()["instructions"] is True
    assert [i["status"] for i in push(link, []).json()["worker_requests"]] == ["asleep"]
    started = time.monotonic()
    r = link.post("/claim", json={"capacity": 0, "wait_seconds": 1})
    assert r.json()["instructions"] is False and time.monotonic() - started >= 0.9  # known already: waited
    # a claim that may not wait is not told: its Manager is busy and sends batches anyway
    assert admin.post(f"/tasks/{c['id']}/log/request").status_code in (202, 409)
    assert link.post("/claim", json={"capacity": 1, "task_types": [t]}).json()["instructions"] is False


def test_a_claim_waiting_when_the_server_stops_is_answered_503_not_500(tmp_path: Path) -> None:
    """uvicorn cancels the requests still open a moment after SIGTERM: a waiting claim was a 500 and a traceback
    ('Exception in ASGI application') at every restart."""
    srv = ServerProcess(data_dir=tmp_path / "s", database_url=None).start()
    try:
        with new_link(srv) as link, ThreadPoolExecutor(1) as pool:
            admin = httpx.Client(base_url=srv.url + API, headers=srv.headers(), timeout=30)
            answer = claim_that_waits(pool, admin, link, {"capacity": 1, "task_types": [kind()], "wait_seconds": 20})
            assert srv.proc is not None
            srv.proc.send_signal(signal.SIGTERM)
            r = answer.result(timeout=30)
            admin.close()
        assert r.status_code == 503, r.text
        assert r.json()["detail"] == "the service is stopping; try again in a moment" and "retry-after" in r.headers
        assert srv.proc.wait(30) in (0, -signal.SIGTERM)
        assert "Exception in ASGI application" not in srv.log_path.read_text()
    finally:
        srv.stop()


def test_pages_of_the_servers_copy_smaller_than_a_character_hold_whole_characters(
    link: httpx.Client, admin: httpx.Client
) -> None:
    """`limit=1` served half of a character (invalid UTF-8), forward and backward; a page always holds a whole one."""
    t = kind()
    submit(admin, t, frames="1")
    (c,) = claim(link, [t])
    whole = "aé🎬日\n" * 3 + "日🎬é"
    ask_for_log(admin, link, c["id"])
    assert link.post(f"/tasks/{c['id']}/log", content=whole.encode()).status_code == 204
    for limit in (1, 2, 3):
        forward, after = [], 0
        for _ in range(100):
            r = admin.get(f"/tasks/{c['id']}/log", params={"after": after, "limit": limit})
            if not r.content:
                break
            forward.append(r.content.decode())  # raises on half a character
            after = int(r.headers["X-Log-Last"])
        assert "".join(forward) == whole, (limit, forward)
        backward, before = [], len(whole.encode())
        for _ in range(100):
            r = admin.get(f"/tasks/{c['id']}/log", params={"before": before, "limit": limit})
            backward.append(r.content.decode())
            before = int(r.headers["X-Log-First"])
            if r.headers["X-Log-Earlier"] == "0":
                break
        assert "".join(reversed(backward)) == whole, (limit, backward)
    r = admin.get(f"/tasks/{c['id']}/log", params={"tail": 1})
    assert r.content.decode() == "é" and int(r.headers["X-Log-First"]) == len(whole.encode()) - 2
    r = admin.get(f"/tasks/{c['id']}/log", params={"after": 2, "limit": 1})  # inside the é
    assert r.content.decode() == "🎬" and r.headers["X-Log-First"] == "3", r.content


def _worker_pages(admin: httpx.Client, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    for _ in range(1000):
        r = admin.get("/workers", params=params)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        if "X-Next-Cursor" not in r.headers:
            return pages
        params["cursor"] = r.headers["X-Next-Cursor"]
    raise AssertionError("the workers' pages never ended")


def test_the_workers_list_comes_a_page_at_a_time_each_worker_once_in_order(
    admin: httpx.Client, link: httpx.Client
) -> None:
    """A big farm's thousands of workers were one unbounded answer: pages of `limit`, joined by `X-Next-Cursor`,
    hold every worker once, by name then id (two workers share a name here)."""
    tag = uuid.uuid4().hex[:6]
    ours = [{**_report(f"pg-{tag}-{i}"), "name": f"pg-{tag}-{min(i, 3)}"} for i in range(5)]
    assert push(link, [], workers=ours).status_code == 200
    whole = admin.get("/workers")  # no parameters: the first page of the default size, every worker here
    assert whole.status_code == 200 and "X-Next-Cursor" not in whole.headers, whole.headers
    pages = _worker_pages(admin, 2)
    assert all(len(p) == 2 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    joined = [w["id"] for p in pages for w in p]
    assert joined == [w["id"] for w in whole.json()]
    assert len(set(joined)) == len(joined)
    mine = [w for w in joined if w.startswith(f"pg-{tag}-")]
    assert mine == [f"pg-{tag}-{i}" for i in range(5)]  # by name, then id for the two named pg-...-3
    keys = [(w["name"], w["id"]) for p in pages for w in p if w["id"] in mine]
    assert keys == sorted(keys)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "nonsense"}, "cursor"),
     ({"cursor": "WzEsMl0"}, "cursor"), ({"cursor": "x" * 2001}, "cursor")],
)  # fmt: skip
def test_a_workers_page_out_of_range_or_a_cursor_not_handed_out_is_a_422_naming_it(
    admin: httpx.Client, params: dict[str, Any], field: str
) -> None:
    r = admin.get("/workers", params=params)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field], r.text
