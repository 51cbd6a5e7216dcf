"""The worker's control channel (`--control stdio`, as the tray drives it) against a real Manager and Server."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.integration.test_worker_agent import farm, submit, task_log, tasks_of  # noqa: F401 - the fixture
from tests.support.manager import API, ManagerProcess
from tests.support.services import ROOT, ServerProcess, child_env
from tests.support.waiting import wait_for


def server_worker(server: ServerProcess, name: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}{API}/workers", headers=server.headers(), timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    items = body["items"] if isinstance(body, dict) else body
    return next((w for w in items if w["name"] == name), {})


class ControlledWorker:
    def __init__(self, mgr: ManagerProcess, tmp: Path, name: str) -> None:
        secret = tmp / f"{name}.secret"
        secret.write_text(mgr.registration_secret + "\n")
        self.log_path = tmp / f"{name}.log"
        argv = [
            sys.executable, "-m", "services.worker.cli", "--manager", mgr.url, "--data-dir", str(tmp / name),
            "--name", name, "--registration-secret-file", str(secret), "--task-types", "exec,misc",
            "--heartbeat-interval", "0.5", "--poll-wait", "2", "--control", "stdio", "--render-priority", "low",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=child_env(), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log)  # fmt: skip
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, check: Any, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(event)
            if check(event):
                return event
        raise AssertionError(f"no matching event; saw {seen[-5:]}\nlog:\n{self.log_path.read_text()[-3000:]}")

    def drain(self) -> None:
        while not self.events.empty():
            self.events.get_nowait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.mark.timeout(180)
def test_pause_resume_stop_now_and_stop_through_the_channel(farm, tmp_path: Path) -> None:  # noqa: F811
    server, mgr = farm
    marker = tmp_path / "marks"
    marker.mkdir()
    worker = ControlledWorker(mgr, tmp_path, "wc")
    try:
        worker.send(cmd="pause", now=False, reason="outside-hours")
        worker.expect(lambda e: e["event"] == "state" and e["unavailable"] == "outside-hours")
        # the reason travels with the heartbeat to the Manager, and on to the Server's worker list
        wait_for(lambda: server_worker(server, "wc").get("unavailable") == "outside-hours",
                 what="the Server to show why the worker claims nothing")  # fmt: skip
        worker.send(cmd="nonsense")
        assert "unknown command" in worker.expect(lambda e: e["event"] == "error")["detail"]
        worker.proc.stdin.write(b"not json\n")  # type: ignore[union-attr]
        worker.proc.stdin.flush()  # type: ignore[union-attr]
        assert worker.expect(lambda e: e["event"] == "error")["detail"] == "not a JSON line"
        worker.send(cmd="pause", reason="made-up")
        assert "reason must be" in worker.expect(lambda e: e["event"] == "error")["detail"]

        # {frame} marks the start; the sleep is long enough to be stopped while running
        job = submit(server, ["sh", "-c", f"touch {marker}/{{frame}}; sleep 4"], "1-2")
        time.sleep(3)
        assert not list(marker.iterdir()), "a paused worker claimed a task"
        assert all(t["worker_name"] in (None, "") for t in tasks_of(server, job))

        worker.send(cmd="resume")
        wait_for(lambda: server_worker(server, "wc").get("unavailable", "x") is None, what="the reason cleared")
        started = worker.expect(lambda e: e["event"] == "task-started")
        assert started["task"]["job_id"] == job and started["task"]["name"]
        task_id = started["task"]["id"]
        wait_for(lambda: list(marker.iterdir()), what="the command to start")
        # the render process runs at the lower priority (--render-priority low)
        renders = psutil.Process(worker.proc.pid).children(recursive=True)
        assert renders and all(p.nice() == 10 for p in renders)
        worker.send(cmd="pause", now=True, reason="user-active")
        finished = worker.expect(lambda e: e["event"] == "task-finished")
        assert finished["outcome"] == "queued"
        assert finished["unavailable"] == "user-active" and finished["paused"] is True
        log = wait_for(lambda: (t := task_log(server, mgr, task_id)) and "given back" in t and t,
                       what="the given-back line")  # fmt: skip
        assert "paused on this computer (user-active)" in log
        wait_for(lambda: next(t for t in tasks_of(server, job) if t["id"] == task_id)["status"]
                 in ("queued", "assigned"), what="the task requeued")  # fmt: skip
        assert all(t["failure_count"] == 0 for t in tasks_of(server, job))

        worker.send(cmd="resume")
        wait_for(lambda: all(t["status"] == "completed" for t in tasks_of(server, job)), timeout=60,
                 what="the job to complete after resuming")  # fmt: skip
        worker.drain()
        worker.send(cmd="status")
        state = worker.expect(lambda e: e["event"] == "state" and e["task"] is None)
        assert state["status"] == "awake" and state["reachable"] is True and state["paused"] is False
        worker.send(cmd="stop")
        assert worker.proc.wait(20) == 0
    finally:
        worker.stop()


@pytest.mark.timeout(120)
def test_closing_the_channel_stops_the_worker(farm, tmp_path: Path) -> None:  # noqa: F811
    _, mgr = farm
    worker = ControlledWorker(mgr, tmp_path, "wd")
    try:
        worker.expect(lambda e: e["event"] == "state" and e["status"] == "awake")
        worker.proc.stdin.close()  # type: ignore[union-attr]
        # the worker may write a last state line; keep reading so it never blocks on a full pipe
        assert worker.proc.wait(20) == 0
        assert "closed the control channel" in worker.log_path.read_text()
    finally:
        worker.stop()


@pytest.mark.timeout(180)
def test_the_managers_sleep_schedule_puts_the_worker_to_sleep_and_wakes_it(farm, tmp_path: Path) -> None:  # noqa: F811
    from datetime import datetime, timedelta

    server, mgr = farm
    worker = ControlledWorker(mgr, tmp_path, "wsl")
    try:
        worker.expect(lambda e: e["event"] == "state" and e["status"] == "awake")
        wid = wait_for(lambda: server_worker(server, "wsl").get("id"), what="the worker at the Server")
        url = f"{mgr.url}{API}/workers/{wid}/sleep-schedule"
        now = datetime.now().astimezone()
        window = {"active": True, "days": list(range(7)), "start": f"{now - timedelta(minutes=1):%H:%M}",
                  "end": f"{now + timedelta(minutes=30):%H:%M}"}  # fmt: skip
        # who may do this: a token is needed, and a wrangler's role
        assert httpx.put(url, json=window, timeout=30).status_code == 401
        with httpx.Client(base_url=server.url + API, headers=server.headers(), timeout=30) as admin:
            assert (
                admin.post("/users", json={"name": "ana", "role": "artist", "password": "ana-password"}).status_code
                == 201
            )
            artist = admin.post("/tokens", json={"user": "ana", "name": "t"}).json()["token"]
        r = httpx.put(url, json=window, headers={"Authorization": f"Bearer {artist}"}, timeout=30)
        assert r.status_code == 403, r.text
        bad = httpx.put(url, json={**window, "start": "7pm"}, headers=server.headers(), timeout=30)
        assert bad.status_code == 422 and "start" in bad.text
        missing = httpx.put(url.replace(wid, "nobody"), json=window, headers=server.headers(), timeout=30)
        assert missing.status_code == 404
        r = httpx.put(url, json=window, headers=server.headers(), timeout=30)
        assert r.status_code == 200, r.text
        assert httpx.get(url, headers=server.headers(), timeout=30).json() == window

        worker.expect(lambda e: e["event"] == "state" and e["status"] == "asleep")
        wait_for(lambda: (w := server_worker(server, "wsl")).get("status") == "asleep" and w["unavailable"] == "asleep",
                 what="the Server to show the worker asleep, because of its schedule")  # fmt: skip
        r = httpx.put(url, json={**window, "active": False}, headers=server.headers(), timeout=30)
        assert r.status_code == 200
        worker.expect(lambda e: e["event"] == "state" and e["status"] == "awake")
        wait_for(lambda: (w := server_worker(server, "wsl")).get("status") == "awake" and w["unavailable"] is None,
                 what="the worker awake again")  # fmt: skip
    finally:
        worker.stop()


def _request(server: ServerProcess, worker_id: str, status: str, lazy: bool) -> dict[str, Any]:
    r = httpx.post(f"{server.url}{API}/workers/{worker_id}/status-request", json={"status": status, "lazy": lazy},
                   headers=server.headers(), timeout=30)  # fmt: skip
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.mark.timeout(300)
def test_a_wranglers_requests_reach_the_worker_through_the_manager(farm, tmp_path: Path) -> None:  # noqa: F811
    """Sleep now, wake, restart at once, and shut down after the task: asked at the Server, carried by the
    Manager's update answers and the worker's heartbeat answers, and each request cleared once done."""
    server, mgr = farm
    marker = tmp_path / "marks"
    marker.mkdir()
    worker = ControlledWorker(mgr, tmp_path, "wr")
    try:
        worker.expect(lambda e: e["event"] == "state" and e["status"] == "awake")
        wid = wait_for(lambda: server_worker(server, "wr").get("id"), what="the worker at the Server")
        job = submit(server, ["sh", "-c", f"touch {marker}/{{frame}}; sleep 6"], "1")
        started = worker.expect(lambda e: e["event"] == "task-started")
        task_id = started["task"]["id"]

        # sleep now: the running task is given back (not a failure) and the worker sleeps
        assert _request(server, wid, "asleep", lazy=False)["status_requested"] == "asleep"
        finished = worker.expect(lambda e: e["event"] == "task-finished")
        assert finished["outcome"] == "queued" and finished["status"] == "asleep"
        wait_for(lambda: (w := server_worker(server, "wr"))["status"] == "asleep" and w["status_requested"] is None,
                 what="the Server to see the worker asleep and the request done")  # fmt: skip
        task = next(t for t in tasks_of(server, job) if t["id"] == task_id)
        assert task["failure_count"] == 0

        # wake: it takes the task again
        _request(server, wid, "awake", lazy=True)
        again = worker.expect(lambda e: e["event"] == "task-started")
        assert again["task"]["id"] == task_id

        # restart at once: the process exits with the restart code, and the request is done (no restart loop)
        _request(server, wid, "restart", lazy=False)
        assert worker.proc.wait(30) == 75
        wait_for(lambda: server_worker(server, "wr")["status_requested"] is None, what="the restart request done")
        worker.stop()
        worker = ControlledWorker(mgr, tmp_path, "wr")  # what a supervisor does: start it again, same identity
        worker.expect(lambda e: e["event"] == "task-started", timeout=60)
        assert server_worker(server, "wr")["id"] == wid
        assert worker.proc.poll() is None, "the restarted worker was told to restart again"
        # the Server hears of it with the Manager's next worker reports (an offline worker cannot be shut down)
        wait_for(lambda: server_worker(server, "wr")["status"] != "offline", what="the Server to see it back")

        # shut down after the task: the task completes, then the worker exits 0
        _request(server, wid, "shutdown", lazy=True)
        finished = worker.expect(lambda e: e["event"] == "task-finished", timeout=60)
        assert finished["outcome"] == "completed"
        assert worker.proc.wait(30) == 0
        wait_for(lambda: (w := server_worker(server, "wr"))["status"] == "offline" and w["status_requested"] is None,
                 what="the worker offline and the request done")  # fmt: skip
        assert all(t["status"] == "completed" for t in tasks_of(server, job))
    finally:
        worker.stop()
