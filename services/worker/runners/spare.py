"""A confined process an idle worker holds ready, so its next task's first process starts without being made.

An idle worker's task arrives with nothing made for it: its first process needs the task's environment, its
scratch folder and Landlock ruleset, a thread and `setpriv`, milliseconds on the path from the job's submit to
its command running. While the worker waits for a task it holds a spare: a process made as a task's process is
made now (no command of its own yet, so no working folder or variables of a command; the output roots as the
farm's path variables resolve them, which every task from the Manager shares: the worker has them from its
sign-on answer, then from the last task it ran), confined, and held by the spare's gate (runners/gates.py) before
any program.
The first command of the next task that starts a process takes it when a start now would make that process
alike: no working folder of its own, the same environment, the same policy, priority and confinement; the
gate then reads that command's program and arguments and becomes it. Otherwise (and when the worker sleeps,
pauses or stops) the gate's pipe is closed and the spare ends without running anything; a worker that dies
takes it along (the pipe closes, and the parent-death signal fires).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
from collections.abc import Mapping, Sequence

from services.worker import task_policy
from services.worker.runners import gates, thread_spawn, warm_start

log = logging.getLogger("tablao.worker.spare")


class Spare:
    """One process held before any program, for the first process of the idle worker's next task."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.pid: int | None = None  # the held process, once made
        self._gate = -1  # (set before anything can fail: `__del__` closes what there is)
        read, self._gate = os.pipe()
        os.set_blocking(self._gate, False)  # a command line fits in the pipe (`spare_message`); never waited on
        self._made_under = warm_start.made_under()
        self._variables = dict(variables)

        async def make() -> thread_spawn.ThreadSpawned:
            task_policy.use_variables(variables)  # for output roots written with them, as a task's would be
            proc = await thread_spawn.start((), cwd=None, extra_env=None, gate=read, hands_on=True, spare=True)
            self.pid = proc.pid
            return proc

        self._making: asyncio.Task[thread_spawn.ThreadSpawned] | None = asyncio.create_task(make())

    async def take(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> thread_spawn.ThreadSpawned | None:
        """The held process, now running `argv`, when a start now would make it alike; else None (and it ends)."""
        making, self._making = self._making, None
        proc = await warm_start.made_for_taking(making, self._close_gate, "the spare process")
        if proc is None:
            return None
        message = self._message(proc, argv, cwd, env)
        if message is None or not self._write(message):
            self._close_gate()
            warm_start.end_held(proc)
            return None
        self._close_gate()  # (what was written stays to be read)
        log.debug("%s starts in process %d, held while the worker was idle", argv[0], proc.pid)
        return proc

    def usable(self) -> bool:
        """Not known to be unfit: not made yet, or made and still what a start now would make (the worker's
        environment, policy and priority as they were; no folder appeared that its confinement must know)."""
        making = self._making
        if making is None:
            return False
        if not making.done():
            return True
        if making.cancelled() or making.exception() is not None:
            return False
        proc = making.result()

        def fits() -> bool:
            task_policy.use_variables(self._variables)  # as the next task is expected to have them
            return self._fits(proc, None)

        return contextvars.copy_context().run(fits)  # (the variables stay in that copy)

    def discard(self) -> None:
        """Not needed: the process ends without running anything."""
        self._close_gate()
        making, self._making = self._making, None
        if making is not None:
            making.add_done_callback(warm_start.end_made)

    def _message(
        self, proc: thread_spawn.ThreadSpawned, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> bytes | None:
        """What its gate must read to run `argv` as a direct start would, or None when it cannot stand for that."""
        if not argv or cwd is not None or not self._fits(proc, env):
            return None
        try:  # as a direct start finds it (a missing one it reports in its own words)
            program = thread_spawn.find_program(argv[0], None, proc.search_path)
        except OSError:
            return None
        if not warm_start.executable_as_is(program):
            return None  # the gate's `exec` would run a text file as a shell script where a direct start refuses
        return gates.spare_message([program, *argv[1:]])

    def _fits(self, proc: thread_spawn.ThreadSpawned, env: Mapping[str, str] | None) -> bool:
        why = warm_start.unlike_a_start_now(proc, self._made_under, env)
        if why is not None:
            log.debug("the spare process %d does not fit: %s", proc.pid, why)
        return why is None

    def _write(self, message: bytes) -> bool:
        if self._gate < 0:
            return False
        try:
            return os.write(self._gate, message) == len(message)
        except OSError:  # the held process is gone (killed from outside)
            return False

    def __del__(self) -> None:
        # one dropped without `take` or `discard` still ends unrun: its held process sees the pipe close
        self._close_gate()

    def _close_gate(self) -> None:
        if self._gate >= 0:
            with contextlib.suppress(OSError):
                os.close(self._gate)
            self._gate = -1


def begin(variables: Mapping[str, str], on: bool = True) -> Spare | None:
    """A spare for an idle worker, where processes can be held (Linux, setpriv, an `sh` that keeps the
    environment, no other user to switch to); else None. `variables`: the path variables the next task is
    expected to have (the farm's, as the last task had them), for output roots written with them."""
    if not on or not thread_spawn.usable(task_policy.current()) or not gates.keep_environment():
        return None
    try:
        return Spare(variables)
    except OSError as exc:  # out of file descriptors, say: the task starts its process when it runs
        log.debug("no spare process: %s", exc)
        return None
