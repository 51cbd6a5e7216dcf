"""The process wrapper and the exec/echo/sleep runners, with real subprocesses."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import psutil
import pytest

from services.worker.runners import CommandFailed, get_runner
from services.worker.runners.process import run_process

pytestmark = pytest.mark.usefixtures("spawn_way")

PY = sys.executable


def _alive(pid: int) -> bool:
    # a killed orphan may linger as a zombie until init reaps it: that counts as gone
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_lines_stream_in_order_from_stdout_and_stderr(rec):
    code = (
        "import sys\nfor i in range(3):\n"
        "    print('out', i, flush=True)\n    print('err', i, file=sys.stderr, flush=True)"
    )
    status = await run_process([PY, "-c", code], rec.lines.append)
    assert status == 0
    assert rec.lines == ["out 0", "err 0", "out 1", "err 1", "out 2", "err 2"]


async def test_lines_arrive_while_the_process_runs():
    seen: list[tuple[float, str]] = []
    code = "import time\nprint('first', flush=True)\ntime.sleep(0.6)\nprint('second', flush=True)"
    start = time.monotonic()
    await run_process([PY, "-c", code], lambda line: seen.append((time.monotonic() - start, line)))
    assert [line for _, line in seen] == ["first", "second"]
    assert seen[1][0] - seen[0][0] > 0.4  # the first line was delivered before the program ended


async def test_carriage_returns_and_a_last_line_without_newline(rec):
    await run_process([PY, "-c", "import sys; sys.stdout.write('a\\rb\\r\\nc')"], rec.lines.append)
    assert rec.lines == ["a", "b", "c"]


async def test_exit_status_is_returned(rec):
    assert await run_process([PY, "-c", "raise SystemExit(3)"], rec.lines.append) == 3


async def test_missing_program_is_a_clear_failure(rec):
    with pytest.raises(CommandFailed, match="not found"):
        await run_process(["/nonexistent/tablao-program"], rec.lines.append)


async def test_cancel_stops_the_whole_process_group_within_a_second(tmp_path: Path, rec):
    pidfile = tmp_path / "child.pid"
    # a shell whose child sleeps: both must go, not only the direct child
    script = f"sleep 30 & echo $! > {pidfile}; echo started; wait"
    started = asyncio.Event()
    task = asyncio.create_task(run_process(["sh", "-c", script], lambda line: started.set(), grace_seconds=0.5))
    await started.wait()
    grandchild = int(pidfile.read_text())
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 1.0
    await asyncio.sleep(0.05)
    assert not _alive(grandchild)


async def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(rec):
    code = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ntime.sleep(30)"
    )
    ready = asyncio.Event()
    task = asyncio.create_task(run_process([PY, "-c", code], lambda line: ready.set(), grace_seconds=0.3))
    await ready.wait()
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0.25 < time.monotonic() - start < 1.0


async def test_exec_runs_a_program_with_cwd_and_env(tmp_path: Path, rec):
    run = get_runner("exec")
    assert run is not None
    code = "import os; print(os.getcwd()); print(os.environ['FARM_TEST'])"
    await run({"argv": [PY, "-c", code], "cwd": str(tmp_path), "env": {"FARM_TEST": "hello"}}, rec.context())
    assert rec.lines == [str(tmp_path), "hello"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"argv": [PY, "-c", "raise SystemExit(2)"]}, "exited with status 2"),
        ({"argv": ["tablao-no-such-program"]}, "not found"),
        ({"argv": []}, "exec: parameter 'argv': list should have at least 1 item"),
        ({"argv": "ls -l"}, "exec: parameter 'argv': input should be a valid list, got 'ls -l'"),
        ({"argv": [PY], "cwd": "/nonexistent/dir"}, "working directory"),
        ({"argv": [PY], "env": {"A": 1}}, r"exec: parameter 'env\.A': input should be a valid string, got 1"),
        ({"argv": [PY], "cmd": "x"}, "exec: parameter 'cmd': extra inputs are not permitted"),
    ],
)
async def test_exec_failures_name_the_reason(params, message, rec):
    run = get_runner("exec")
    assert run is not None
    with pytest.raises(CommandFailed, match=message):
        await run(params, rec.context())


async def test_echo_writes_each_line(rec):
    run = get_runner("echo")
    assert run is not None
    await run({"message": "hello\nworld"}, rec.context())
    assert rec.lines == ["hello", "world"]
    with pytest.raises(CommandFailed, match="'message'"):
        await run({}, rec.context())


async def test_sleep_waits_and_cancels_at_once(rec):
    run = get_runner("sleep")
    assert run is not None
    start = time.monotonic()
    await run({"duration": 0.2}, rec.context())
    assert 0.19 < time.monotonic() - start < 0.5
    task = asyncio.create_task(run({"duration": 30}, rec.context()))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - start < 0.1
    for bad in (-1, "5", None, True):
        with pytest.raises(CommandFailed, match="'duration'"):
            await run({"duration": bad}, rec.context())


async def test_a_relative_program_is_found_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "hello.sh"
    script.write_text("#!/bin/sh\necho hello from $(basename $(pwd))\n")
    script.chmod(0o755)
    lines: list[str] = []
    assert await run_process(["./bin/hello.sh"], lines.append, cwd=str(tmp_path)) == 0
    assert lines == [f"hello from {tmp_path.name}"]
    with pytest.raises(CommandFailed, match="not found"):
        await run_process(["./bin/missing.sh"], lines.append, cwd=str(tmp_path))


async def test_a_scratch_folder_that_cannot_be_removed_does_not_keep_the_task_from_ending(
    spawn_way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread that started a process hands its exit to the loop whatever its clean-up meets."""
    if spawn_way != "thread":
        pytest.skip("the clean-up runs in the starting thread only on that way")
    from services.worker import task_policy

    def refuse(self: task_policy.Prepared) -> None:
        raise OSError(39, "Directory not empty")

    monkeypatch.setattr(task_policy.Prepared, "close", refuse)
    lines: list[str] = []
    status = await asyncio.wait_for(run_process(["sh", "-c", "echo done"], lines.append), 10)
    assert status == 0 and lines == ["done"]
