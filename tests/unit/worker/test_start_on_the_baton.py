"""A prefetched task's process made while the task before's last process ran holds that process's baton and, told
"after", starts by itself as that process ends: no thread of the worker in between (runners/warm_start.py). The
worker can take that word back until the held process has read it; what it read, it runs, once. Real processes
through setpriv (Linux)."""

from __future__ import annotations

import asyncio
import ctypes
import shutil
import time
from pathlib import Path

import pytest

from services.protocol.jobs import Command
from services.protocol.worker_api import AssignedTask
from services.worker.runners import offer, thread_spawn, warm_start
from services.worker.runners.process import run_process
from tests.unit.worker.test_start_as_task_before_ends import protect_a_secret_beside
from tests.unit.worker.test_warm_start import SH, _made, _script, _until_gone, pytestmark  # noqa: F401

BASH = shutil.which("bash")


def _task(argv: list[str]) -> AssignedTask:
    return AssignedTask(
        id=9, job_id=1, job_name="j", name="t 9", type="exec", handout=1, steps_total=1,
        commands=[Command(name="exec", parameters={"argv": argv})],
    )  # fmt: skip


async def _before_and_held(
    marker: Path, before_argv: list[str]
) -> tuple[thread_spawn.ThreadSpawned, warm_start.WarmStart, list[str], int]:
    """The task before's last process (with its baton), and the next task's process made while it runs."""
    before = await thread_spawn.start(before_argv, cwd=None, extra_env=None, hands_on=True)
    assert before.baton is not None
    argv = _script(marker)
    warm = warm_start.begin(_task(argv), before)
    assert warm is not None
    return before, warm, argv, await _made(warm)


async def _run_offered(warm: warm_start.WarmStart, argv: list[str]) -> list[str]:
    offer.offer(warm)
    lines: list[str] = []
    assert await run_process(argv, lines.append) == 0
    return lines


async def test_it_starts_as_the_process_before_ends_while_no_python_thread_of_the_worker_can_run(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    before, warm, argv, pid = await _before_and_held(marker, [SH, "-c", "sleep 0.3"])
    assert warm.open_when_ended(before)
    # usleep through ctypes.PyDLL keeps the interpreter lock: the process before's own thread cannot run either
    ctypes.PyDLL(None).usleep(1_500_000)
    assert marker.read_text().split() == [str(pid)] and warm.opened_early
    assert await before.wait() == 0 and before.baton is None  # its end of the baton closed once reaped
    lines = await _run_offered(warm, argv)
    assert lines == [str(pid)] and marker.read_text().split() == [str(pid)]  # once, in the process made ahead


async def test_the_word_taken_back_before_the_end_it_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    before, warm, _, pid = await _before_and_held(marker, [SH, "-c", "sleep 0.3"])
    assert warm.open_when_ended(before)
    assert not warm.opened_early
    assert warm.withdraw()  # the worker sent to sleep, say
    assert await before.wait() == 0
    await _until_gone(pid)
    await asyncio.sleep(0.2)
    assert not marker.exists()


async def test_too_late_to_take_back_once_it_read_its_word(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    before, warm, _, pid = await _before_and_held(marker, [SH, "-c", "sleep 0.2"])
    assert warm.open_when_ended(before)
    await before.wait()
    deadline = time.monotonic() + 5
    # its word written, not only its file made: on a loaded machine the file was read between the two (empty)
    while not (marker.exists() and marker.read_text().strip()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert warm.opened_early and not warm.withdraw()  # it runs: kept, as a task started early is
    warm.discard()  # stopped as a running task is (the worker stopping now)
    await _until_gone(pid)
    assert marker.read_text().split() == [str(pid)]


async def test_when_the_process_before_is_stopped_the_next_waits_for_its_own_start(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    armed: list[bool] = []
    argv = _script(marker)
    warm: warm_start.WarmStart | None = None

    def hand_on(proc: thread_spawn.ThreadSpawned) -> None:
        nonlocal warm
        warm = warm_start.begin(_task(argv), proc)  # made while the last command runs: it holds its baton
        assert warm is not None
        warm.when_made(lambda: armed.append(warm is not None and warm.open_when_ended(proc)))

    offer.hand_on_after(hand_on)
    stopped = asyncio.create_task(run_process([SH, "-c", "sleep 30"], lambda line: None))
    offer.hand_on_after(None)  # (the task above has its own copy; the command below is not a last one)
    deadline = time.monotonic() + 10
    while not armed:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert armed == [True] and warm is not None
    pid = await _made(warm)
    stopped.cancel()  # the task cancelled: its process is stopped, which is not a task that ended
    with pytest.raises(asyncio.CancelledError):
        await stopped
    await asyncio.sleep(0.3)
    assert not marker.exists() and not warm.opened_early
    lines = await _run_offered(warm, argv)  # its task's own start lets it run, in the process made ahead
    assert lines == [str(pid)] and marker.read_text().split() == [str(pid)]


@pytest.mark.skipif(BASH is None, reason="needs bash")
async def test_a_process_before_that_closes_its_baton_early_lets_the_next_start_early_still_once(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    closes = (
        'for f in /proc/$$/fd/*; do n=${f##*/}; if ((n > 2)); then eval "exec $n>&-"; fi; done 2>/dev/null; sleep 0.5'
    )
    before, warm, argv, pid = await _before_and_held(marker, [str(BASH), "-c", closes])
    assert warm.open_when_ended(before)
    deadline = time.monotonic() + 5
    while not marker.exists():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert before.returncode is None  # it started while the process before still ran: that one's doing
    assert not warm.withdraw()  # and it is running: never given back quietly
    await before.wait()
    lines = await _run_offered(warm, argv)
    assert lines == [str(pid)] and marker.read_text().split() == [str(pid)]


async def test_what_the_task_before_left_running_with_its_baton_keeps_it_from_starting_early(tmp_path: Path) -> None:
    marker, child = tmp_path / "ran", tmp_path / "child"
    before, warm, argv, pid = await _before_and_held(marker, [SH, "-c", f"sleep 30 & echo $! > {child}; sleep 0.2"])
    try:
        assert warm.open_when_ended(before)
        assert await before.wait() == 0
        await asyncio.sleep(0.3)
        assert not marker.exists()  # the child holds the baton: the process before is not wholly gone
        lines = await _run_offered(warm, argv)  # the task's own start does not wait for that child
        assert lines != [str(pid)] and marker.read_text().split() == lines
        await _until_gone(pid)
    finally:
        thread_spawn.kill_group(before.pid)


async def test_a_folder_made_beside_a_protected_one_meanwhile_takes_the_word_back(tmp_path: Path) -> None:
    data = protect_a_secret_beside(tmp_path)
    marker = tmp_path / "ran"
    before, warm, argv, pid = await _before_and_held(marker, [SH, "-c", "sleep 0.6"])
    assert warm.open_when_ended(before)
    (data / "shot").mkdir()  # its held process's confinement does not know this folder
    await before.wait()
    await asyncio.sleep(0.2)
    assert not marker.exists() and not warm.opened_early
    lines = await _run_offered(warm, argv)  # the task's own start then makes a new process
    assert lines[0] != str(pid)
    await _until_gone(pid)
