"""A prefetched task's first process, made while the task before runs, so the next command starts at once.

Starting a confined process costs milliseconds (the task's environment, its scratch folder and Landlock
ruleset, a thread, `setpriv`), and a farm of short tasks pays them in the gap between two tasks. When the
Worker holds a prefetched task whose first command is `exec`, it starts that process ahead, held before
its program by a gate (runners/thread_spawn.py): the process exists and is confined, the program has not
run. When the task starts and its first command asks for exactly that process (the same program, arguments,
folder and variables, and the environment and confinement a start now would give it), the gate opens;
otherwise, and whenever the prefetched task does not run next (given back, taken away, the worker
stopping), the gate's pipe is closed and the process ends without running anything. A worker that dies
takes its held process with it: the pipe closes and the parent-death signal fires.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from services.protocol import commands
from services.protocol.command_spec import InvalidParameters
from services.protocol.worker_api import AssignedTask
from services.worker import task_policy
from services.worker.runners import thread_spawn
from services.worker.runners.base import exec_argv
from services.worker.task_env import task_environment
from services.worker.variables import substitute

log = logging.getLogger("tablao.worker.warm")

_OFFERED: contextvars.ContextVar[WarmStart | None] = contextvars.ContextVar("tablao_warm_start", default=None)


def _key(argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None) -> tuple[object, ...]:
    return tuple(argv), cwd, tuple(sorted((env or {}).items()))


class WarmStart:
    """One process held before its program, for one task's first command."""

    def __init__(self, task: AssignedTask, argv: list[str], cwd: str | None, env: Mapping[str, str] | None) -> None:
        self.task_id = task.id
        self.pid: int | None = None  # the held process, once made
        self._key = _key(argv, cwd, env)
        self._policy = task_policy.current()
        read, self._gate = os.pipe()
        os.set_blocking(self._gate, False)  # a line fits in the pipe; the loop never waits on it

        async def make() -> thread_spawn.ThreadSpawned:
            task_policy.use_variables(task.variables)  # its confinement sees the task's output roots
            proc = await thread_spawn.start(argv, cwd=cwd, extra_env=env, gate=read)
            self.pid = proc.pid
            return proc

        self._making: asyncio.Task[thread_spawn.ThreadSpawned] | None = asyncio.create_task(make())

    async def take(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> thread_spawn.ThreadSpawned | None:
        """The held process, now running `argv`, when it is the one asked for; else None (and it is ended)."""
        making, self._making = self._making, None
        if making is None:
            return None
        try:
            proc = await asyncio.shield(making)
        except asyncio.CancelledError:
            self._close_gate()
            making.add_done_callback(_end_made)
            raise
        except Exception as exc:  # a fresh start reports whatever this was, in the task's own words
            log.debug("warm start of task %d failed: %s", self.task_id, exc)
            self._close_gate()
            return None
        if not self._fits(proc, argv, cwd, env):
            self._close_gate()
            _end(proc)
            return None
        try:
            os.write(self._gate, b"go\n")
        except OSError:  # the held process is gone (killed from outside)
            self._close_gate()
            _end(proc)
            return None
        self._close_gate()
        log.debug("task %d starts in process %d, made while the task before ran", self.task_id, proc.pid)
        return proc

    def _fits(
        self, proc: thread_spawn.ThreadSpawned, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> bool:
        if proc.returncode is not None or _key(argv, cwd, env) != self._key:
            return False
        policy = task_policy.current()
        if policy is not self._policy:
            return False
        if task_environment(os.environ, env, policy.env_allow) != proc.base_env:
            return False  # the worker's own environment changed since
        return task_policy.confines_as_now(proc.ruleset)  # not when a folder appeared that it must know

    def discard(self) -> None:
        """Not needed: the process ends without running its program."""
        self._close_gate()
        making, self._making = self._making, None
        if making is not None:
            making.add_done_callback(_end_made)

    def __del__(self) -> None:
        # one dropped without `take` or `discard` (an error between the prefetch and the task's start) still
        # ends unrun: its held process sees the pipe close
        self._close_gate()

    def _close_gate(self) -> None:
        if getattr(self, "_gate", -1) >= 0:  # (not set when the pipe could not be made)
            with contextlib.suppress(OSError):
                os.close(self._gate)
            self._gate = -1


def _end_made(making: asyncio.Task[thread_spawn.ThreadSpawned]) -> None:
    if not making.cancelled() and making.exception() is None:
        _end(making.result())


_ending: set[asyncio.Task[int]] = set()  # the loop keeps only weak references to tasks


def _end(proc: thread_spawn.ThreadSpawned) -> None:
    """Its gate is closed, so it is leaving; the kill is for a held process that ignores that."""
    proc.kill()
    ending = asyncio.ensure_future(proc.wait())  # reaped by its thread; this closes the loop's end of its output
    _ending.add(ending)
    ending.add_done_callback(_ending.discard)


def begin(task: AssignedTask) -> WarmStart | None:
    """Hold the first process of `task` (prefetched) when its first command is a plain `exec`; else None."""
    if not task.commands or task.commands[0].name != "exec" or not thread_spawn.usable(task_policy.current()):
        return None
    if not thread_spawn.gate_keeps_environment():
        return None
    try:  # the parameters as the command's runner will see them, checked by the same contract
        params = commands.EXEC.validate(substitute(task.commands[0].parameters, task.variables))
    except InvalidParameters:
        return None  # the task's own start reports it in its words, as below
    cwd, env = params.get("cwd"), params.get("env")
    argv = exec_argv(params["argv"])
    if argv is None or not _executable_as_is(argv[0]) or (cwd is not None and not Path(cwd).is_dir()):
        return None
    try:
        return WarmStart(task, argv, cwd, env)
    except OSError as exc:  # out of file descriptors, say: the task starts its process when it runs
        log.debug("no warm start for task %d: %s", task.id, exc)
        return None


def _executable_as_is(program: str) -> bool:
    """A binary or a script naming its interpreter: the gate's `exec` runs it as a direct start would (a shell
    would run a text file without `#!` as a shell script, where a direct start refuses it)."""
    try:
        with open(program, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith((b"#!", b"\x7fELF"))


def offer(warm: WarmStart | None) -> None:
    """For the commands of the task that runs now (their own asyncio task: the offer stays with them)."""
    _OFFERED.set(warm)


async def start_offered(
    argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
) -> thread_spawn.ThreadSpawned | None:
    """The offered process when it is the one asked for; the offer is used up either way."""
    warm = _OFFERED.get()
    if warm is None:
        return None
    _OFFERED.set(None)
    return await warm.take(argv, cwd, env)
