"""Server benchmarks: compiling a 100,000-frame job, and first pages with 1,000 jobs and 1,000,000 tasks.

Run with `make bench` (or `pytest -m bench -s tests/bench/bench_server.py`); figures are printed and
recorded in docs/benchmarks.md. Not part of `make test`.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from services.protocol.jobs import JobSubmission
from services.protocol.states import Role
from services.server.config import ServerConfig
from services.server.db.engine import make_engine, sqlite_url
from services.server.db.migrate import upgrade
from services.server.store import jobs
from services.server.store.sessions import open_sessions
from tests.bench.results import record
from tests.support.inprocess_server import admin_client
from tests.support.manager import API, add_manager
from tests.support.services import ServerProcess
from tests.unit.server.jobtypes.test_settings_bounds import TOO_BIG

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]

ADMIN = jobs.Actor("admin", Role.ADMIN)


def render(frames: str, name: str = "bench") -> JobSubmission:
    return JobSubmission(
        name=name,
        type="blender-render",
        settings={
            "blendfile": "/projects/big.blend",
            "frames": frames,
            "chunk_size": 1,
            "output_path": "/renders/big/frame_######",
            "preview_video": True,
        },
    )


def test_compile_and_store_100k_frames(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path))
    upgrade(engine)
    _, writers = open_sessions(engine)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with writers() as session:
            job = jobs.submit(session, render("1-100000"), ADMIN)
            session.commit()
        times.append(time.perf_counter() - start)
        assert job.tasks_total == 100_001
    engine.dispose()
    print(f"\ncompile+store blender-render 100,000 frames, chunk 1, with preview (SQLite): "
          f"best {min(times):.2f} s, median {statistics.median(times):.2f} s of {len(times)}")  # fmt: skip


def test_submit_100k_frames_over_http(tmp_path: Path) -> None:
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    try:
        start = time.perf_counter()
        r = httpx.post(srv.url + "/api/v1/jobs", json=render("1-100000").model_dump(mode="json"),
                       headers=srv.headers(), timeout=120)  # fmt: skip
        elapsed = time.perf_counter() - start
        assert r.status_code == 201, r.text
        print(f"\nPOST /api/v1/jobs with 100,000 frames (SQLite, over HTTP): {elapsed:.2f} s")
    finally:
        srv.stop()


def test_submit_of_a_one_task_job_while_a_claim_waits(tmp_path: Path) -> None:
    """The Server's part of an idle farm's latency: a one-task job submitted while a Manager's claim waits for
    work, so the submission also hands the task over (the claim is sent again after each answer)."""
    srv = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    answered = threading.Event()
    stop = threading.Event()
    try:
        token = add_manager(srv, "m")
        with (
            httpx.Client(base_url=srv.url + API + "/manager", headers=srv.headers(token), timeout=30) as link,
            httpx.Client(base_url=srv.url + API, headers=srv.headers(), timeout=30) as admin,
        ):

            def claims() -> None:
                while not stop.is_set():
                    r = link.post("/claim", json={"capacity": 1, "task_types": ["bench"], "wait_seconds": 5})
                    assert r.status_code == 200, r.text
                    if r.json()["tasks"]:
                        answered.set()

            waiting = threading.Thread(target=claims, daemon=True)
            waiting.start()
            samples = []
            for i in range(200):
                time.sleep(0.1)  # the claim is open again, and the Server idle as an idle farm's is
                answered.clear()
                body = {"name": f"one {i}", "type": "exec",
                        "settings": {"command": ["true"], "frames": str(i + 1), "task_type": "bench"}}  # fmt: skip
                start = time.perf_counter()
                r = admin.post("/jobs", json=body)
                samples.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 201, r.text
                assert answered.wait(5), "the waiting claim did not get the task"
            stop.set()
            samples.sort()
            print(f"\nPOST /api/v1/jobs, one task, handed to a waiting claim (SQLite, over HTTP, 200 jobs): "
                  f"p50 {statistics.median(samples):.2f} ms, p90 {samples[179]:.2f} ms")  # fmt: skip
            record("submit_one_task_to_waiting_claim_p50_ms", statistics.median(samples))
            waiting.join(10)
    finally:
        stop.set()
        srv.stop()


def test_refusing_jobs_too_big_for_the_farm(tmp_path: Path) -> None:
    """A job over the farm's task or command-size limit is refused from its job type's estimate, before any task
    is built: the time of each refusal (the unit tests check what is refused; before the estimate, a
    10,000,000-segment encode took 26 s)."""

    async def refusals() -> list[tuple[str, float]]:
        taken = []
        async with admin_client(ServerConfig(data_dir=tmp_path)) as client:
            for timed in (False, True):  # the first round warms what a farm's first submit sets up (~0.4 s)
                for job_type, settings, _field, says in TOO_BIG:
                    start = time.perf_counter()
                    body = {"name": "big", "type": job_type, "settings": settings}
                    r = await client.post("/api/v1/jobs", json=body)
                    if timed:
                        taken.append((f"{job_type} ({says})", time.perf_counter() - start))
                    assert r.status_code == 422, r.text
        return taken

    taken = asyncio.run(refusals())
    print("\nrefusing a job too big for the farm (in process, SQLite):")
    for what, seconds in taken:
        print(f"  {what}: {seconds * 1000:.1f} ms")
    record("refuse_too_big_job_max_ms", max(s for _, s in taken) * 1000)


def _latencies(client: httpx.Client, path: str, n: int = 100) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        r = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_first_pages_with_a_million_tasks(tmp_path: Path, db: str) -> None:
    from tests.support.databases import database_url

    with database_url(db, tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        _, writers = open_sessions(engine)
        start = time.perf_counter()
        job_id = 0
        for i in range(1000):
            with writers() as session:
                job_id = jobs.submit(session, render("1-999", name=f"shot {i:04d}"), ADMIN).id
                session.commit()
        print(f"\n[{db}] stored 1,000 jobs / 1,000,000 tasks in {time.perf_counter() - start:.1f} s")
        engine.dispose()
        srv = ServerProcess(data_dir=tmp_path / "server", database_url=url).start()
        try:
            with httpx.Client(base_url=srv.url + "/api/v1", headers=srv.headers(), timeout=30) as c:
                for label, path in [
                    ("GET /jobs (first page of 50)", "/jobs"),
                    ("GET /jobs?sort=-priority", "/jobs?sort=-priority"),
                    ("GET /jobs?status=queued&search=shot 09", "/jobs?status=queued&search=shot%2009"),
                    ("GET /jobs/{id}/tasks (first page of 100)", f"/jobs/{job_id}/tasks"),
                    ("GET /jobs/{id} (job + 100 tasks + log)", f"/jobs/{job_id}"),
                    ("GET /farm/status", "/farm/status"),
                ]:
                    p50, p99 = _latencies(c, path)
                    print(f"[{db}] {label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        finally:
            srv.stop()
