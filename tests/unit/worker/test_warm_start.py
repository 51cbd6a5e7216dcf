"""A prefetched task's process made ahead: it runs its program only when its task starts and asks for exactly it;
otherwise it ends unrun. Real processes, started from their own thread through setpriv (Linux)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import psutil
import pytest

from services.protocol.jobs import Command
from services.protocol.worker_api import AssignedTask
from services.worker import landlock, task_env, task_policy
from services.worker.runners import gates, offer, spare, thread_spawn, warm_start
from services.worker.runners.process import run_process

SH = str(shutil.which("sh"))

# Where `sh` is dash (Debian, Ubuntu) processes are held, and these tests fail if they are not; elsewhere only
# where this system's `sh` passes the probe.
pytestmark = pytest.mark.skipif(
    not thread_spawn.usable(task_policy.TaskPolicy())
    or not (Path(os.path.realpath(SH)).name == "dash" or gates.keep_environment()),
    reason="needs Linux, util-linux's setpriv and an `sh` that execs with the environment it was given",
)


def _task(argv: list[str], **params: object) -> AssignedTask:
    command = Command(name="exec", parameters={"argv": argv, **params})
    return AssignedTask(
        id=3, job_id=1, job_name="j", name="t 1", type="exec", handout=1, commands=[command], steps_total=1
    )


def _script(marker: Path) -> list[str]:
    """Records that it ran and its process id, then says its id."""
    return [SH, "-c", f"echo $$ >> {marker}; echo $$"]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _made(warm: warm_start.WarmStart | spare.Spare) -> int:
    """The held process's id, once it exists."""
    deadline = time.monotonic() + 10
    while warm.pid is None:
        assert time.monotonic() < deadline, "the held process was never made"
        await asyncio.sleep(0.01)
    return warm.pid


async def _until_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while not _gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still there"
        await asyncio.sleep(0.02)


async def test_the_held_process_runs_its_program_only_when_its_command_starts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = _script(marker)
    warm = warm_start.begin(_task(argv))
    assert warm is not None
    pid = await _made(warm)
    await asyncio.sleep(0.3)
    assert not marker.exists()  # made, confined, waiting: the program has not run
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE

    offer.offer(warm)
    lines: list[str] = []
    assert await run_process(argv, lines.append) == 0
    assert lines == [str(pid)] and marker.read_text().split() == [str(pid)]  # that process, once


# prints its process id, then its environment, as it got it (Python adds nothing to it)
_SHOW_ENV = "import os; print(os.getpid()); print(*sorted(f'{k}={v}' for k, v in os.environ.items()), sep=chr(10))"


@pytest.mark.parametrize(
    ("own", "held"),
    [
        ({}, True),
        ({"PWD": "/elsewhere", "STAGE": "lighting"}, True),  # the shell would put its folder in PWD
        ({"PPID": "77", "SHLVL": "3", "OLDPWD": "/before"}, True),  # the shell would set or change these
        ({"render.pass": "beauty"}, False),  # not a shell name: the shell would drop it, so no held process
        ({"OPTIND": "-1"}, False),  # the shell resets it, and refuses to take this value back
        ({"go": "mine", "_": "mine too"}, True),  # names a shell script might well use for itself
    ],
    ids=["plain", "own-pwd", "shell-variables", "not-a-shell-name", "optind", "script-like-names"],
)
async def test_the_held_process_sees_exactly_the_environment_a_direct_start_gives(
    tmp_path: Path, own: dict[str, str], held: bool
) -> None:
    argv = [sys.executable, "-c", _SHOW_ENV]
    cold: list[str] = []
    assert await run_process(argv, cold.append, cwd=str(tmp_path), env=own) == 0

    warm = warm_start.begin(_task(argv, cwd=str(tmp_path), env=own))
    assert warm is not None
    pid = await _made(warm) if held else None
    offer.offer(warm)
    lines: list[str] = []
    assert await run_process(argv, lines.append, cwd=str(tmp_path), env=own) == 0
    assert (lines[0] == str(pid)) is held  # the held process ran the program, or a direct start did
    assert lines[1:] == cold[1:]
    assert all(f"{k}={v}" in lines for k, v in own.items())


def test_no_environment_a_gate_holds_has_the_gates_own_variable() -> None:
    assert task_env.denied(gates.GATE_WORD)  # a task never gets it, whatever its job asks
    with pytest.raises(ValueError, match=gates.GATE_WORD):
        gates.prefetched({gates.GATE_WORD: "x"})  # and a gate would not hold one that had it


async def test_a_discarded_held_process_ends_without_running_and_leaves_no_scratch_folder(tmp_path: Path) -> None:
    marker, data = tmp_path / "ran", tmp_path / "worker"
    task_policy.use_policy(task_policy.effective_policy(task_policy.TaskPolicy(), data))
    warm = warm_start.begin(_task(_script(marker)))
    assert warm is not None
    pid = await _made(warm)
    if landlock.abi_version() >= 1:
        assert len(list((data / "scratch").iterdir())) == 1  # its private temporary folder
    warm.discard()
    await _until_gone(pid)
    await asyncio.sleep(0.2)
    assert not marker.exists()
    if landlock.abi_version() >= 1:
        assert list((data / "scratch").iterdir()) == []


async def test_a_held_process_given_up_before_it_was_made_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    warm = warm_start.begin(_task(_script(marker)))
    assert warm is not None
    warm.discard()  # at once: the thread making it may not have started it yet
    await asyncio.sleep(0.5)
    assert warm.pid is None or _gone(warm.pid)
    assert not marker.exists()


async def test_another_command_line_or_a_changed_environment_gets_a_new_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held, other = tmp_path / "held", tmp_path / "other"
    warm = warm_start.begin(_task(_script(held)))
    assert warm is not None
    pid = await _made(warm)
    offer.offer(warm)
    lines: list[str] = []
    assert await run_process(_script(other), lines.append) == 0
    assert lines != [str(pid)] and other.exists()
    await _until_gone(pid)
    assert not held.exists()

    warm = warm_start.begin(_task(_script(held)))
    assert warm is not None
    pid = await _made(warm)
    monkeypatch.setenv("LANG", "tablao-test.UTF-8")  # inherited by tasks: a process made before lacks it
    offer.offer(warm)
    lines.clear()
    assert await run_process(_script(held), lines.append) == 0
    assert lines != [str(pid)]
    await _until_gone(pid)
    assert held.read_text().split() == lines  # only the new process ran


async def test_a_folder_made_beside_a_protected_one_after_the_process_was_held_gets_a_new_process(
    tmp_path: Path,
) -> None:
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")
    data = tmp_path / "data"
    (data / "secret").mkdir(parents=True)
    policy = task_policy.TaskPolicy(protect=(data / "secret",))
    task_policy.use_policy(task_policy.effective_policy(policy, tmp_path / "worker"))
    out = data / "shot"  # beside the protected folder: the held process's confinement does not grant it
    script = [SH, "-c", f"echo $$; echo frame > {out}/f.txt"]
    warm = warm_start.begin(_task(script))
    assert warm is not None
    pid = await _made(warm)
    out.mkdir()
    offer.offer(warm)
    lines: list[str] = []
    assert await run_process(script, lines.append) == 0, lines
    assert lines[0] != str(pid) and (out / "f.txt").read_text() == "frame\n"


def _protected_secret(tmp_path: Path) -> list[str]:
    """Protects a folder holding a secret ("s3cret") for the tasks of this context; a command that says its
    process id, then tries to read the secret and to write to its own temporary folder."""
    if landlock.abi_version() < 1:
        pytest.skip("this kernel has no Landlock")
    data = tmp_path / "data"
    (data / "server").mkdir(parents=True)
    (data / "server" / "admin.token").write_text("s3cret")
    task_policy.use_policy(task_policy.effective_policy(task_policy.TaskPolicy(protect=(data,)), tmp_path / "w"))
    return [SH, "-c", f"echo $$; cat {data}/server/admin.token; echo tmp > $TMPDIR/t"]


async def test_the_held_process_is_confined_like_any_task_process(tmp_path: Path) -> None:
    argv = _protected_secret(tmp_path)
    warm = warm_start.begin(_task(argv))
    assert warm is not None
    pid = await _made(warm)
    offer.offer(warm)
    lines: list[str] = []
    await run_process(argv, lines.append)
    text = "\n".join(lines)
    assert lines[0] == str(pid)
    assert "s3cret" not in text and "Permission denied" in text


def test_only_a_plain_exec_of_a_program_that_can_start_as_it_is_is_made_ahead(tmp_path: Path) -> None:
    text_script = tmp_path / "no-shebang"
    text_script.write_text("echo hi\n")
    text_script.chmod(0o755)
    assert warm_start.begin(_task([str(text_script)])) is None  # a shell would run it; a direct start refuses
    assert warm_start.begin(_task(["tablao-no-such-program"])) is None
    assert warm_start.begin(_task([SH, "-c", "true"], cwd=str(tmp_path / "missing"))) is None
    echo = AssignedTask(
        id=1, job_id=1, job_name="j", name="t", type="echo", handout=1, steps_total=1,
        commands=[Command(name="echo", parameters={"message": "hi"})],
    )  # fmt: skip
    assert warm_start.begin(echo) is None


def test_no_process_is_held_where_sh_changes_the_environment_as_it_execs(monkeypatch: pytest.MonkeyPatch) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash")
    gates.keep_environment.cache_clear()
    monkeypatch.setattr(gates, "_shell", lambda: bash)  # bash as `sh` sets SHLVL at its exec
    try:
        assert not gates.keep_environment()
        assert warm_start.begin(_task([SH, "-c", "true"])) is None
    finally:
        gates.keep_environment.cache_clear()
