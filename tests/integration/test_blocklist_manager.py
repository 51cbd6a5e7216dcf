"""The blocklist end to end with a real Server and a real Manager: a worker's failures blocklist it at the
Manager, the Server shows the entry, a wrangler clears it in the app's way, and the Manager lets the worker
run the job's tasks again. Another Manager's token cannot write entries for this Manager's workers or jobs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.manager import API, ManagerProcess, add_manager, worker_factory
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def _strict_manager(server: ServerProcess, tmp_path: Path) -> tuple[ManagerProcess, httpx.Client]:
    """A Manager "m1" that blocklists a worker at its first failure, and an admin's client of the Server."""
    mgr = ManagerProcess(
        server.url, add_manager(server, "m1"), tmp_path / "manager", extra_args=("--blocklist-threshold", "1")
    ).start()
    return mgr, httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30)


def test_a_cleared_entry_reaches_the_manager_and_the_worker_runs_the_job_again(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    mgr, admin = _strict_manager(fresh_server, tmp_path)
    try:
        with worker_factory() as make:
            flaky, steady = make(mgr, "flaky"), make(mgr, "steady")
            flaky.sign_on()
            steady.sign_on()  # capable and not blocklisted: the job's tasks stay at this Manager
            body = {"name": "three", "type": "exec", "max_task_failures": 5,
                    "settings": {"command": ["true"], "frames": "1-3"}}  # fmt: skip
            job = admin.post("/jobs", json=body).json()
            task = flaky.next_task()
            assert task is not None
            failed = flaky.update(handout=task["handout"], status="failed", activity="exit 3")
            assert flaky.send(task["id"], [failed]).status_code == 200
            assert flaky.next_task(wait=0.5) is None  # blocklisted for the job's exec tasks

            def entries() -> list[dict[str, Any]]:
                return list(admin.get(f"/jobs/{job['id']}/blocklist").json())

            (entry,) = wait_for(entries, timeout=30, what="the Manager's report of the blocklist")
            assert (entry["worker_id"], entry["worker_name"], entry["task_type"]) == (flaky.worker_id, "flaky", "exec")
            assert (entry["failures"], entry["threshold"], entry["blocked"]) == (1, 1, True)
            assert entry["manager_name"] == "m1"

            cleared = admin.post(
                f"/jobs/{job['id']}/blocklist/clear",
                json={"entries": [{"worker_id": flaky.worker_id, "task_type": "exec"}]},
            )
            assert cleared.json() == {"cleared": 1}
            again = wait_for(lambda: flaky.next_task(wait=1.0), timeout=30, what="a task for the forgiven worker")
            assert again["job_id"] == job["id"]
            assert entries() == []  # and the Manager's report that it is gone keeps it so
    finally:
        admin.close()
        mgr.stop()


def _known(admin: httpx.Client) -> set[str]:
    return {w["id"] for w in admin.get("/workers").json()}


def _entry(job_id: int, worker_id: str, task_type: str = "exec") -> dict[str, Any]:
    return {"job_id": job_id, "worker_id": worker_id, "task_type": task_type, "worker_name": "spoofed",
            "failures": 1, "threshold": 1000}  # fmt: skip


def test_another_managers_token_cannot_write_entries_for_this_managers_workers_or_jobs(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    # Any Manager token could: the real Manager's entry was then dropped as "another Manager's worker", and a
    # wrangler's clear of what the app showed went to the other Manager, so the worker stayed blocklisted.
    mgr, admin = _strict_manager(fresh_server, tmp_path)
    other_token = add_manager(fresh_server, "other")
    other = httpx.Client(
        base_url=fresh_server.url + API + "/manager", headers={"Authorization": f"Bearer {other_token}"}, timeout=30
    )
    try:
        with worker_factory() as make:
            flaky, steady = make(mgr, "flaky"), make(mgr, "steady")
            flaky.sign_on()
            steady.sign_on()
            wait_for(lambda: _known(admin) >= {flaky.worker_id, steady.worker_id}, what="m1's report of its workers")
            (m1,) = [m["id"] for m in admin.get("/managers").json() if m["name"] == "m1"]
            body = {"name": "m1's", "type": "exec", "max_task_failures": 5, "manager_id": m1,
                    "settings": {"command": ["true"], "frames": "1-3"}}  # fmt: skip
            pinned = admin.post("/jobs", json=body).json()
            # a job any Manager may take, of a task type only the other Manager's worker runs
            body = {"name": "anyone's", "type": "exec", "settings": {"command": ["true"], "task_type": "elsewhere"}}
            free = admin.post("/jobs", json=body).json()

            def entries(job: dict[str, Any]) -> list[tuple[str, str, int]]:
                got = admin.get(f"/jobs/{job['id']}/blocklist").json()
                return [(e["worker_id"], e["manager_name"], e["failures"]) for e in got]

            its_own = {"id": "other-w", "name": "other-w", "platform": "linux", "task_types": ["elsewhere"],
                       "tags": [], "status": "awake"}  # fmt: skip
            batch = [
                _entry(pinned["id"], flaky.worker_id),  # m1's worker
                _entry(free["id"], flaky.worker_id, "elsewhere"),  # m1's worker, on anyone's job
                _entry(pinned["id"], "other-w"),  # its own worker, on a job bound to m1
                _entry(free["id"], "other-w", "elsewhere"),  # its own worker on anyone's job: its to report
                _entry(free["id"], "never-reported", "elsewhere"),  # a worker the Server does not know
            ]
            r = other.post("/updates", json={"seq": 1, "workers": [its_own], "blocklist": batch})
            assert r.status_code == 200, r.text  # the batch is taken (refusing it would have it sent for ever)
            assert entries(pinned) == []
            assert entries(free) == [("other-w", "other", 1)]  # the rest of the batch applied
            assert "reported 3 blocklist entries not its own to report" in fresh_server.log_path.read_text()
            # a Manager reports its entries again with each lease renewal: one warning, not one a renewal
            r = other.post("/updates", json={"seq": 2, "workers": [its_own], "blocklist": batch})
            assert r.status_code == 200, r.text
            assert fresh_server.log_path.read_text().count("not its own to report") == 1

            # m1's own entry for flaky is shown, and the clear reaches m1
            task = flaky.next_task()
            assert task is not None and task["job_id"] == pinned["id"]
            failed = flaky.update(handout=task["handout"], status="failed", activity="exit 3")
            assert flaky.send(task["id"], [failed]).status_code == 200
            assert flaky.next_task(wait=0.5) is None  # blocklisted at m1
            wait_for(lambda: entries(pinned), timeout=30, what="m1's report of its entry")
            assert entries(pinned) == [(flaky.worker_id, "m1", 1)]
            cleared = admin.post(
                f"/jobs/{pinned['id']}/blocklist/clear",
                json={"entries": [{"worker_id": flaky.worker_id, "task_type": "exec"}]},
            )
            assert cleared.json() == {"cleared": 1}
            again = wait_for(lambda: flaky.next_task(wait=1.0), timeout=30, what="a task for the forgiven worker")
            assert again["job_id"] == pinned["id"]
    finally:
        other.close()
        admin.close()
        mgr.stop()


def test_a_new_workers_first_entry_reaches_the_server_with_the_workers_state(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    # The Server takes an entry only for a worker it knows as this Manager's. Worker states ride along every
    # 3 s; an entry of a worker that signed on since the last ones waited for the next lease renewal (~8 s).
    mgr, admin = _strict_manager(fresh_server, tmp_path)
    try:
        with worker_factory() as make:
            steady = make(mgr, "steady")
            steady.sign_on()
            wait_for(lambda: steady.worker_id in _known(admin), what="the first report of the workers")
            # worker states went up just now: the next ones are not due for 3 s
            flaky = make(mgr, "flaky")
            flaky.sign_on()
            body = {"name": "j", "type": "exec", "settings": {"command": ["true"], "frames": "1-2"}}
            job = admin.post("/jobs", json=body).json()
            task = flaky.next_task()
            assert task is not None
            failed = flaky.update(handout=task["handout"], status="failed", activity="exit 3")
            assert flaky.send(task["id"], [failed]).status_code == 200
            failed_at = time.monotonic()
            (entry,) = wait_for(lambda: admin.get(f"/jobs/{job['id']}/blocklist").json(), what="the entry")
            assert entry["worker_id"] == flaky.worker_id
            assert time.monotonic() - failed_at < 3.0, "the entry waited for a lease renewal"
    finally:
        admin.close()
        mgr.stop()
