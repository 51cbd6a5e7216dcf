"""Failures that say so: a Manager refuses a lost store, workers register again, silent Managers' workers go offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.test_worker_agent import AgentProcess, submit, tasks_of
from tests.support.manager import API, ManagerProcess, ScriptedWorker, add_manager
from tests.support.services import ROOT, ServerProcess, child_env, tablao_command
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(240)


def _start_refused(mgr: ManagerProcess, *extra: str) -> subprocess.CompletedProcess[str]:
    token_file = mgr.data_dir.parent / f"{mgr.data_dir.name}.token"
    argv = [sys.executable, "-m", "services.manager.cli", "--server", mgr.server_url, "--token-file", str(token_file),
            "--data-dir", str(mgr.data_dir), "--port", str(mgr.port), *extra]  # fmt: skip
    return subprocess.run(argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60)


def _job_completes(server: ServerProcess, marker: Path) -> None:
    job = submit(server, ["sh", "-c", f"echo run >> {marker}"], "1")
    wait_for(lambda: tasks_of(server, job)[0]["status"] == "completed", timeout=60, what=f"job {job} to complete")


def test_a_manager_with_a_lost_store_refuses_to_start_and_workers_register_again(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "manager").start()
    out = tmp_path / "out"
    out.mkdir()
    agent = AgentProcess(mgr, tmp_path / "w" / "data", "w1")
    try:
        _job_completes(server, out / "runs")
        store = mgr.data_dir / "tablao-manager.sqlite"
        mgr.stop()

        for damage, says in ((b"", "is empty"), (b"this is not a database" * 100, "is damaged")):
            store.write_bytes(damage)
            for name in ("-wal", "-shm"):
                store.with_name(store.name + name).unlink(missing_ok=True)
            refused = _start_refused(mgr)
            assert refused.returncode == 2, refused.stderr
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1 and says in lines[0] and "--fresh-store" in lines[0], refused.stderr
        store.unlink()
        refused = _start_refused(mgr)
        assert refused.returncode == 2 and "is missing" in refused.stderr, refused.stderr

        # told to start fresh, it keeps the old file aside; the worker it forgot registers again and works
        mgr.extra_args = ("--fresh-store",)
        mgr.start()
        assert list(mgr.data_dir.glob("tablao-manager.sqlite.damaged-*")) == []  # missing: nothing to keep
        _job_completes(server, out / "runs")
        assert agent.proc.poll() is None, agent.log_text()
        assert "registering again" in agent.log_text()
    finally:
        agent.stop()
        mgr.stop()
        server.stop()


def test_a_manager_refuses_the_store_of_a_manager_of_another_server(tmp_path: Path) -> None:
    """Found by a newcomer: `tablao manager` without --data-dir for another Server took the local farm's Manager
    store, and that farm's workers showed at the other Server. One of the two may change: a token replaced."""
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None).start()
    other = ServerProcess(data_dir=tmp_path / "other", database_url=None).start()
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "manager").start()
    try:
        mgr.stop()
        mgr.token = add_manager(server, "m1-new-token")  # the same Server, another token: its store still
        mgr.start()
        mgr.stop()
        elsewhere = ManagerProcess(other.url, add_manager(other, "room-c"), mgr.data_dir, port=mgr.port)
        elsewhere.data_dir.parent.joinpath(f"{elsewhere.data_dir.name}.token").write_text(elsewhere.token)
        refused = _start_refused(elsewhere)
        assert refused.returncode == 2, refused.stderr
        (line,) = refused.stderr.strip().splitlines()
        assert "holds the store of a Manager of another Server" in line and server.url in line, line
        assert "--data-dir of its own" in line and "--fresh-store" in line
        elsewhere.extra_args = ("--fresh-store",)
        elsewhere.start()  # told to, it sets that store aside and begins empty
        assert len(list(mgr.data_dir.glob("tablao-manager.sqlite.damaged-*"))) == 1
        elsewhere.stop()
    finally:
        mgr.stop()
        server.stop()
        other.stop()


def test_the_server_shows_a_silent_managers_workers_offline_and_back_when_it_reports(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "server", database_url=None, extra_args=("--lease-seconds", "3")).start()
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "manager").start()
    worker = ScriptedWorker(mgr.url, "w1").register(mgr.registration_secret)
    worker.sign_on()

    def status_at_server() -> str | None:
        r = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=30)
        found = [w["status"] for w in r.json() if w["name"] == "w1"]
        return found[0] if found else None

    try:
        wait_for(lambda: status_at_server() == "awake", timeout=60, what="the worker awake at the Server")
        assert mgr.proc is not None
        os.kill(mgr.proc.pid, signal.SIGSTOP)  # silent, but not gone: no sign-off reaches anyone
        try:
            wait_for(lambda: status_at_server() == "offline", timeout=60, what="the worker offline at the Server")
        finally:
            os.kill(mgr.proc.pid, signal.SIGCONT)
        worker.heartbeat()
        wait_for(lambda: status_at_server() == "awake", timeout=60, what="the worker awake again")
    finally:
        worker.close()
        mgr.stop()
        server.stop()


def test_damaged_or_unreachable_databases_and_unreachable_servers_are_said_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "tablao-server.sqlite").write_bytes(b"garbage, not SQLite" * 500)
    (tmp_path / "token").write_text("some-token")
    unreachable = ["--server", "http://127.0.0.1:1", "--token-file", str(tmp_path / "token")]
    cases = [
        (["jobs", *unreachable], "cannot reach the Server"),
        (["job", "1", *unreachable], "cannot reach the Server"),
        (["server", "--data-dir", str(tmp_path), "--port", "0"], "is damaged"),
        (["users", "list", "--data-dir", str(tmp_path)], "is damaged"),
        (["users", "list", "--database-url", "postgresql+psycopg://u:pw@127.0.0.1:1/x"], "cannot reach the database"),
    ]
    for args, says in cases:
        done = subprocess.run(tablao_command(*args), cwd=ROOT, env=child_env(), capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 1, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert says in last and "Traceback" not in done.stderr, done.stderr
        assert "pw@" not in done.stderr  # a password in a database URL is never printed
