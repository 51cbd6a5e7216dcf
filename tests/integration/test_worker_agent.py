"""The real worker agent (`python -m services.worker.cli`) against a real Manager and Server."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.support.manager import API, ManagerProcess, add_manager
from tests.support.services import ROOT, ServerProcess, child_env
from tests.support.waiting import wait_for


class AgentProcess:
    def __init__(
        self,
        mgr: ManagerProcess,
        data_dir: Path,
        name: str,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        secret = data_dir.parent / f"{name}.secret"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text(mgr.registration_secret + "\n")
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{name}.log"
        argv = [
            sys.executable, "-m", "services.worker.cli", "--manager", mgr.url, "--data-dir", str(data_dir),
            "--name", name, "--registration-secret-file", str(secret), "--task-types", "exec,misc",
            "--heartbeat-interval", "0.5", "--poll-wait", "2", *extra,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env={**child_env(), **(env or {})}, stdout=log, stderr=log)

    def log_text(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def process_gone(proc: psutil.Process) -> bool:
    """Ended, or a zombie; psutil can raise a plain OSError when the process vanishes mid-read."""
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return True


def submit(server: ServerProcess, command: list[str], frames: str) -> int:
    body = {"name": "agent-test", "type": "exec", "settings": {"command": command, "frames": frames}}
    r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=30)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def tasks_of(server: ServerProcess, job_id: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{server.url}{API}/jobs/{job_id}/tasks", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    return list(body["items"] if isinstance(body, dict) else body)


def task_log(server: ServerProcess, mgr: ManagerProcess, task_id: int) -> str:
    r = httpx.get(f"{mgr.url}{API}/tasks/{task_id}/log", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    return r.text


@pytest.fixture
def farm(quick_lease_server: ServerProcess, tmp_path: Path) -> Iterator[tuple[ServerProcess, ManagerProcess]]:
    """A Server of the test's own and a Manager. The worker states the Server shows ride along with the Manager's
    update batches: on a farm with nothing else to report that is the Manager's keep-alive, a quarter of the
    lease (10 s with the default 60 s lease; 2.5 s here). No test here stops a service, so the short lease
    changes nothing else."""
    server = quick_lease_server
    mgr = ManagerProcess(server.url, add_manager(server, "m1"), tmp_path / "manager").start()
    yield server, mgr
    mgr.stop()


def test_agent_registers_runs_tasks_and_reports_their_logs(farm, tmp_path: Path) -> None:
    server, mgr = farm
    agent = AgentProcess(mgr, tmp_path / "w1", "w1")
    try:
        # a NUL in the output (which the Manager would refuse) arrives as U+FFFD, and the task completes
        script = "echo hello frame {frame}; printf 'nul\\000here\\n'; echo to stderr >&2; sleep 0.2"
        job = submit(server, ["sh", "-c", script], "1-3")

        def all_done() -> list[dict[str, Any]] | None:
            tasks = tasks_of(server, job)
            return tasks if all(t["status"] == "completed" for t in tasks) else None

        tasks = wait_for(all_done, what=f"the job's tasks to complete; worker log:\n{agent.log_text()}")
        assert {t["worker_name"] for t in tasks} == {"w1"}
        for t in tasks:
            log = task_log(server, mgr, t["id"])
            frame = t["name"].split()[-1]
            assert f"hello frame {frame}" in log, log
            assert "to stderr" in log
            assert "nul\ufffdhere" in log, log
            assert log.rstrip().endswith("completed")
        creds = tmp_path / "w1" / "worker.json"
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(15) == 0
        assert (tmp_path / "w1" / "updates.sqlite").exists()
    finally:
        agent.stop()
    # a restart reuses the stored credentials: no second registration
    again = AgentProcess(mgr, tmp_path / "w1", "w1")
    try:
        # both runs write to the same log file
        wait_for(lambda: again.log_text().count("signed on") == 2, what="the second sign-on")
        assert again.log_text().count("registered at") == 1
    finally:
        again.proc.send_signal(signal.SIGTERM)
        again.proc.wait(15)
        again.stop()


def test_sigterm_stops_the_command_and_gives_the_task_back(farm, tmp_path: Path) -> None:
    server, mgr = farm
    # in a folder of its own: a task cannot create files beside the worker's protected data directory
    marker = tmp_path / "out" / "started"
    marker.parent.mkdir()
    agent = AgentProcess(mgr, tmp_path / "w2", "w2")
    try:
        job = submit(server, ["sh", "-c", f"touch {marker}; echo long task; sleep 60"], "1")
        wait_for(marker.exists, what=f"the command to start; worker log:\n{agent.log_text()}")
        task_id = tasks_of(server, job)[0]["id"]
        start = time.monotonic()
        agent.proc.send_signal(signal.SIGTERM)
        assert agent.proc.wait(15) == 0, agent.log_text()
        assert time.monotonic() - start < 5.0
        log = wait_for(lambda: (text := task_log(server, mgr, task_id)) and "given back" in text and text,
                       what="the given-back line in the task log")  # fmt: skip
        assert "long task" in log
        assert "given back: the worker is stopping" in log

        def requeued() -> bool:
            return tasks_of(server, job)[0]["status"] in ("queued", "assigned")

        wait_for(requeued, what="the task to be queued again at the Server")
        assert tasks_of(server, job)[0]["failure_count"] == 0
        assert "signal SIGTERM" in agent.log_text()
    finally:
        agent.stop()


def test_a_shutdown_request_from_the_server_stops_the_worker(farm, tmp_path: Path) -> None:
    server, mgr = farm
    agent = AgentProcess(mgr, tmp_path / "w3", "w3")
    try:

        def worker_id() -> str | None:
            r = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=30)
            body = r.json()
            items = body["items"] if isinstance(body, dict) else body
            return next((w["id"] for w in items if w["name"] == "w3"), None)

        wid = wait_for(worker_id, what="the Server to know the worker")
        # the idle worker is small: the goal is under 60 MB resident
        rss_mb = psutil.Process(agent.proc.pid).memory_info().rss / 2**20
        print(f"idle worker RSS: {rss_mb:.1f} MB")
        assert rss_mb < 60, f"idle worker RSS {rss_mb:.1f} MB"
        r = httpx.post(f"{server.url}{API}/workers/{wid}/status-request", json={"status": "shutdown", "lazy": True},
                       headers=server.headers(), timeout=30)  # fmt: skip
        assert r.status_code in (200, 202, 204), r.text
        assert agent.proc.wait(30) == 0, agent.log_text()
        assert "shutdown requested by the Manager" in agent.log_text()
    finally:
        agent.stop()


@pytest.mark.timeout(240)
def test_sleep_wake_cancel_and_restart(farm, tmp_path: Path) -> None:
    """Requests from the Server reach the worker through its Manager: asleep, awake, a canceled job, restart."""
    server, mgr = farm
    agent = AgentProcess(mgr, tmp_path / "w4", "w4")
    marker = tmp_path / "out" / "running"
    marker.parent.mkdir()
    try:
        wid = wait_for(lambda: _worker(server, "w4"), what="the Server to know the worker")["id"]
        _request(server, wid, "asleep")
        wait_for(lambda: (_worker(server, "w4") or {}).get("status") == "asleep", what="the worker to fall asleep")
        job = submit(server, ["sh", "-c", f"touch {marker}; echo sleeping; exec sleep 60"], "1")
        time.sleep(3)
        assert not marker.exists(), "an asleep worker ran a task"
        _request(server, wid, "awake")
        wait_for(marker.exists, what=f"the awake worker to start the task; log:\n{agent.log_text()}")
        sleeper = wait_for(lambda: _child_sleep(agent.proc.pid), what="the command's process")
        r = httpx.post(f"{server.url}{API}/jobs/{job}/status", json={"action": "cancel"}, headers=server.headers(),
                       timeout=30)  # fmt: skip
        assert r.status_code in (200, 202, 204), r.text
        # the Manager learns of it at once (its waiting claim ends to collect it), the worker from its waiting
        # may-i-run or from the answer to its next update (the Manager no longer holds the task)
        wait_for(lambda: process_gone(sleeper),
                 what="the canceled command to be stopped")  # fmt: skip
        assert agent.proc.poll() is None, "the worker must keep running after a canceled task"
        # the worker logs the stop once the command's process has ended
        wait_for(lambda: any(f"stopped: {why}" in agent.log_text() for why in (
            "the Manager stopped it", "the Manager says this hand-out is stale")),
            timeout=10, what=f"the stop in the worker's log:\n{agent.log_text()}")  # fmt: skip
        _request(server, wid, "restart")
        assert agent.proc.wait(40) == 75, agent.log_text()
    finally:
        agent.stop()


def _worker(server: ServerProcess, name: str) -> dict[str, Any] | None:
    r = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=30)
    body = r.json()
    items = body["items"] if isinstance(body, dict) else body
    return next((dict(w) for w in items if w["name"] == name), None)


def _request(server: ServerProcess, worker_id: str, status: str) -> None:
    r = httpx.post(f"{server.url}{API}/workers/{worker_id}/status-request", json={"status": status, "lazy": True},
                   headers=server.headers(), timeout=30)  # fmt: skip
    assert r.status_code in (200, 202, 204), r.text


def _child_sleep(pid: int) -> psutil.Process | None:
    return next((p for p in psutil.Process(pid).children(recursive=True) if p.name() == "sleep"), None)


def test_a_task_every_worker_is_blocklisted_for_fails_with_the_reason_instead_of_waiting(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    # a blocklist threshold (1) below the job's failure limit (3): after one failure the only worker may not
    # run the job's tasks any more; the task used to stay soft-failed at its Manager for ever
    mgr = ManagerProcess(
        fresh_server.url,
        add_manager(fresh_server, "m1"),
        tmp_path / "manager",
        extra_args=("--blocklist-threshold", "1"),
    ).start()
    agent = AgentProcess(mgr, tmp_path / "w1", "w1")
    try:
        body = {"name": "broken", "type": "exec", "max_task_failures": 3,
                "settings": {"command": ["sh", "-c", "exit 3"], "frames": "1"}}  # fmt: skip
        r = httpx.post(f"{fresh_server.url}{API}/jobs", json=body, headers=fresh_server.headers(), timeout=30)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]

        def job_status() -> str | None:
            got = httpx.get(f"{fresh_server.url}{API}/jobs/{job_id}", headers=fresh_server.headers(), timeout=30)
            return str(got.json()["status"]) if got.json()["status"] in ("failed", "completed") else None

        assert wait_for(job_status, timeout=60, what=f"the job to end; worker log:\n{agent.log_text()}") == "failed"
        (only,) = tasks_of(fresh_server, job_id)
        assert only["status"] == "failed" and "no worker may run it" in only["activity"]
        assert only["failure_count"] == 1  # it failed once; it was not run again on the blocklisted worker
    finally:
        agent.stop()
        mgr.stop()


def test_a_copied_workers_identity_is_the_last_signed_on_process_s_and_the_other_stays_down(
    farm, tmp_path: Path
) -> None:
    """A machine cloned with its worker's data folder: both processes would take each other's tasks back at every
    request. The process that signed on last keeps the identity; the other stops (78, EX_CONFIG), says what to
    do, and stays stopped when started again instead of taking the identity back."""
    server, mgr = farm
    first = AgentProcess(mgr, tmp_path / "a" / "w", "w")
    creds = tmp_path / "a" / "w" / "worker.json"
    try:
        wait_for(creds.exists, what=f"the first worker to register; log:\n{first.log_text()}")
        job = submit(server, ["sh", "-c", "echo started; sleep 60"], "1")
        wait_for(lambda: tasks_of(server, job)[0]["status"] == "active", what="the first worker to run the task")
        copy = tmp_path / "b" / "w"
        copy.mkdir(parents=True)
        (copy / "worker.json").write_bytes(creds.read_bytes())
        (copy / "worker.json").chmod(0o600)
        second = AgentProcess(mgr, copy, "w")
        try:
            assert first.proc.wait(30) == 78, first.log_text()
            assert "another process signed on" in first.log_text()
            assert "so that it registers anew" in first.log_text()
            assert "Traceback" not in first.log_text()
            # the task goes on under the identity's new process: run again there, once, and no ping-pong
            wait_for(
                lambda: second.proc.poll() is None and tasks_of(server, job)[0]["status"] == "active",
                what=f"the task to run on the second process; log:\n{second.log_text()}",
            )
            again = AgentProcess(mgr, tmp_path / "a" / "w", "w")
            assert again.proc.wait(30) == 78, again.log_text()
            assert "delete" in again.log_text() and str(tmp_path / "a" / "w" / "superseded") in again.log_text()
            # launchd restarts after any non-zero exit: its worker plists ask for a clean one
            under_launchd = AgentProcess(mgr, tmp_path / "a" / "w", "w", env={"TABLAO_WORKER_SUPERSEDED_EXIT": "0"})
            assert under_launchd.proc.wait(30) == 0, under_launchd.log_text()
            misset = AgentProcess(mgr, tmp_path / "a" / "w", "w", env={"TABLAO_WORKER_SUPERSEDED_EXIT": "no"})
            assert misset.proc.wait(30) == 2
            assert "TABLAO_WORKER_SUPERSEDED_EXIT: an exit status 0..255, not 'no'" in misset.log_text()
            time.sleep(1.0)
            assert second.proc.poll() is None, "the restarted copy took the identity back"
            assert tasks_of(server, job)[0]["status"] == "active"
        finally:
            second.stop()
    finally:
        first.stop()


def test_the_log_says_how_each_task_ended(farm, tmp_path: Path) -> None:
    server, mgr = farm
    agent = AgentProcess(mgr, tmp_path / "w1", "w1")
    try:
        body = {
            "name": "endings", "type": "exec", "max_task_failures": 1,
            "settings": {"command": ["sh", "-c", "test {frame} = 1"], "frames": "1-2"},
        }  # fmt: skip
        r = httpx.post(f"{server.url}{API}/jobs", json=body, headers=server.headers(), timeout=30)
        assert r.status_code == 201, r.text

        def ended() -> list[dict[str, Any]] | None:
            tasks = sorted(tasks_of(server, int(r.json()["id"])), key=lambda t: t["name"])
            return tasks if [t["status"] for t in tasks] == ["completed", "failed"] else None

        first, second = wait_for(ended, what=f"one task to complete, one to fail; worker log:\n{agent.log_text()}")
        wait_for(lambda: f"task {second['id']} " in agent.log_text(), what="the failed task's log line")
        log = agent.log_text()
        assert f"task {first['id']} completed" in log
        assert f"task {second['id']} failed: " in log
        assert " finished\n" not in log
    finally:
        agent.stop()


def test_a_servers_address_given_as_the_managers_stops_the_worker_with_one_line(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    proc = subprocess.run(
        [sys.executable, "-m", "services.worker.cli", "--manager", fresh_server.url, "--data-dir", str(tmp_path / "w"),
         "--registration-secret-file", str(secret), "--task-types", "misc"],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "retrying" not in proc.stderr, proc.stderr
    assert errors[0].endswith(
        f"{fresh_server.url} is not a Tablao Manager (it is a Tablao Server): give a Manager's address with "
        "--manager (a Manager listens on port 8471 unless told otherwise)"
    )


def test_a_task_printing_long_lines_fast_completes_and_the_worker_goes_on(farm, tmp_path: Path) -> None:
    """1,000 lines of 9,000 characters at once (as one update, 9 MB of JSON; 27 MB as escaped é) were over the
    Manager's 8 MiB limit: refused 413 for ever, the task active for good and the worker taking no more work."""
    server, mgr = farm
    agent = AgentProcess(mgr, tmp_path / "w1", "w1")
    try:
        script = "import sys; sys.stdout.write(''.join(f'{i} ' + 'é' * 9000 + '\\n' for i in range(1000)))"
        job = submit(server, [sys.executable, "-c", script], "1")
        after = submit(server, ["echo", "next {frame}"], "1")

        def done() -> bool:
            return all(t["status"] == "completed" for j in (job, after) for t in tasks_of(server, j))

        wait_for(done, timeout=120, what=f"both jobs to complete; worker log:\n{agent.log_text()[-3000:]}")
        (t,) = tasks_of(server, job)
        log = task_log(server, mgr, t["id"])
        assert "999 " + "é" * 9000 in log and "0 " + "é" * 9000 in log
        assert "413" not in agent.log_text()
    finally:
        agent.stop()
