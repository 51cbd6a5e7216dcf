"""The blocklist end to end with a real Server and a real Manager: a worker's failures blocklist it at the
Manager, the Server shows the entry, a wrangler clears it in the app's way, and the Manager lets the worker
run the job's tasks again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.manager import API, ManagerProcess, add_manager, worker_factory
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def test_a_cleared_entry_reaches_the_manager_and_the_worker_runs_the_job_again(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    mgr = ManagerProcess(
        fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager",
        extra_args=("--blocklist-threshold", "1"),
    ).start()  # fmt: skip
    admin = httpx.Client(base_url=fresh_server.url + API, headers=fresh_server.headers(), timeout=30)
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
