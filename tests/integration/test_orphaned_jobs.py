"""A Server killed (SIGKILL) in the middle of storing a big job: the half-written job is removed by the orphan
sweep once a Server runs again (at once on SQLite, after the bound on PostgreSQL), and nothing else is touched;
the client's repeat of the submission (its Idempotency-Key) takes the dead job over and stores it anew, without
waiting for the sweep's bound."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


BIG_JOB = render_job("big", frames=f"1-{BIG}", chunk=1)


def _start_big_submission(server: ServerProcess, key: str | None = None) -> int:
    """Starts submitting a big job (with an Idempotency-Key `key`) and returns its id once some of its tasks are
    stored."""
    headers = server.headers() | ({"Idempotency-Key": key} if key else {})

    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the Server is killed under it
            httpx.post(f"{server.url}{API}/jobs", json=BIG_JOB, headers=headers, timeout=300)

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


def _kill_mid_submission(server: ServerProcess, url: str, key: str | None = None) -> int:
    orphan = _start_big_submission(server, key)
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


def _repeat(server: ServerProcess, key: str) -> tuple[httpx.Response, float]:
    """The client's repeat of the big submission: its answer and how long it took."""
    began = time.monotonic()
    r = httpx.post(f"{server.url}{API}/jobs", json=BIG_JOB, headers=server.headers() | {"Idempotency-Key": key},
                   timeout=300)  # fmt: skip
    return r, time.monotonic() - began


def _stored_anew(server: ServerProcess, url: str, answer: httpx.Response, orphan: int) -> None:
    assert answer.status_code == 201, answer.text
    job = answer.json()
    assert job["id"] != orphan and job["status"] == "queued" and job["tasks_total"] == BIG + 1  # and the preview
    assert httpx.get(f"{server.url}{API}/jobs/{orphan}", headers=server.headers()).status_code == 404
    counts = _counts(url)
    assert orphan not in counts and counts[job["id"]][:2] == ("queued", BIG + 1)


def test_sqlite_a_repeat_after_the_server_was_killed_mid_submission_stores_the_job_at_once(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start(90)
    url = f"sqlite:///{tmp_path / 'server' / SQLITE_NAME}"
    try:
        orphan = _kill_mid_submission(server, url, key="big-1")
        server.start(90)
        # the first repeat, as soon as the Server answers: the job's writer was in the process killed, so it is
        # taken over at once (before: 409 "still being stored" until the sweep had removed it)
        answer, took = _repeat(server, "big-1")
        print(f"repeat after the restart: {answer.status_code} in {took:.1f} s")
        _stored_anew(server, url, answer, orphan)
        again, _ = _repeat(server, "big-1")
        assert again.status_code == 200 and again.json()["id"] == answer.json()["id"]
    finally:
        server.stop()


def _silence(url: str, job_id: int, seconds: float) -> None:
    """Moves the job's last heartbeat `seconds` back: as if its dead writer had been silent that long."""
    engine = create_engine(url)
    try:
        with engine.begin() as c:
            c.execute(text("UPDATE jobs SET updated = updated - make_interval(secs => :s) WHERE id = :j"),
                      {"s": seconds, "j": job_id})  # fmt: skip
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_a_repeat_takes_over_a_job_whose_writer_is_silent_past_the_bound(tmp_path: Path, pg_url: str) -> None:
    """The orphan sweep's bound stays 300 s; the repeat takes the job over once its writer has been silent for
    BUILDER_SILENT (60 s; the heartbeat is moved back rather than waited for). Two repeats at once store one job."""
    a = ServerProcess(data_dir=tmp_path / "a", database_url=pg_url).start(90)
    b = ServerProcess(data_dir=tmp_path / "b", database_url=pg_url).start(90)
    try:
        orphan = _kill_mid_submission(a, pg_url, key="big-2")
        # written a moment ago: for all the other Server knows its writer is alive and slow, so it waits
        early, _ = _repeat(b, "big-2")
        assert early.status_code == 409 and "still being stored" in early.text, early.text
        _silence(pg_url, orphan, 90)
        a.start(90)
        with ThreadPoolExecutor(2) as pool:  # two repeats at once, one at each Server: one job is stored
            answers = [f.result() for f in [pool.submit(_repeat, s, "big-2") for s in (a, b)]]
        print("repeats at once:", [(r.status_code, f"{t:.1f} s") for r, t in answers])
        made = [r for r, _ in answers if r.status_code == 201]
        assert len(made) == 1, [r.text for r, _ in answers]
        _stored_anew(b, pg_url, made[0], orphan)
        for r, _ in answers:
            assert r.status_code in (200, 201, 409), r.text
            if r.status_code == 200:
                assert r.json()["id"] == made[0].json()["id"]
        again, _ = _repeat(b, "big-2")
        assert again.status_code == 200 and again.json()["id"] == made[0].json()["id"]
        assert [k for k, v in _counts(pg_url).items() if v[1] == BIG + 1] == [made[0].json()["id"]]
        logs = a.log_path.read_text() + b.log_path.read_text()
        assert logs.count("a repeat of its submission stores it anew") == 1
    finally:
        a.stop()
        b.stop()
