"""Several Server processes on one PostgreSQL database: a first start together, and a Manager that moves on
when the Server it talks to is killed, with nothing lost or done twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.protocol.server_client import ServerClient
from tests.support.databases import fresh_postgres_database
from tests.support.manager import API, ManagerProcess, add_manager
from tests.support.services import ROOT, ServerProcess, child_env
from tests.support.waiting import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


def start_together(tmp_path: Path, url: str, n: int, *args: str) -> list[ServerProcess]:
    servers = [ServerProcess(data_dir=tmp_path / f"server{i}", database_url=url, extra_args=args) for i in range(n)]
    with ThreadPoolExecutor(n) as pool:
        started = [pool.submit(s.start, 60) for s in servers]
        errors = [f.exception(timeout=90) for f in started]
    if any(errors):
        for s in servers:
            s.kill()
        raise AssertionError(f"not every Server came up: {errors}")
    return servers


def test_three_servers_started_at_once_on_an_empty_database_all_come_up(tmp_path: Path, pg_url: str) -> None:
    servers = start_together(tmp_path, pg_url, 3)
    try:
        for s in servers:
            assert httpx.get(f"{s.url}{API}/health", timeout=10).json()["status"] == "ok"
        users = httpx.get(f"{servers[2].url}{API}/users", headers=servers[0].headers(), timeout=10).json()
        assert [u["name"] for u in users if u["role"] == "admin"] == ["admin"]  # made once, usable everywhere
    finally:
        for s in servers:
            s.stop()


def test_a_second_server_on_one_sqlite_database_is_refused_saying_why(tmp_path: Path) -> None:
    first = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "app.cli", "server", "--data-dir", str(tmp_path / "server"), "--port", "0"],
            cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode != 0
        assert "another Tablao Server is already running on the SQLite database" in second.stderr
        assert "PostgreSQL" in second.stderr and "Traceback" not in second.stderr
        assert httpx.get(f"{first.url}{API}/health", timeout=10).status_code == 200  # the first one is unharmed
    finally:
        first.stop()
    again = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()  # the lock went with it
    again.stop()


def start_worker(mgr: ManagerProcess, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    secret = tmp_path / f"{name}.secret"
    secret.write_text(mgr.registration_secret)
    argv = [
        sys.executable, "-m", "services.worker.cli", "--manager", mgr.url, "--data-dir", str(tmp_path / name),
        "--name", name, "--registration-secret-file", str(secret), "--task-types", "exec",
        "--heartbeat-interval", "0.5", "--poll-wait", "2",
    ]  # fmt: skip
    with open(tmp_path / f"{name}.log", "ab") as log:
        return subprocess.Popen(argv, cwd=ROOT, env=child_env(), stdout=log, stderr=log)


@pytest.mark.timeout(300)  # three Servers, two Managers and two workers start on two cores
def test_a_manager_moves_to_the_next_server_and_nothing_is_lost_or_done_twice(tmp_path: Path, pg_url: str) -> None:
    # short leases: what a claim leased at the Server that dies, its answer lost, comes back within seconds
    a, b, c = start_together(tmp_path, pg_url, 3, "--lease-seconds", "4")
    # two Managers, one talking to Server A first (it dies), the other to Server B first; a worker each
    mgr = ManagerProcess(",".join(s.url for s in (a, b, c)), add_manager(a, "m1"), tmp_path / "manager").start()
    other = ManagerProcess(",".join(s.url for s in (b, c, a)), add_manager(b, "m2"), tmp_path / "manager2").start()
    workers = [start_worker(mgr, tmp_path, "w0"), start_worker(other, tmp_path, "w1")]
    # the tasks write in a folder of their own: a task may create nothing directly beside the folders its
    # worker protects (its data directory; docs/security.md)
    (tmp_path / "out").mkdir()
    ran = tmp_path / "out" / "ran.txt"
    try:
        jobs: list[tuple[ServerProcess, int]] = []
        for server in (a, b, c):  # a job through each Server
            body = {
                "name": f"through {server.port}", "type": "exec",
                "settings": {"command": ["sh", "-c", f"echo {server.port}-{{frame}} >> {ran}; sleep 0.3"],
                             "frames": "1-8"},
            }  # fmt: skip
            r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=30)
            assert r.status_code == 201, r.text
            jobs.append((server, r.json()["id"]))

        def some_done() -> bool:
            return ran.exists() and len(ran.read_text().splitlines()) >= 4

        wait_for(some_done, timeout=60, what="the first tasks to run")
        a.kill()  # the Server the Manager talks to dies mid-job

        def job(job_id: int) -> dict[str, Any]:
            return dict(httpx.get(f"{b.url}{API}/jobs/{job_id}", headers=b.headers(), timeout=30).json())

        for _server, job_id in jobs:
            wait_for(lambda j=job_id: job(j)["status"] == "completed", timeout=120, what=f"job {job_id} to complete")
        lines = ran.read_text().split()
        expected = sorted(f"{s.port}-{f}" for s, _ in jobs for f in range(1, 9))
        assert sorted(lines) == expected  # every task ran, and none of them twice
        assert f"lost the Server: POST {a.url}" in mgr.log_path.read_text()
        assert f"trying {b.url} next" in mgr.log_path.read_text()
    finally:
        for w in workers:
            w.kill()
            w.wait()
        mgr.stop()
        other.stop()
        for s in (a, b, c):
            s.stop()


@pytest.mark.timeout(300)
def test_a_manager_moves_on_from_a_server_that_hangs_before_its_leases_run_out(tmp_path: Path, pg_url: str) -> None:
    """A Server stopped (SIGSTOP: swapping, a debugger, a paused VM) took the Manager's whole 30 s client timeout:
    with a 10 s lease the leases ran out meanwhile, and finished tasks ran again at the other Server (an audit saw
    25 of 40). With another Server to go to, a batch waits a quarter lease (at least 5 s)."""
    a, b = start_together(tmp_path, pg_url, 2, "--lease-seconds", "10")
    mgr = ManagerProcess(f"{a.url},{b.url}", add_manager(b, "m1"), tmp_path / "manager").start()
    worker = start_worker(mgr, tmp_path, "w0")
    (tmp_path / "out").mkdir()
    ran = tmp_path / "out" / "ran.txt"
    stopped = False
    try:
        command = ["sh", "-c", f"echo {{frame}} >> {ran}; sleep 0.3"]
        body = {"name": "through b", "type": "exec", "settings": {"command": command, "frames": "1-30"}}
        r = httpx.post(f"{b.url}{API}/jobs", json=body, headers=b.headers(), timeout=30)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        wait_for(lambda: ran.exists() and len(ran.read_text().split()) >= 3, timeout=60, what="the first tasks")
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)  # the Manager's Server hangs: its connections stay open, unanswered
        stopped = True
        hung = time.monotonic()
        wait_for(lambda: f"lost the Server: POST {a.url}" in mgr.log_path.read_text(), timeout=60, what="a move")
        moved_after = time.monotonic() - hung

        def status() -> str:
            return str(httpx.get(f"{b.url}{API}/jobs/{job_id}", headers=b.headers(), timeout=30).json()["status"])

        wait_for(lambda: status() == "completed", timeout=120, what="the job to complete")
        lines = ran.read_text().split()
        assert sorted(lines, key=int) == [str(f) for f in range(1, 31)], lines  # every task ran, none twice
        assert moved_after < 10, f"moved on after {moved_after:.1f} s"
    finally:
        if stopped and a.proc is not None:
            a.proc.send_signal(signal.SIGCONT)
        worker.kill()
        worker.wait()
        mgr.stop()
        a.stop()
        b.stop()


def test_work_submitted_at_one_server_wakes_claims_and_event_streams_waiting_at_another(
    tmp_path: Path, pg_url: str
) -> None:
    a, b = start_together(tmp_path, pg_url, 2)
    try:
        token = add_manager(a, "m1")
        link = httpx.Client(base_url=b.url + API + "/manager", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        events = httpx.Client(base_url=b.url + API, headers=b.headers(), timeout=30)
        with link, events, ThreadPoolExecutor(2) as pool:

            def first_job_event() -> float:
                with events.stream("GET", "/events") as stream:
                    for line in stream.iter_lines():
                        if line.startswith("data:") and '"job-created"' in line:
                            return time.monotonic()
                return 0.0

            heard = pool.submit(first_job_event)
            waiting = pool.submit(link.post, "/claim", json={"capacity": 1, "task_types": ["exec"], "wait_seconds": 20})
            time.sleep(1.0)  # both wait at Server B
            assert not waiting.done()
            body = {"name": "via A", "type": "exec", "settings": {"command": ["true"], "frames": "1"}}
            submitted = time.monotonic()
            r = httpx.post(f"{a.url}{API}/jobs", json=body, headers=a.headers(), timeout=30)
            assert r.status_code == 201, r.text
            answer = waiting.result(timeout=30)
            claimed_after = time.monotonic() - submitted
            streamed_after = heard.result(timeout=30) - submitted
        assert [t["job_id"] for t in answer.json()["tasks"]] == [r.json()["id"]]
        # a notice at the commit, not the next poll (about 1-2 s); generous for a loaded machine
        assert claimed_after < 1.0, f"{claimed_after:.2f} s"
        assert streamed_after < 1.0, f"{streamed_after:.2f} s"
    finally:
        a.stop()
        b.stop()


async def test_a_client_event_stream_moves_to_the_next_server_and_resumes_where_it_was(
    tmp_path: Path, pg_url: str
) -> None:
    a, b = start_together(tmp_path, pg_url, 2)
    client = ServerClient(f"{a.url},{b.url}", a.admin_token)
    seen: list[tuple[int, str]] = []
    arrived = asyncio.Event()
    try:

        async def follow() -> None:
            last: int | None = None
            while True:  # what the desktop app's sync loop does: reconnect after a drop, from the last id
                try:
                    async for event in client.events(last):
                        last = event.id
                        if event.type == "job-created":
                            seen.append((event.id, str(event.data["name"])))
                            arrived.set()
                except (httpx.HTTPError, OSError):
                    await asyncio.sleep(0.2)

        follower = asyncio.create_task(follow())
        await asyncio.sleep(1.0)
        await client.submit_job({"name": "before", "type": "exec", "settings": {"command": ["true"], "frames": "1"}})
        await wait_seen(seen, arrived, 1)
        a.kill()
        # written while the stream is moving: Last-Event-ID brings it at Server B
        async with ServerClient(b.url, b.admin_token) as at_b:
            await at_b.submit_job({"name": "after", "type": "exec", "settings": {"command": ["true"], "frames": "1"}})
        await wait_seen(seen, arrived, 2)
        assert [name for _, name in seen] == ["before", "after"]
        assert client.base_url == b.url
        jobs = await client.list_jobs()  # plain calls go to Server B too
        assert sorted(j.name for j in jobs.items) == ["after", "before"]
        follower.cancel()
    finally:
        await client.aclose()
        a.stop()
        b.stop()


async def wait_seen(seen: list[tuple[int, str]], arrived: asyncio.Event, count: int) -> None:
    async with asyncio.timeout(30):
        while len(seen) < count:
            arrived.clear()
            await arrived.wait()


@pytest.mark.timeout(180)
async def test_a_server_that_hangs_costs_clients_seconds_not_their_timeouts(tmp_path: Path, pg_url: str) -> None:
    """An audit stopped one of two Servers (SIGSTOP: its socket takes connections and nothing answers): each
    `tablao` command waited its 60 s deadline there and failed, and the app's event stream its 60 s read timeout.
    Now a command asks the Server's health first (3 s) and the stream leaves after three keep-alive periods."""
    a, b = start_together(tmp_path, pg_url, 2)
    client = ServerClient(f"{a.url},{b.url}", a.admin_token)
    seen: list[str] = []
    arrived = asyncio.Event()
    stopped = False
    try:

        async def follow() -> None:
            last: int | None = None
            while True:  # the desktop app's sync loop: reconnect after a drop, from the last id
                try:
                    async for event in client.events(last):
                        last = event.id
                        if event.type == "job-created":
                            seen.append(str(event.data["name"]))
                            arrived.set()
                except (httpx.HTTPError, OSError):
                    await asyncio.sleep(0.2)

        follower = asyncio.create_task(follow())
        await client.submit_job({"name": "before", "type": "exec", "settings": {"command": ["true"], "frames": "1"}})
        async with asyncio.timeout(30):
            await arrived.wait()
        assert a.proc is not None
        a.proc.send_signal(signal.SIGSTOP)
        stopped = True
        hung = time.monotonic()

        def command(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
            start = time.monotonic()
            env = child_env(TABLAO_TOKEN=b.admin_token, XDG_STATE_HOME=str(tmp_path / "state"))
            done = subprocess.run(
                [sys.executable, "-m", "app.cli", *args, "--server", f"{a.url},{b.url}"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
            )  # fmt: skip
            return done, time.monotonic() - start

        first, first_took = await asyncio.to_thread(command, "jobs")
        assert first.returncode == 0 and "before" in first.stdout, first.stderr
        again, again_took = await asyncio.to_thread(command, "jobs")  # starts at Server B
        assert again.returncode == 0, again.stderr
        # the first pays for the health question (3 s) beside the program's start, the next only its start
        assert first_took < again_took + 8, (first_took, again_took)

        async with ServerClient(b.url, b.admin_token) as at_b:
            await at_b.submit_job({"name": "after", "type": "exec", "settings": {"command": ["true"], "frames": "1"}})
        async with asyncio.timeout(60):
            while seen != ["before", "after"]:
                arrived.clear()
                await arrived.wait()
        moved_after = time.monotonic() - hung
        assert client.base_url == b.url
        assert moved_after < 30, f"{moved_after:.1f} s"  # three 5 s keep-alive periods, and the reconnection
        follower.cancel()
    finally:
        if stopped and a.proc is not None:
            a.proc.send_signal(signal.SIGCONT)
        await client.aclose()
        a.stop()
        b.stop()
