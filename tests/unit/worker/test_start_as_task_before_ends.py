"""A prefetched task's process made ahead starts the moment the task before's last process ends, from that process's
own thread (runners/warm_start.py `open_when_ended`), unless it was taken back, the process before was stopped, or
its confinement no longer is what a start would give. Real processes through setpriv (Linux)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from services.protocol.jobs import Command
from services.protocol.states import TaskStatus
from services.protocol.worker_api import AssignedTask
from services.protocol.worker_client import WorkerClient
from services.worker import landlock, task_policy
from services.worker.buffer import UpdateBuffer
from services.worker.prefetcher import Prefetcher
from services.worker.runners import Programs, offer, thread_spawn, warm_start
from services.worker.runners.process import run_process
from services.worker.taskrun import TaskRun
from tests.unit.worker.test_warm_start import SH, _gone, _made, _script, _until_gone, pytestmark  # noqa: F401


def _task(task_id: int, argv: list[str]) -> AssignedTask:
    return AssignedTask(
        id=task_id, job_id=1, job_name="j", name=f"t {task_id}", type="exec", handout=1, steps_total=1,
        commands=[Command(name="exec", parameters={"argv": argv})],
    )  # fmt: skip


async def _held(marker: Path, task_id: int = 9) -> tuple[warm_start.WarmStart, list[str], int]:
    argv = _script(marker)
    warm = warm_start.begin(_task(task_id, argv))
    assert warm is not None
    return warm, argv, await _made(warm)


async def _wait_for(path: Path, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(path.exists):
        assert time.monotonic() < deadline, f"{path.name} was never written"
        await asyncio.sleep(0.01)


async def test_the_next_process_starts_from_the_thread_as_the_one_before_ends_while_the_loop_is_busy(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    warm, argv, pid = await _held(marker)
    before = await thread_spawn.start([SH, "-c", "sleep 0.3"], cwd=None, extra_env=None)
    assert warm.open_when_ended(before)
    # the loop is held up on purpose: only the ending process's own thread can start the next meanwhile
    time.sleep(1.5)  # noqa: ASYNC251
    assert marker.read_text().split() == [str(pid)] and warm.opened_early
    assert await before.wait() == 0

    offer.offer(warm)  # its task's command finds its program running, and follows it to the end
    lines: list[str] = []
    assert await run_process(argv, lines.append) == 0
    assert lines == [str(pid)] and marker.read_text().split() == [str(pid)]  # once


async def test_taken_back_before_the_end_it_never_runs_and_after_it_cannot_be(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    warm, _, pid = await _held(marker)
    before = await thread_spawn.start([SH, "-c", "sleep 0.2"], cwd=None, extra_env=None)
    assert warm.open_when_ended(before)
    assert warm.withdraw()
    assert await before.wait() == 0
    await _until_gone(pid)
    await asyncio.sleep(0.2)
    assert not marker.exists()

    late, child = tmp_path / "late", tmp_path / "child"
    argv = [SH, "-c", f"sleep 30 & echo $! > {child}; echo $$ > {late}; wait"]  # a program with a child
    started = warm_start.begin(_task(9, argv))
    assert started is not None
    pid = await _made(started)
    before = await thread_spawn.start([SH, "-c", "sleep 0.2"], cwd=None, extra_env=None)
    assert started.open_when_ended(before)
    await before.wait()
    await _wait_for(late)
    assert not started.withdraw()  # running: not ours to take back quietly
    started.discard()  # stopped as a running task is (the worker stopping now), with what it started
    await _until_gone(pid)
    await _until_gone(int(child.read_text()))


async def test_a_process_that_ended_already_or_was_stopped_starts_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    warm, _, pid = await _held(marker)
    ended = await thread_spawn.start([SH, "-c", "true"], cwd=None, extra_env=None)
    await ended.wait()
    assert not warm.open_when_ended(ended)

    # a command stopped (the task cancelled, the worker stopping) is not a task that ended: the next waits
    armed: list[bool] = []
    offer.hand_on_after(lambda proc: armed.append(warm.open_when_ended(proc)))
    stopped = asyncio.create_task(run_process([SH, "-c", "sleep 30"], lambda line: None))
    await asyncio.sleep(0.5)
    assert armed == [True]
    stopped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopped
    await asyncio.sleep(0.3)
    assert not marker.exists() and not warm.opened_early
    warm.discard()
    await _until_gone(pid)


def protect_a_secret_beside(tmp_path: Path) -> Path:
    """Confine tasks with `data/secret` protected; returns `data`, where a new folder changes the rules."""
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")
    data = tmp_path / "data"
    (data / "secret").mkdir(parents=True)
    task_policy.use_policy(
        task_policy.effective_policy(task_policy.TaskPolicy(protect=(data / "secret",)), tmp_path / "worker")
    )
    return data


async def test_a_folder_made_beside_a_protected_one_meanwhile_keeps_it_from_starting_early(tmp_path: Path) -> None:
    data = protect_a_secret_beside(tmp_path)
    marker = tmp_path / "ran"
    warm, argv, pid = await _held(marker)
    before = await thread_spawn.start([SH, "-c", "sleep 0.3"], cwd=None, extra_env=None)
    assert warm.open_when_ended(before)
    (data / "shot").mkdir()  # its held process's confinement does not know this folder
    await before.wait()
    await asyncio.sleep(0.2)
    assert not marker.exists() and not warm.opened_early

    offer.offer(warm)  # the task's own start then makes a new process
    lines: list[str] = []
    assert await run_process(argv, lines.append) == 0
    assert lines[0] != str(pid)
    await _until_gone(pid)


async def test_a_task_s_last_exec_hands_on_and_the_prefetched_task_runs_once(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    warm, argv, pid = await _held(marker)
    client = WorkerClient("http://127.0.0.1:9")  # nothing listens: the task's may-i-run fails, changing nothing
    buffer = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=60)
    handed: list[bool] = []
    before = AssignedTask(
        id=7, job_id=1, job_name="j", name="t 7", type="exec", handout=1, steps_total=1,
        commands=[Command(name="echo", parameters={"message": "first"}),
                  Command(name="exec", parameters={"argv": [SH, "-c", "sleep 0.2"]})],
    )  # fmt: skip
    run = TaskRun(
        before, client=client, buffer=buffer, programs=Programs(), worker_name="w", may_i_run_interval=60,
        may_i_run_wait=20, flush_interval=60, grace_seconds=0.5,
        hand_on=lambda proc: handed.append(warm.open_when_ended(proc)),
    )  # fmt: skip
    try:
        assert await run.run() and run.outcome == TaskStatus.COMPLETED
        assert handed == [True]  # the last command's process only
        await _wait_for(marker)
        nxt = TaskRun(
            _task(9, argv), client=client, buffer=buffer, programs=Programs(), worker_name="w",
            may_i_run_interval=60, may_i_run_wait=20, flush_interval=60, grace_seconds=0.5, warm=warm,
        )  # fmt: skip
        assert await nxt.run() and nxt.outcome == TaskStatus.COMPLETED
        with sqlite3.connect(tmp_path / "u.sqlite") as db:
            rows = [json.loads(b) for t, b in db.execute("SELECT task_id, body FROM updates") if t == 9]
        assert str(pid) in [line for u in rows for line in u.get("log_lines") or []]  # what the task logged
        assert marker.read_text().split() == [str(pid)]  # it ran once, in the process made ahead
    finally:
        buffer.close()
        await client.aclose()


async def test_given_back_without_now_a_task_started_early_is_kept_and_runs(tmp_path: Path) -> None:
    client = WorkerClient("http://127.0.0.1:9")
    prefetch = Prefetcher(client, poll_wait=1, may_ask=lambda: True)
    prefetch.buffer = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=60)
    marker = tmp_path / "ran"
    try:
        warm, _, pid = await _held(marker)
        prefetch.task, prefetch.warm = _task(9, _script(marker)), warm
        prefetch.last_process_started(await thread_spawn.start([SH, "-c", "sleep 0.2"], cwd=None, extra_env=None))
        await _wait_for(marker)
        assert prefetch.started_early()
        prefetch.give_back("the worker was sent to sleep after its task")  # heard a moment too late
        assert prefetch.task is not None and prefetch.buffer.head() == []
        prefetch.give_back("the worker is stopping", now=True)
        assert prefetch.task is None
        assert [json.loads(r.body)["status"] for r in prefetch.buffer.head()] == [TaskStatus.QUEUED.value]
        await _until_gone(pid)
    finally:
        prefetch.buffer.close()
        await client.aclose()
