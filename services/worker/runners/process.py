"""The shared subprocess wrapper: own process group, output streamed line by line, cancel = TERM then KILL;
the program dies with the worker however the worker ends (services.localfarm.lifeline), sees a scrubbed
environment and, where the farm asks, is confined (services.worker.task_policy)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import cache
from typing import TypeAlias, TypeVar

from services.localfarm.lifeline import Lifeline, program_hook
from services.worker import render_limits, task_policy
from services.worker.runners import offer, thread_spawn
from services.worker.runners.base import CommandFailed

LINE_MAX_CHARS = 10_000
Process: TypeAlias = "asyncio.subprocess.Process | thread_spawn.ThreadSpawned"
AnyProcess = TypeVar("AnyProcess", asyncio.subprocess.Process, thread_spawn.ThreadSpawned)
_CHUNK = 65_536


async def run_process(
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    grace_seconds: float = 0.5,
    started: Callable[[], None] = lambda: None,
) -> int:
    """Run argv to the end and return its exit status; cancelling the awaiting task stops the process.

    stdout and stderr are merged so lines reach the callback in the order the program wrote them. `env`
    holds the command's own variables, added to the worker's scrubbed environment (see task_policy).
    """
    if thread_spawn.usable(task_policy.current()):  # Linux: no pre-exec function, so no fork of the whole worker
        proc = await _started(argv, _thread_start(argv, cwd, env))
        offer.last_started(proc)
        started()
        return await _follow(proc, on_line, grace_seconds)
    # the task's environment and confinement (Landlock, another user): built off the loop, it walks folders
    prepared = await asyncio.to_thread(task_policy.prepare, env)
    try:
        hooked = await _started(argv, _start_with_hooks(argv, cwd, render_limits.child_env(prepared.env), prepared))
        started()
        return await _follow(hooked, on_line, grace_seconds)
    finally:
        prepared.close()


async def _thread_start(
    argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
) -> thread_spawn.ThreadSpawned:
    """The process made ahead for this command (a prefetched task's, or the idle worker's spare), when there is
    one that fits; else a new one."""
    return await offer.start_offered(argv, cwd, env) or await thread_spawn.start(
        argv, cwd=cwd, extra_env=env, hands_on=offer.hands_on()
    )


async def _started(argv: Sequence[str], starting: Awaitable[AnyProcess]) -> AnyProcess:
    """The started process, or CommandFailed saying why it could not start."""
    try:
        proc = await starting
    except FileNotFoundError as exc:
        raise CommandFailed(f"cannot start {argv[0]!r}: program or working directory not found") from exc
    except OSError as exc:
        raise CommandFailed(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc
    except subprocess.SubprocessError as exc:  # confinement failed: never run a task unconfined
        raise CommandFailed(f"cannot start {argv[0]!r} confined: {exc}") from exc
    _lifeline().bind(proc.pid)  # Windows: the worker's kill-on-close job
    render_limits.apply(proc.pid)
    return proc


async def _follow(proc: Process, on_line: Callable[[str], None], grace_seconds: float) -> int:
    """Its output line by line until it ends; its exit status."""
    try:
        assert proc.stdout is not None
        await _pump(proc.stdout, on_line)
        return await proc.wait()
    except asyncio.CancelledError:
        await terminate(proc, grace_seconds)
        raise


async def _start_with_hooks(
    argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None, prepared: task_policy.Prepared
) -> asyncio.subprocess.Process:
    kwargs: dict[str, object] = dict(prepared.spawn)
    if sys.platform != "win32":
        # a new session makes a process group we can signal as a whole (Blender, shell scripts' children)
        kwargs["start_new_session"] = True
        # between fork and exec, in this order: the program dies with the worker however the worker ends; the
        # tray's lower priority (none unless configured); last the task's confinement (Landlock)
        hooks = [h for h in (program_hook(), render_limits.preexec(), prepared.preexec) if h is not None]
        if hooks:
            kwargs["preexec_fn"] = hooks[0] if len(hooks) == 1 else _in_turn(hooks)
    else:
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | render_limits.creationflags()
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        **kwargs,  # type: ignore[arg-type]
    )


@cache
def _lifeline() -> Lifeline:
    return Lifeline()


async def _pump(stream: asyncio.StreamReader, on_line: Callable[[str], None]) -> None:
    pending = b""
    while True:
        chunk = await stream.read(_CHUNK)
        if not chunk:
            break
        # progress bars rewrite one line with \r; treat it as a line break so each state is a line
        pending += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            _emit(raw, on_line)
        if len(pending) > LINE_MAX_CHARS * 4:
            _emit(pending, on_line)
            pending = b""
    if pending:
        _emit(pending, on_line)


def _emit(raw: bytes, on_line: Callable[[str], None]) -> None:
    text = raw.decode("utf-8", errors="replace").rstrip()
    if len(text) > LINE_MAX_CHARS:
        text = text[: LINE_MAX_CHARS - 1] + "…"
    on_line(text)


async def terminate(proc: Process, grace_seconds: float) -> None:
    """SIGTERM to the whole group, SIGKILL after the grace period; returns once the process is reaped."""
    if isinstance(proc, thread_spawn.ThreadSpawned):
        proc.at_exit.never()  # stopped, not ended by itself: the next task's process made ahead waits for the loop
    if proc.returncode is None:
        _signal_group(proc, soft=True)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace_seconds)
        except TimeoutError:
            _signal_group(proc, soft=False)
    # the group may outlive its leader (a child that ignores TERM); make sure nothing is left
    _signal_group(proc, soft=False)
    with contextlib.suppress(ProcessLookupError):
        await proc.wait()


def _signal_group(proc: Process, *, soft: bool) -> None:
    try:
        if sys.platform != "win32":
            os.killpg(proc.pid, signal.SIGTERM if soft else signal.SIGKILL)
        elif soft:
            proc.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


def _in_turn(hooks: list[Callable[[], None]]) -> Callable[[], None]:
    """One pre-exec function running several, in order (each takes no lock, so neither does this)."""

    def run() -> None:
        for hook in hooks:
            hook()

    return run
