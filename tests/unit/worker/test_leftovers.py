"""What a task left running when its worker was killed outright is found by the mark in its environment and
ended at the worker's next start; other workers' processes and unmarked ones are left alone."""

from __future__ import annotations

import contextvars
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from services.worker import leftovers, task_policy
from services.worker.task_policy import TaskPolicy, effective_policy

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="found through /proc")


def _orphan(mark: str | None) -> int:
    """A process started by a shell that has exited (as a task's child outlives it), with or without a mark."""
    env = {**os.environ}
    if mark is not None:
        env[leftovers.MARK] = mark
    out = subprocess.run(["sh", "-c", "sleep 120 >/dev/null 2>&1 & echo $!"], env=env, capture_output=True, text=True)
    return int(out.stdout.strip())


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def started() -> Iterator[list[int]]:
    pids: list[int] = []
    yield pids
    for pid in pids:
        if _running(pid):
            os.kill(pid, 9)


def test_a_workers_leftovers_are_ended_and_no_one_elses(
    tmp_path: Path, started: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    ours, other = tmp_path / "worker-a", tmp_path / "worker-b"
    left = [_orphan(leftovers.mark_of(ours)) for _ in range(2)]
    theirs = _orphan(leftovers.mark_of(other))
    plain = _orphan(None)
    prefix = _orphan(leftovers.mark_of(ours) + "x")  # a data directory whose path starts like ours
    started.extend([*left, theirs, plain, prefix])
    assert leftovers.find(ours) == sorted(left)
    with caplog.at_level(logging.WARNING, logger="tablao.worker.leftovers"):
        assert leftovers.end(ours) == sorted(left)
    deadline = time.monotonic() + 5
    while any(map(_running, left)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_running, left))
    assert all(map(_running, (theirs, plain, prefix)))
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "ended 2 process(es)" in said[0] and str(left[0]) in said[0], said
    assert leftovers.end(ours) == []  # nothing more, and nothing said


def test_every_task_process_carries_the_mark_of_its_workers_data_directory(tmp_path: Path) -> None:
    policy = effective_policy(TaskPolicy(confine=False), tmp_path / "worker")

    def prepare() -> task_policy.Prepared:  # in a context of its own: the policy is not left to later tests
        task_policy.use_policy(policy)
        return task_policy.prepare({leftovers.MARK: "forged", "SHOT": "010"})  # a job cannot set the mark

    prepared = contextvars.copy_context().run(prepare)
    try:
        assert prepared.env[leftovers.MARK] == leftovers.mark_of(tmp_path / "worker")
        assert str(tmp_path) not in prepared.env[leftovers.MARK]  # where the worker keeps its files is not said
        assert not [name for name in prepared.env if name.startswith("TABLAO_")]
        assert prepared.env["SHOT"] == "010"
        assert leftovers.MARK not in prepared.base_env  # the variables a held process is compared on
    finally:
        prepared.close()


def test_only_the_workers_and_the_task_users_processes_are_looked_at(tmp_path: Path, started: list[int]) -> None:
    ours = tmp_path / "worker"
    started.append(pid := _orphan(leftovers.mark_of(ours)))
    assert leftovers.find(ours, leftovers.task_uids(None)) == [pid]
    assert leftovers.find(ours, frozenset({os.getuid() + 4242})) == []  # another user's: not even read


def test_a_scan_that_hangs_does_not_keep_the_worker_from_starting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading a process's environment waits for its memory map, which one stuck on a dead share holds."""
    stuck = threading.Event()
    monkeypatch.setattr(leftovers, "find", lambda *_a, **_k: stuck.wait(60) and [])
    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tablao.worker.leftovers"):
        assert leftovers.end(tmp_path / "worker", within=0.3) == []
    assert time.monotonic() - t0 < 5
    assert "could not look at every process within 0 s" in caplog.text
    stuck.set()
