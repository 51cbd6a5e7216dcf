"""A Server killed (SIGKILL) in the middle of storing a big job: the half-written job is removed by the orphan
sweep once a Server runs again (at once on SQLite, after the bound on PostgreSQL), and nothing else is touched."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.server.db.engine import SQLITE_NAME
from tests.integration.test_server_jobs import render_job
from tests.support.databases import fresh_postgres_database
from tests.support.manager import API
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(600)

BIG = 300_000  # frames: long enough to store that the kill lands in the middle


def _counts(url: str) -> dict[int, tuple[str, int, int]]:
    """job id -> (status, tasks stored, dependency rows of its tasks), read straight from the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT j.id, j.status, (SELECT count(*) FROM tasks t WHERE t.job_id = j.id), "
                    "(SELECT count(*) FROM task_dependencies d JOIN tasks t ON t.id = d.task_id "
                    "WHERE t.job_id = j.id) FROM jobs j"
                )
            ).all()
    finally:
        engine.dispose()
    return {int(r[0]): (str(r[1]), int(r[2]), int(r[3])) for r in rows}


def _start_big_submission(server: ServerProcess) -> int:
    """Starts submitting a big job and returns its id once some of its tasks are stored."""

    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the Server is killed under it
            httpx.post(f"{server.url}{API}/jobs", json=render_job("big", frames=f"1-{BIG}", chunk=1),
                       headers=server.headers(), timeout=300)  # fmt: skip

    threading.Thread(target=post, daemon=True).start()
    with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as c:

        def building() -> int | None:
            items = c.get("/jobs", params={"status": "under-construction"}).json()["items"]
            if items and c.get(f"/jobs/{items[0]['id']}/tasks", params={"limit": 1}).json()["items"]:
                return int(items[0]["id"])
            return None

        job_id: int = wait_for(building, timeout=120, what="the big job's first chunk")
    return job_id


def _small_jobs(server: ServerProcess) -> list[dict[str, object]]:
    h = server.headers()
    jobs = [httpx.post(f"{server.url}{API}/jobs", json=render_job(f"small {i}", frames="1-6"), headers=h, timeout=30)
            for i in range(2)]  # fmt: skip
    assert all(r.status_code == 201 for r in jobs), [r.text for r in jobs]
    return [r.json() for r in jobs]


def _kill_mid_submission(server: ServerProcess, url: str) -> int:
    orphan = _start_big_submission(server)
    server.kill()  # SIGKILL: no clean-up of any kind
    status, stored, _ = _counts(url)[orphan]
    assert status == "under-construction" and 0 < stored < BIG + 1, (status, stored)
    return orphan


def _intact(url: str, before: dict[int, tuple[str, int, int]], orphan: int) -> None:
    after = _counts(url)
    assert orphan not in after
    assert after == {k: v for k, v in before.items() if k != orphan}
    engine = create_engine(url)
    try:
        with engine.connect() as c:  # nothing of the orphan left behind
            assert c.execute(text("SELECT count(*) FROM job_log WHERE job_id = :j"), {"j": orphan}).scalar() == 0
    finally:
        engine.dispose()


def test_sqlite_server_killed_mid_submission_removes_the_orphan_on_restart(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start(90)
    url = f"sqlite:///{tmp_path / 'server' / SQLITE_NAME}"
    try:
        small = _small_jobs(server)
        orphan = _kill_mid_submission(server, url)
        before = _counts(url)
        assert {j["id"] for j in small} <= set(before)
        server.start(90)  # the same data directory: the only Server of this SQLite database, so no writer is alive
        h = server.headers()
        wait_for(lambda: httpx.get(f"{server.url}{API}/jobs/{orphan}", headers=h).status_code == 404,
                 timeout=240, what="the orphan removed")  # fmt: skip
        _intact(url, before, orphan)
        for job in small:
            got = httpx.get(f"{server.url}{API}/jobs/{job['id']}", headers=h).json()
            assert got["status"] == "queued" and got["tasks_total"] == 4
        log = server.log_path.read_text()
        assert f"job {orphan} 'big': removed: left under construction" in log and "orphaned job removed" in log
        # the Server goes on taking jobs
        r = httpx.post(f"{server.url}{API}/jobs", json=render_job("after", frames="1-3"), headers=h, timeout=30)
        assert r.status_code == 201 and r.json()["tasks_total"] == 3
    finally:
        server.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.postgres
def test_postgres_orphan_removed_after_the_bound_by_whichever_server_sweeps(tmp_path: Path, pg_url: str) -> None:
    env = {"TABLAO_ORPHAN_SECONDS": "4"}
    a = ServerProcess(data_dir=tmp_path / "a", database_url=pg_url, env=env).start(90)
    b = ServerProcess(data_dir=tmp_path / "b", database_url=pg_url, env=env).start(90)
    url = pg_url
    try:
        small = _small_jobs(b)
        orphan = _kill_mid_submission(a, url)
        before = _counts(url)
        a.start(90)  # both Servers sweep now, on one database
        h = b.headers()
        wait_for(lambda: httpx.get(f"{b.url}{API}/jobs/{orphan}", headers=h).status_code == 404,
                 timeout=300, what="the orphan removed")  # fmt: skip
        _intact(url, before, orphan)
        for job in small:
            assert httpx.get(f"{a.url}{API}/jobs/{job['id']}", headers=h).json()["tasks_total"] == 4
        logs = a.log_path.read_text() + b.log_path.read_text()
        assert logs.count("orphaned job removed") == 1, "removed once, by one of the Servers"
    finally:
        a.stop()
        b.stop()
