"""The Manager's faults to survive, with real processes on 127.0.0.1: a Server outage (10 s: long enough for
the Manager's back-off to reach its 5 s cap), a Manager killed with SIGKILL and restarted, and a worker whose
heartbeats stop (its late update gets 409)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.manager.store.check import store_path
from tests.integration.test_manager_basics import exec_job, job_tasks, submit
from tests.support.manager import API, ManagerProcess, ScriptedWorker, WorkerFactory, add_manager, worker_factory
from tests.support.services import ROOT, ServerProcess, child_env
from tests.support.waiting import wait_for

LINES = 25  # more than the Server's log tail keeps (20)
OUTAGE = 10.0  # seconds the Server is away; the Manager's back-off reaches its cap (5 s) well within it


def lines_of(task: dict[str, Any], worker: str) -> list[str]:
    return [f"{task['name']} {worker} line {i}" for i in range(LINES)]


def run(w: ScriptedWorker, task: dict[str, Any], *, retry_for: float = 0.0) -> None:
    """Report the task done like a Worker would: active, log lines, completed; resend from its buffer."""
    a = task["handout"]
    ups = [
        w.update(handout=a, status="active"),
        w.update(handout=a, log_lines=lines_of(task, w.name), steps_done=1),
        w.update(handout=a, status="completed"),
    ]
    send_until_accepted(w, task["id"], ups, retry_for)


def send_until_accepted(w: ScriptedWorker, task_id: int, ups: list[dict[str, Any]], retry_for: float) -> None:
    deadline = time.monotonic() + retry_for
    while True:
        try:
            r = w.send(task_id, ups)
            assert r.status_code == 200, r.text
            assert r.json()["last_seq"] == ups[-1]["seq"]
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def server_events(server: ServerProcess) -> list[dict[str, Any]]:
    """Every event the Server recorded (reads the SSE stream until it goes quiet)."""
    out: list[dict[str, Any]] = []
    timeout = httpx.Timeout(10.0, read=1.5)
    try:
        with httpx.stream("GET", f"{server.url}{API}/events?after=0", headers=server.headers(), timeout=timeout) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    out.append(json.loads(line[6:]))
    except httpx.ReadTimeout:
        pass
    return out


def assert_server_view_complete(server: ServerProcess, job_id: int, done_by: dict[int, str]) -> None:
    """Every task completed once, by the worker that did it, with exactly its last 20 log lines."""

    def all_done() -> list[dict[str, Any]] | None:
        tasks = job_tasks(server, job_id)
        return tasks if all(t["status"] == "completed" for t in tasks) else None

    tasks = wait_for(all_done, timeout=30, what="every task completed at the Server")
    assert {t["id"] for t in tasks} == set(done_by)
    for t in tasks:
        full = httpx.get(f"{server.url}{API}/tasks/{t['id']}", headers=server.headers()).json()
        assert full["worker_name"] == done_by[t["id"]]
        assert full["log_tail"] == lines_of(full, done_by[t["id"]])[-20:], "log tail lost or applied twice"
    job = httpx.get(f"{server.url}{API}/jobs/{job_id}", headers=server.headers()).json()
    assert job["status"] == "completed"
    assert job["tasks_completed"] == len(done_by)
    completed = Counter(
        e["data"]["id"]
        for e in server_events(server)
        if e["type"] == "task-updated" and e["data"]["status"] == "completed" and e["data"]["job_id"] == job_id
    )
    assert completed == Counter({tid: 1 for tid in done_by}), "a completion was applied twice or not at all"


@pytest.fixture
def new_worker() -> Iterator[WorkerFactory]:
    with worker_factory() as make:
        yield make


@pytest.fixture
def server(tmp_path: Path):
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    yield srv
    srv.stop()


@pytest.fixture
def stop_at_end() -> Iterator[list[ManagerProcess]]:
    """Managers a test starts itself: stopped at its end even when an assertion failed half-way."""
    started: list[ManagerProcess] = []
    yield started
    for mgr in started:
        mgr.stop()


@pytest.mark.timeout(180)
def test_server_away_for_10_s_loses_nothing(
    server: ServerProcess, tmp_path: Path, new_worker: WorkerFactory, stop_at_end: list[ManagerProcess]
) -> None:
    mgr = ManagerProcess(
        server.url, add_manager(server, "m1"), tmp_path / "manager", extra_args=("--prefetch-margin", "30")
    ).start()
    stop_at_end.append(mgr)
    job = submit(server, exec_job("outage", frames="1-24"))
    workers = [new_worker(mgr, f"w{i}") for i in range(2)]
    for w in workers:
        w.sign_on()
    done_by: dict[int, str] = {}
    for w in workers:  # some work while the Server is there
        task = w.next_task()
        assert task is not None
        run(w, task)
        done_by[task["id"]] = w.name
    # let the Manager prefetch for both workers plus its margin before the Server goes away
    time.sleep(1.0)
    server.stop()
    away = time.monotonic()
    during = 0
    while time.monotonic() - away < OUTAGE:
        got = False
        for w in workers:
            task = w.next_task(wait=0.5)
            if task is None:
                continue
            run(w, task)
            done_by[task["id"]] = w.name
            during += 1
            got = True
        if not got:
            time.sleep(0.4)
    assert during >= 20, f"the Manager handed out only {during} held tasks while the Server was away"
    server.start()
    while len(done_by) < 24:
        for w in workers:
            task = w.next_task(wait=5)
            if task is not None:
                run(w, task)
                done_by[task["id"]] = w.name
    assert_server_view_complete(server, job["id"], done_by)
    assert "the Server refused" not in mgr.log_text()  # no update or batch was turned away
    mgr.stop()


@pytest.mark.timeout(180)
def test_manager_killed_and_restarted_resumes_from_its_store(
    quick_lease_server: ServerProcess, tmp_path: Path, new_worker: WorkerFactory, stop_at_end: list[ManagerProcess]
) -> None:
    # a claim the Server answered just before the kill leased tasks the new Manager never heard of: they come
    # back when that lease expires (60 s by default; 10 s here, far longer than the restart takes)
    server = quick_lease_server
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "manager").start()
    stop_at_end.append(mgr)
    job = submit(server, exec_job("sigkill", frames="1-8"))
    a, b = new_worker(mgr, "a"), new_worker(mgr, "b")
    a.sign_on()
    b.sign_on()
    done_by: dict[int, str] = {}
    ta, tb = a.next_task(), b.next_task()
    assert ta is not None and tb is not None
    # a finishes its task: accepted (200) and so durable, even though the Manager dies right after
    run(a, ta)
    done_by[ta["id"]] = "a"
    # b is half-way: active and some lines accepted ...
    first = [
        b.update(handout=tb["handout"], status="active"),
        b.update(handout=tb["handout"], log_lines=lines_of(tb, "b")[:10]),
    ]
    assert b.send(tb["id"], first).status_code == 200
    mgr.kill()
    # ... and the rest waits in b's buffer while the Manager is down
    rest = [
        b.update(handout=tb["handout"], log_lines=lines_of(tb, "b")[10:]),
        b.update(handout=tb["handout"], status="completed"),
    ]
    with pytest.raises(httpx.TransportError):
        b.send(tb["id"], rest)
    mgr.start()
    # b never heard the answer to its first batch either: resending it stores nothing twice
    r = b.send(tb["id"], first)
    assert r.status_code == 200 and r.json()["last_seq"] == first[-1]["seq"]
    send_until_accepted(b, tb["id"], rest, retry_for=10)
    done_by[tb["id"]] = "b"
    log = httpx.get(f"{mgr.url}{API}/tasks/{tb['id']}/log", headers=server.headers()).text
    assert log.splitlines() == lines_of(tb, "b")
    while len(done_by) < 8:
        for w in (a, b):
            task = w.next_task(wait=5)
            if task is not None:
                run(w, task)
                done_by[task["id"]] = w.name
    assert_server_view_complete(server, job["id"], done_by)
    mgr.stop()


@pytest.mark.timeout(120)
def test_worker_without_heartbeat_loses_its_task_and_its_late_update_gets_409(
    server: ServerProcess, tmp_path: Path, new_worker: WorkerFactory, stop_at_end: list[ManagerProcess]
) -> None:
    mgr = ManagerProcess(
        server.url, add_manager(server, "m1"), tmp_path / "manager", env={"TABLAO_WORKER_TIMEOUT": "2"}
    ).start()
    stop_at_end.append(mgr)
    job = submit(server, exec_job("timeout", frames="1"))
    slow, other = new_worker(mgr, "slow"), new_worker(mgr, "other")
    slow.sign_on()
    task = slow.next_task()
    assert task is not None
    started = slow.update(handout=task["handout"], status="active", log_lines=["slow started"])
    assert slow.send(task["id"], [started]).status_code == 200
    other.sign_on()
    # `other` keeps its heartbeats up and waits; `slow` goes silent
    again = None
    deadline = time.monotonic() + 15
    while again is None and time.monotonic() < deadline:
        assert other.heartbeat().status_code == 200
        again = other.next_task(wait=1)
    assert again is not None, "the silent worker's task was not requeued"
    assert again["id"] == task["id"] and again["handout"] != task["handout"]
    # the late update of the first hand-out is refused and changes nothing
    late = slow.send(task["id"], [slow.update(handout=task["handout"], status="completed", log_lines=["late"])])
    assert late.status_code == 409, late.text
    assert "task_id" in late.text or "handout" in late.text
    may = slow.http.get(f"/tasks/{task['id']}/may-i-run", params={"handout": task["handout"]}).json()
    assert may["may_keep_running"] is False
    run(other, again)
    assert_server_view_complete(server, job["id"], {task["id"]: "other"})
    full = httpx.get(f"{server.url}{API}/tasks/{task['id']}", headers=server.headers()).json()
    assert full["failure_count"] == 1  # it had started: the timeout counts as a soft failure
    log = httpx.get(f"{mgr.url}{API}/tasks/{task['id']}/log", headers=server.headers()).text
    assert "late" not in log and "slow started" in log
    workers = httpx.get(f"{server.url}{API}/workers", headers=server.headers()).json()
    items = workers["items"] if isinstance(workers, dict) else workers
    assert {w["name"] for w in items} >= {"slow", "other"}
    mgr.stop()


@pytest.mark.timeout(120)
def test_an_update_the_server_refuses_for_good_is_dropped_and_the_rest_goes_on(
    server: ServerProcess, tmp_path: Path, new_worker: WorkerFactory, stop_at_end: list[ManagerProcess]
) -> None:
    """An update in the Manager's store that the Server will never take (here a NUL in a log line, which an
    older Manager stored and the Server now refuses with 422): the Manager drops it and sends the rest, rather
    than the same batch for ever with every later update behind it."""
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "manager").start()
    stop_at_end.append(mgr)
    job = submit(server, exec_job("poison", frames="1-3"))
    w = new_worker(mgr, "w")
    w.sign_on()
    first = w.next_task()
    assert first is not None
    run(w, first)
    mgr.stop()
    poison = {"task_id": first["id"], "attempt": 1, "log_tail": ["a\x00b"]}
    with sqlite3.connect(store_path(mgr.data_dir)) as store:
        store.execute("INSERT INTO outbox (task_id, body) VALUES (?, ?)", (first["id"], json.dumps(poison)))
    mgr.start()
    done_by = {first["id"]: "w"}
    while len(done_by) < 3:
        task = w.next_task(wait=5)
        if task is not None:
            run(w, task)
            done_by[task["id"]] = "w"
    assert_server_view_complete(server, job["id"], done_by)
    wait_for(lambda: "refused an update of task" in mgr.log_text(), what="the Manager's note of the dropped update")


def test_a_second_manager_on_a_running_managers_data_dir_is_refused_and_leaves_its_store_alone(
    server: ServerProcess, tmp_path: Path, stop_at_end: list[ManagerProcess]
) -> None:
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "manager").start()
    stop_at_end.append(mgr)
    assert mgr.proc is not None
    files = sorted(p.name for p in mgr.data_dir.iterdir())
    # --fresh-store sets a damaged store aside: never the store of a Manager that is running
    second = subprocess.run(
        [sys.executable, "-m", "services.manager.cli", "--server", server.url,
         "--token-file", str(tmp_path / "manager.token"), "--data-dir", str(mgr.data_dir), "--port", "0",
         "--fresh-store"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert second.returncode == 2, second.stderr
    assert f"another Manager (process {mgr.proc.pid}) is running with the data directory" in second.stderr
    assert "Traceback" not in second.stderr
    assert sorted(p.name for p in mgr.data_dir.iterdir()) == files
    assert httpx.get(f"{mgr.url}{API}/health", timeout=10).status_code == 200
    # killed, it leaves no stale lock: the next start on the same folder goes ahead
    mgr.kill()
    mgr.start()


def test_a_worker_waiting_for_a_task_when_the_manager_stops_gets_503_not_500(
    server: ServerProcess, tmp_path: Path, new_worker: WorkerFactory, stop_at_end: list[ManagerProcess]
) -> None:
    """The long poll was cancelled by uvicorn's stop and answered 500 with a traceback in the Manager's log."""
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "mgr").start()
    stop_at_end.append(mgr)
    worker = new_worker(mgr, "w")
    worker.sign_on()
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(worker.ask, 20.0)
        time.sleep(1.0)  # the request is waiting at the Manager
        assert mgr.proc is not None and not asked.done()
        mgr.proc.send_signal(signal.SIGTERM)
        r = asked.result(timeout=30)
    assert r.status_code in (204, 503), r.text  # the Manager may end the wait itself first
    assert mgr.proc.wait(30) in (0, -signal.SIGTERM)
    assert "Exception in ASGI application" not in mgr.log_path.read_text()


@pytest.mark.timeout(120)
def test_a_manager_stalled_past_the_worker_timeout_keeps_the_work_its_workers_finished_meanwhile(
    server: ServerProcess, tmp_path: Path, new_worker: WorkerFactory, stop_at_end: list[ManagerProcess]
) -> None:
    """Found by a fault-injection audit: a Manager SIGSTOPped longer than the worker timeout took every worker for
    silent when it resumed, before reading their waiting requests, and their finished frames rendered again."""
    mgr = ManagerProcess(
        server.url, add_manager(server, "m-stall"), tmp_path / "manager", env={"TABLAO_WORKER_TIMEOUT": "2"}
    ).start()
    stop_at_end.append(mgr)
    job = submit(server, exec_job("stalled manager", frames="1"))
    w = new_worker(mgr, "steady")
    w.sign_on()
    task = w.next_task()
    assert task is not None
    assert w.send(task["id"], [w.update(handout=task["handout"], status="active")]).status_code == 200
    assert mgr.proc is not None
    mgr.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(4.0)  # twice the worker timeout; the worker finished meanwhile, its report waits to be read
        done = w.update(handout=task["handout"], status="completed", log_lines=lines_of(task, w.name))
        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(w.send, task["id"], [done])
            time.sleep(0.5)
            mgr.proc.send_signal(signal.SIGCONT)
            answer = sent.result(timeout=30)
    finally:
        mgr.proc.send_signal(signal.SIGCONT)
    assert answer.status_code == 200, answer.text
    assert_server_view_complete(server, job["id"], {task["id"]: "steady"})
    mgr.stop()
