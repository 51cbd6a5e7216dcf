"""The prefetch of one with real Server, Manager and Worker processes: shown at both, run once, given back, killed."""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import psutil
import pytest

from tests.integration.test_worker_agent import AgentProcess, _request, _worker, farm, submit, tasks_of  # noqa: F401 - farm: the fixture
from tests.support.cut_proxy import CutProxy
from tests.support.manager import API, ManagerProcess, add_manager
from tests.support.services import ServerProcess
from tests.support.waiting import wait_for


def frames_job(server: ServerProcess, out: Path, frames: str, seconds: float) -> int:
    """Each task appends its frame to out/ran.txt when its command starts, then sleeps."""
    out.mkdir(parents=True, exist_ok=True)
    return submit(server, ["sh", "-c", f"echo {{frame}} >> {out}/ran.txt; sleep {seconds}"], frames)


def ran(out: Path) -> Counter[int]:
    path = out / "ran.txt"
    return Counter(int(x) for x in path.read_text().split()) if path.exists() else Counter()


def frame_of(server: ServerProcess, job: int, task_id: int) -> int:
    task = next(t for t in tasks_of(server, job) if t["id"] == task_id)
    return int(task["name"].split()[-1])


def _held_processes(worker_pid: int) -> list[psutil.Process]:
    """The worker's task processes still held before their program (a shell waiting on the gate's pipe)."""
    held = []
    for child in psutil.Process(worker_pid).children():
        with contextlib.suppress(psutil.Error):
            if "tablao-gate" in child.cmdline():
                held.append(child)
    return held


def all_completed(server: ServerProcess, job: int) -> list[dict[str, Any]] | None:
    tasks = tasks_of(server, job)
    return tasks if all(t["status"] == "completed" for t in tasks) else None


def with_next_task(server: ServerProcess, name: str) -> dict[str, Any] | None:
    w = _worker(server, name)
    return w if w and w.get("next_task_id") is not None and w.get("current_task_id") is not None else None


@pytest.mark.timeout(300)
def test_workers_run_every_task_once_with_a_next_one_leased_shown_at_the_manager_and_the_server(
    farm,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    server, mgr = farm
    agents = [AgentProcess(mgr, tmp_path / name, name) for name in ("w1", "w2")]
    out = tmp_path / "out"
    try:
        # tasks long enough for the Manager's report of a worker holding two to reach the Server on a busy machine
        job = frames_job(server, out, "1-8", 3)
        seen = wait_for(lambda: with_next_task(server, "w1") or with_next_task(server, "w2"), timeout=120,
                        what="a worker with a prefetched task at the Server")  # fmt: skip
        assert seen["next_task_id"] != seen["current_task_id"]
        status = httpx.get(f"{mgr.url}{API}/status", headers=server.headers(), timeout=30).json()
        assert "tasks_prefetched" in status
        wait_for(lambda: all_completed(server, job), timeout=180, what="the job to complete")
        assert ran(out) == Counter(range(1, 9)), "every frame ran exactly once"
        wait_for(lambda: all((_worker(server, n) or {}).get("next_task_id") is None for n in ("w1", "w2")),
                 what="no next task left once the job is done")  # fmt: skip
    finally:
        for agent in agents:
            agent.stop()


@pytest.mark.timeout(240)
def test_a_prefetched_task_starts_as_the_task_before_ends_and_each_runs_once(
    farm,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """Its process made ahead is let run by the thread that sees the task before's process end
    (runners/warm_start.py `open_when_ended`); the worker's log says so (-v)."""
    server, mgr = farm
    agent = AgentProcess(mgr, tmp_path / "w1", "w1", extra=("-v",))
    out = tmp_path / "out"
    try:
        job = frames_job(server, out, "1-6", 0.5)
        wait_for(lambda: all_completed(server, job), timeout=120, what=f"the job to complete; log:\n{agent.log_text()}")
        assert ran(out) == Counter(range(1, 7)), "every frame ran exactly once"
        early = re.findall(r"task (\d+) runs in process \d+, started as the task before ended", agent.log_text())
        assert early, f"no task started as the one before ended; log:\n{agent.log_text()}"
        assert len(set(early)) == len(early)
    finally:
        agent.stop()


@pytest.mark.timeout(240)
def test_sleep_after_this_task_gives_the_prefetched_task_back_unrun(farm, tmp_path: Path) -> None:  # noqa: F811
    server, mgr = farm
    agent = AgentProcess(mgr, tmp_path / "w1", "w1")
    out = tmp_path / "out"
    try:
        job = frames_job(server, out, "1-3", 8)
        w = wait_for(lambda: with_next_task(server, "w1"), what="the worker's prefetched task at the Server")
        # lazy: after the running task. The request reaches the worker through the Manager's next exchange with
        # the Server, so it may land in a later task: the log says which task was prefetched then
        _request(server, w["id"], "asleep")
        given = wait_for(lambda: re.search(r"task (\d+) \(prefetched\) given back", agent.log_text()), timeout=60,
                         what=f"the prefetched task to be given back; log:\n{agent.log_text()}")  # fmt: skip
        wait_for(lambda: (_worker(server, "w1") or {}).get("status") == "asleep", timeout=60,
                 what="the worker to fall asleep after its task")  # fmt: skip
        time.sleep(2)
        assert (_worker(server, "w1") or {}).get("next_task_id") is None
        started = re.findall(r"task (\d+) \(frame \d+\) hand-out \d+ started", agent.log_text())
        assert given.group(1) not in started, "the given-back task ran on a worker going to sleep"
        assert ran(out)[frame_of(server, job, int(given.group(1)))] == 0
        assert sum(ran(out).values()) == len(started), "a worker told to sleep after its task started another"
        _request(server, w["id"], "awake")
        wait_for(lambda: all_completed(server, job), timeout=120, what="the job to complete once awake")
        assert ran(out) == Counter(range(1, 4))
    finally:
        agent.stop()


@pytest.mark.timeout(300)
def test_a_sleep_request_late_in_a_task_keeps_its_prefetched_task_from_starting(
    farm,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """ "Asleep after this task" is heard while the task runs, however late: the running task's may-i-run waits at
    the Manager for news (manager/run_watch.py). Heartbeats and the may-i-run pace are set far beyond the task
    here, so only that waiting request can tell the worker before its prefetched task would start."""
    server, mgr = farm
    slow = ("--heartbeat-interval", "30", "--may-i-run-interval", "60")
    agent = AgentProcess(mgr, tmp_path / "w1", "w1", extra=slow)
    out = tmp_path / "out"
    try:
        job = frames_job(server, out, "1-3", 8)
        w = wait_for(lambda: with_next_task(server, "w1"), what="the worker's prefetched task at the Server")
        running, prefetched = w["current_task_id"], w["next_task_id"]
        time.sleep(2)  # past the task's first may-i-run (half a second in), which would hear it without waiting
        _request(server, w["id"], "asleep")
        wait_for(lambda: (_worker(server, "w1") or {}).get("status") == "asleep", timeout=60,
                 what=f"the worker to fall asleep after its task; log:\n{agent.log_text()}")  # fmt: skip
        time.sleep(1)
        assert f"task {prefetched} (prefetched) given back" in agent.log_text()
        assert ran(out) == Counter({frame_of(server, job, running): 1}), "a task started after the request"
        assert _held_processes(agent.proc.pid) == [], "the given-back task's process made ahead is still held"
        assert (_worker(server, "w1") or {}).get("next_task_id") is None
    finally:
        agent.stop()


@pytest.mark.timeout(300)
def test_a_killed_worker_s_prefetched_task_runs_once_elsewhere(fresh_server: ServerProcess, tmp_path: Path) -> None:
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager",
                         extra_args=("--worker-timeout", "3")).start()  # fmt: skip
    out = tmp_path / "out"
    first = AgentProcess(mgr, tmp_path / "w1", "w1")
    second: AgentProcess | None = None
    try:
        job = frames_job(fresh_server, out, "1-3", 4)
        w = wait_for(lambda: with_next_task(fresh_server, "w1"), what="the worker's prefetched task")
        next_frame = frame_of(fresh_server, job, w["next_task_id"])
        # its process is made ahead, held before its program (runners/warm_start.py): it goes with the worker
        held = wait_for(lambda: _held_processes(first.proc.pid), what="the prefetched task's process made ahead")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in held), timeout=10,
                 what="the held process to end with its worker")  # fmt: skip
        second = AgentProcess(mgr, tmp_path / "w2", "w2")
        wait_for(lambda: all_completed(fresh_server, job), timeout=200,
                 what=f"the job to complete on the second worker; log:\n{second.log_text()}")  # fmt: skip
        counts = ran(out)
        assert counts[next_frame] == 1, f"the prefetched task ran {counts[next_frame]} times"
        assert set(counts) == {1, 2, 3}
    finally:
        first.stop()
        if second is not None:
            second.stop()
        mgr.stop()


@pytest.mark.timeout(300)
def test_a_manager_killed_and_started_again_keeps_current_and_next_and_each_task_runs_once(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager").start()
    out = tmp_path / "out"
    agent = AgentProcess(mgr, tmp_path / "w1", "w1")
    try:
        job = frames_job(fresh_server, out, "1-4", 2)
        wait_for(lambda: with_next_task(fresh_server, "w1"), what="the worker's prefetched task")
        mgr.kill()
        time.sleep(1)
        mgr.start()
        wait_for(lambda: all_completed(fresh_server, job), timeout=200,
                 what=f"the job to complete; worker log:\n{agent.log_text()}")  # fmt: skip
        assert ran(out) == Counter(range(1, 5)), "every frame ran exactly once across the Manager's restart"
    finally:
        agent.stop()
        mgr.stop()


@pytest.mark.timeout(300)
def test_a_worker_cut_off_from_its_manager_does_not_start_its_prefetched_task(
    fresh_server: ServerProcess, tmp_path: Path
) -> None:
    """From a fault-injection audit: a worker whose line to the Manager was cut ran its running task to its end and
    then its prefetched one, which the Manager had meanwhile given to another worker (its worker timeout passed):
    that frame ran twice. A worker that has not heard the Manager for half the worker timeout (said at sign-on)
    gives its prefetched task back instead; only the task it was running may run twice (docs/manager.md)."""
    mgr = ManagerProcess(fresh_server.url, add_manager(fresh_server, "m1"), tmp_path / "manager",
                         extra_args=("--worker-timeout", "6")).start()  # fmt: skip
    out = tmp_path / "out"
    agents: list[AgentProcess] = []
    with CutProxy(mgr.port) as line:
        try:
            cut_off = AgentProcess(cast("ManagerProcess", SimpleNamespace(url=line.url,
                                   registration_secret=mgr.registration_secret)), tmp_path / "w1", "w1")  # fmt: skip
            agents.append(cut_off)
            frames_job(fresh_server, out, "1-3", 12)
            # the next task leased and its process made ahead (runners/warm_start.py), early in the running one
            wait_for(lambda: _held_processes(cut_off.proc.pid), timeout=60, what="the prefetched task's process")
            line.cut()
            (running,) = ran(out)
            agents.append(AgentProcess(mgr, tmp_path / "w2", "w2"))  # takes what the Manager takes back
            wait_for(lambda: sum(ran(out).values()) >= 3, timeout=120, what="the other frames to run elsewhere")
            time.sleep(14)  # past the end of the cut-off worker's running task: it would start the next one then
            line.mend()
            wait_for(lambda: "is stale" in cut_off.log_text(), timeout=60, what="the cut-off worker to hear")
            counts = ran(out)
            # the running task may run again (its worker was silent past the timeout); no other one
            assert counts == Counter({1: 1, 2: 1, 3: 1, running: counts[running]}), counts
            assert "given back: no answer from the Manager for" in cut_off.log_text()
        finally:
            for agent in agents:
                agent.stop()
            mgr.stop()
