"""A Manager against a real Server: workers register, get tasks in order, and the Server sees every result."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.manager import API, ManagerProcess, WorkerFactory, add_manager, worker_factory
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for


def exec_job(name: str, frames: str = "1-6", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "exec", "settings": {"command": ["true", "{frame}"], "frames": frames}, **extra}


def submit(server: ServerProcess, body: dict[str, Any]) -> dict[str, Any]:
    r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=30)
    assert r.status_code == 201, r.text
    return dict(r.json())


def job_tasks(server: ServerProcess, job_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.url}{API}/jobs/{job_id}/tasks", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    return list(body["items"] if isinstance(body, dict) else body)


@pytest.fixture
def new_worker() -> Iterator[WorkerFactory]:
    with worker_factory() as make:
        yield make


@pytest.fixture
def farm(fresh_server: ServerProcess, tmp_path: Path):
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager").start()
    yield fresh_server, mgr
    mgr.stop()


def test_two_workers_complete_a_job_and_the_server_sees_it(
    farm: tuple[ServerProcess, ManagerProcess], new_worker: WorkerFactory
) -> None:
    server, mgr = farm
    job = submit(server, exec_job("basic"))
    workers = [new_worker(mgr, f"w{i}") for i in range(2)]
    signed_on = [w.sign_on() for w in workers]
    seen: list[int] = []
    first_variables = None
    while len(seen) < 6:
        for w in workers:
            task = w.next_task(wait=10)
            if task is None:
                continue
            assert task["variables"]["render_root"].endswith("render")
            first_variables = first_variables or task["variables"]
            r = w.run_task(task)
            assert r.status_code == 200, r.text
            seen.append(task["id"])
    assert len(set(seen)) == 6
    # the sign-on told each worker the path variables its tasks carry (it confines its spare process with them)
    assert all(r.status_code == 200 and r.json()["variables"] == first_variables for r in signed_on)
    # scheduler order: task ids (frames) in order
    assert seen == sorted(seen)

    def done() -> list[dict[str, Any]] | None:
        tasks = job_tasks(server, job["id"])
        return tasks if all(t["status"] == "completed" for t in tasks) else None

    tasks = wait_for(done, what="the Server to see every task completed")
    assert {t["worker_name"] for t in tasks} == {"w0", "w1"}
    one = httpx.get(f"{server.url}{API}/tasks/{tasks[0]['id']}", headers=server.headers()).json()
    assert one["log_tail"] == [f"{one['name']} line {i}" for i in range(3)]
    j = httpx.get(f"{server.url}{API}/jobs/{job['id']}", headers=server.headers()).json()
    assert j["status"] == "completed"
    # the full log is served by the Manager to a client holding a Server API token
    log = httpx.get(f"{mgr.url}{API}/tasks/{tasks[0]['id']}/log", headers=server.headers())
    assert log.status_code == 200, log.text
    assert log.text.splitlines() == [f"{one['name']} line {i}" for i in range(3)]
    bad = httpx.get(f"{mgr.url}{API}/tasks/{tasks[0]['id']}/log", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


def test_a_worker_with_new_tags_does_not_wait_for_the_claim_already_waiting(
    farm: tuple[ServerProcess, ManagerProcess], new_worker: WorkerFactory
) -> None:
    """The Manager's waiting claim asks for its workers' tags at the time; a worker with others re-asks at once."""
    server, mgr = farm
    new_worker(mgr, "plain").sign_on()
    time.sleep(1.5)  # the Manager found nothing; its claim now waits at the Server, for untagged jobs only
    gpu = new_worker(mgr, "gpu")
    gpu.sign_on(tags=("gpu",))
    with ThreadPoolExecutor(1) as pool:
        asking = pool.submit(gpu.next_task, 20)
        time.sleep(0.5)
        submitted = time.monotonic()
        job = submit(server, exec_job("needs a gpu", frames="1", tags=["gpu"]))
        task = asking.result(timeout=30)
        took = time.monotonic() - submitted
    assert task is not None and task["job_id"] == job["id"]
    assert took < 3, f"{took:.1f} s: the worker waited for the Manager's earlier claim to time out"


def test_a_waiting_claim_is_dropped_when_its_workers_go_to_sleep_and_renewed_when_they_wake(
    farm: tuple[ServerProcess, ManagerProcess], new_worker: WorkerFactory
) -> None:
    """A claim waiting at the Server fits the workers there were when it left; it follows their changes at once."""
    server, mgr = farm
    w = new_worker(mgr, "nightly")
    w.sign_on()
    time.sleep(1.5)  # the Manager found nothing; its claim now waits at the Server for this worker
    assert w.heartbeat("asleep").status_code == 200
    time.sleep(0.5)
    job = submit(server, exec_job("while everyone sleeps", frames="1"))
    time.sleep(1.0)
    # nobody here would run it: the task stays at the Server, free for any other Manager
    assert [t["status"] for t in job_tasks(server, job["id"])] == ["queued"]
    assert w.heartbeat("awake").status_code == 200
    with ThreadPoolExecutor(1) as pool:
        asking = pool.submit(w.next_task, 20)
        woke = time.monotonic()
        task = asking.result(timeout=30)
        took = time.monotonic() - woke
    assert task is not None and task["job_id"] == job["id"]
    assert took < 3, f"{took:.1f} s: the worker waited for an old claim to time out"


def test_the_managers_path_variables_reach_the_server_which_refuses_a_path_naming_another(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    """A real Manager says its variables' names with its lease renewal; a job naming a misspelt one is a 422."""
    table = tmp_path / "variables.json"
    table.write_text('{"shots": {"linux": "/mnt/shots"}, "with space": {"linux": "/x"}}')
    token = add_manager(fresh_server, "m1")
    mgr = ManagerProcess(fresh_server.url, token, tmp_path / "manager", extra_args=("--variables", str(table)))
    mgr.start()
    try:

        def said() -> list[str] | None:
            r = httpx.get(f"{fresh_server.url}{API}/managers", headers=fresh_server.headers(), timeout=30)
            return r.json()[0]["variables"]  # type: ignore[no-any-return]

        # "with space" cannot be named in a path as {with space}: not said, and not refused by the Server
        assert wait_for(lambda: said() == ["render_root", "shots"], timeout=30)
        body = exec_job("typo") | {"settings": {"command": ["true"], "cwd": "{shot}/sh010"}}
        r = httpx.post(f"{fresh_server.url}{API}/jobs", json=body, headers=fresh_server.headers(), timeout=30)
        assert r.status_code == 422 and "did you mean {shots}?" in r.text, r.text
        body["settings"]["cwd"] = "{shots}/sh010"
        submit(fresh_server, body)
        assert "Traceback" not in mgr.log_text()
    finally:
        mgr.stop()
