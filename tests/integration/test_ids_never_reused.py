"""A deleted job's ids are never a new job's: on SQLite the next job and its tasks used to get the ids of the
newest job deleted, and whatever is kept by id outside the Server's tables (a Manager's task logs, the Server's
copies of them, an open task view) took the new job for the old one."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.test_manager_basics import exec_job, job_tasks, submit
from tests.support.manager import API
from tests.support.services import ServerProcess


def _delete(server: ServerProcess, job_id: int, *, bulk: bool = False) -> None:
    r = httpx.post(f"{server.url}{API}/jobs/{job_id}/status", json={"action": "cancel"}, headers=server.headers())
    assert r.status_code == 200, r.text
    if bulk:
        r = httpx.post(f"{server.url}{API}/jobs/bulk", json={"ids": [job_id], "delete": True}, headers=server.headers())
        assert r.status_code == 200 and r.json()["results"][0]["ok"], r.text
    else:
        r = httpx.delete(f"{server.url}{API}/jobs/{job_id}", headers=server.headers())
        assert r.status_code == 204, r.text


def _task_ids(server: ServerProcess, job_id: int) -> list[int]:
    return [t["id"] for t in job_tasks(server, job_id)]


def test_the_newest_jobs_ids_are_not_given_again_after_it_is_deleted(tmp_path: Path) -> None:
    data = tmp_path / "server"
    server = ServerProcess(data_dir=data, database_url=None).start()
    try:
        first = submit(server, exec_job("first", frames="1-3"))
        first_tasks = _task_ids(server, first["id"])
        copy = data / "task-logs" / f"job-{first['id']}" / f"task-{first_tasks[0]}.log"
        copy.parent.mkdir(parents=True)
        copy.write_text("the first job's log\n")
        _delete(server, first["id"])
        assert not copy.parent.exists()  # the deleted job's log copies went with it

        second = submit(server, exec_job("second", frames="1-3"))
        assert second["id"] > first["id"]
        second_tasks = _task_ids(server, second["id"])
        assert min(second_tasks) > max(first_tasks), (first_tasks, second_tasks)
        r = httpx.get(f"{server.url}{API}/jobs/{first['id']}", headers=server.headers())
        assert r.status_code == 404

        # a bulk change of priority leaves the log copies where they are (only a bulk delete takes them)
        kept = data / "task-logs" / f"job-{second['id']}" / f"task-{second_tasks[0]}.log"
        kept.parent.mkdir(parents=True)
        kept.write_text("the second job's log\n")
        r = httpx.post(
            f"{server.url}{API}/jobs/bulk", json={"ids": [second["id"]], "priority": 80}, headers=server.headers()
        )
        assert r.status_code == 200 and r.json()["results"][0]["ok"], r.text
        assert kept.exists()
        _delete(server, second["id"], bulk=True)
        assert not kept.parent.exists()
        server.stop()
        server.start()  # the floor is in the database, not in the process
        third = submit(server, exec_job("third", frames="1-2"))
        assert third["id"] > second["id"] and min(_task_ids(server, third["id"])) > max(second_tasks)
    finally:
        server.stop()
