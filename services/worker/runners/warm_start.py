"""A prefetched task's first process, made while the task before runs, so the next command starts at once.

Starting a confined process costs milliseconds (the task's environment, its scratch folder and Landlock
ruleset, a thread, `setpriv`), and a farm of short tasks pays them in the gap between two tasks. When the
Worker holds a prefetched task whose first command is `exec`, it starts that process ahead, held before
its program by a gate (runners/gates.py): the process exists and is confined, the program has not
run. When the task starts and its first command asks for exactly that process (the same program, arguments,
folder and variables, and the environment and confinement a start now would give it), the gate opens;
otherwise, and whenever the prefetched task does not run next (given back, taken away, the worker
stopping), the gate's pipe is closed and the process ends without running anything. A worker that dies
takes its held process with it: the pipe closes and the parent-death signal fires.

The program may also start before the loop hears that the task before ended (`open_when_ended`). When the
process held was made while the task before's last process ran, it holds that process's baton
(runners/thread_spawn.py) and is told "after": the kernel wakes it as that process ends, with no thread of the
worker in between. The worker can take that word back until the held process has read it (a sleep, a stop,
a confinement that no longer fits, looked at again every RECHECK_SECONDS); what it read, it runs, once.
A process before that closes its baton early (a program closing descriptors it did not open) lets the next
task's program start that much earlier on the same worker, still once. Otherwise the process before's own
thread opens the gate as that process ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from services.protocol import commands
from services.protocol.command_spec import InvalidParameters
from services.protocol.worker_api import AssignedTask
from services.worker import render_limits, task_policy
from services.worker.runners import gates, thread_spawn
from services.worker.runners.base import exec_argv
from services.worker.task_env import task_environment
from services.worker.variables import substitute

log = logging.getLogger("tablao.worker.warm")

RECHECK_SECONDS = 0.1  # while told "after": how often the held process's confinement is compared with a start now
_AFTER = b"after\n\n"  # the gate's two lines: "after", then the word the worker can still read back


def _key(argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None) -> tuple[object, ...]:
    return tuple(argv), cwd, tuple(sorted((env or {}).items()))


class WarmStart:
    """One process held before its program, for one task's first command."""

    def __init__(
        self,
        task: AssignedTask,
        argv: list[str],
        cwd: str | None,
        env: Mapping[str, str] | None,
        after: thread_spawn.ThreadSpawned | None = None,
    ) -> None:
        self.task_id = task.id
        self.pid: int | None = None  # the held process, once made
        self._opened = False  # its program was let run as the task before's last process ended
        self._told = False  # told "after", and the word not read back (`_take_word_back`)
        self._recheck: asyncio.TimerHandle | None = None
        self._asked = (argv, cwd, env)
        self._key = _key(argv, cwd, env)
        self._made_under = made_under()
        self._variables = task.variables
        # the gate is written from the thread of the task before's process too (`open_when_ended`): the lock
        # keeps that thread from writing to a gate closed meanwhile (or to whatever file reused its number)
        self._lock = threading.Lock()
        self._unread = self._before = -1  # (set before anything can fail: `__del__` closes what there is)
        read, self._gate = os.pipe()
        os.set_blocking(self._gate, False)  # a line fits in the pipe; the loop never waits on it
        # the worker's own look at both pipes: new open files of them, so that not blocking is theirs alone (the
        # held process's ends of the same pipes must block)
        try:
            self._unread = thread_spawn.reopen(read)  # what the held process has not read of its gate
        except OSError:
            os.close(read)
            raise
        self._after: thread_spawn.ThreadSpawned | None = None  # the process before, whose baton it holds
        # self._before: that baton, to see whether it ended (with whatever inherited it)
        after_end: int | None = None
        if after is not None and after.baton is not None and after.returncode is None:
            self._after, self._before, after_end = after, thread_spawn.reopen(after.baton), os.dup(after.baton)
        hands_on = len(task.commands) == 1  # its first command is its last: it hands on to the task after

        async def make() -> thread_spawn.ThreadSpawned:
            task_policy.use_variables(task.variables)  # its confinement sees the task's output roots
            proc = await thread_spawn.start(argv, cwd=cwd, extra_env=env, gate=read, after=after_end, hands_on=hands_on)
            self.pid = proc.pid
            return proc

        self._making: asyncio.Task[thread_spawn.ThreadSpawned] | None = asyncio.create_task(make())

    async def take(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> thread_spawn.ThreadSpawned | None:
        """The held process, now running `argv`, when it is the one asked for; else None (and it is ended)."""
        making, self._making = self._making, None
        proc = await made_for_taking(making, self._close_gate, f"the warm start of task {self.task_id}")
        if proc is None:
            return None
        self._stop_rechecks()
        if self._told and self._take_word_back() and not self._before_ended():
            # what the task before started still holds its baton: the held process would wait for that too
            log.debug("task %d: what the task before started is still running; a new process", self.task_id)
            self._close_gate()
            end_held(proc)
            return None
        if self.opened_early:
            self._close_gate()
            if _key(argv, cwd, env) == self._key:
                log.debug("task %d runs in process %d, started as the task before ended", self.task_id, proc.pid)
                return proc
            # cannot be (the same task's command, worked out alike): never let it stand for another command
            log.error("task %d: the process started early is not the one its command asks for", self.task_id)
            end_held(proc)
            return None
        if not self._fits(proc, argv, cwd, env) or not self._open():
            self._close_gate()
            end_held(proc)
            return None
        self._close_gate()
        log.debug("task %d starts in process %d, made while the task before ran", self.task_id, proc.pid)
        return proc

    def made(self) -> bool:
        """The process exists (or could not be made), so `open_when_ended` can say."""
        return self._making is not None and self._making.done()

    def when_made(self, callback: Callable[[], None]) -> None:
        """Call back on the loop once the process is made (or could not be)."""
        if self._making is not None:
            self._making.add_done_callback(lambda _: callback())

    @property
    def opened_early(self) -> bool:
        """Its program was let run as the task before's last process ended (or it read its word to)."""
        return self._opened or (self._told and thread_spawn.unread(self._unread) == 0)

    def open_when_ended(self, running: thread_spawn.ThreadSpawned) -> bool:
        """Let the program run the moment `running` (the last process of the task before) ends, so the next
        task's program does not wait for the loop to wind up the task before; True when so arranged. Only a
        made process that `take` would accept now; whether a start would still confine it alike is asked
        again until it opens. `withdraw` (or `discard`) takes it back, as does stopping `running`."""
        making = self._making
        if making is None or not making.done() or making.cancelled() or making.exception() is not None:
            return False
        proc = making.result()

        def check() -> Callable[[], bool] | None:
            task_policy.use_variables(self._variables)  # as its TaskRun sets them, for its output roots
            return task_policy.still_confines(proc.ruleset) if self._fits(proc, *self._asked) else None

        still_confines = contextvars.copy_context().run(check)  # (the variables stay in that copy)
        if still_confines is None:
            return False
        if running is self._after:
            return self._tell_after(running, still_confines)
        return running.at_exit.set(lambda: self._open_in_thread(proc, still_confines))

    def _tell_after(self, running: thread_spawn.ThreadSpawned, still_confines: Callable[[], bool]) -> bool:
        """The held process starts by itself as `running` ends (it holds its baton); its word is read back
        when `running` is stopped instead, or when its confinement no longer is what a start would give."""

        def at_end() -> None:  # in `running`'s thread: a last look, which the held process may have beaten
            if not still_confines():
                self._take_word_back()

        if not running.at_exit.set(at_end, on_never=self._take_word_back):
            return False
        with self._lock:
            if self._gate < 0:
                return False
            try:
                os.write(self._gate, _AFTER)
            except OSError:  # the held process is gone (killed from outside)
                return False
            self._told = True
        self._watch(still_confines)
        return True

    def _watch(self, still_confines: Callable[[], bool]) -> None:
        self._recheck = None
        if not self._told or self._opened or self._after is None or self._after.returncode is not None:
            return  # (once the process before has ended, the held one has read its word or waits for the loop)
        if not still_confines():
            self._take_word_back()
            return
        self._recheck = asyncio.get_running_loop().call_later(RECHECK_SECONDS, self._watch, still_confines)

    def _stop_rechecks(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None

    def _take_word_back(self) -> bool:
        """Read back the word "after" gave, if the held process has not read it: True when its program will not
        start by itself (any more); False when it read it, and so runs."""
        with self._lock:
            return self._take_word_back_locked()

    def _take_word_back_locked(self) -> bool:
        if not self._told:
            return not self._opened
        self._told = False
        try:
            left = os.read(self._unread, len(_AFTER))
        except BlockingIOError:  # nothing left: it read its word
            left = b""
        if left:
            return True  # the held process cannot complete its second line: it waits for a new word
        self._opened = True
        return False

    def _before_ended(self) -> bool:
        """Every holder of the baton of the process before has let go of it: the process before ended, and
        whatever it started and left running ended too (or closed it)."""
        if self._before < 0:
            return True
        try:
            while os.read(self._before, 4096):
                pass  # what was written there (nothing should be)
        except BlockingIOError:
            return False
        except OSError:
            pass
        return True

    def _open_in_thread(self, proc: thread_spawn.ThreadSpawned, still_confines: Callable[[], bool]) -> None:
        if proc.returncode is None and still_confines():
            self._open(early=True)

    def withdraw(self) -> bool:
        """Keep the program from running (the process ends unrun); False when it was let run already."""
        if not self._take_word_back():
            return False
        with self._lock:
            if self._opened:
                return False
            self._close_gate_locked()
        self.discard()
        return True

    def _open(self, *, early: bool = False) -> bool:
        with self._lock:
            if self._gate < 0:
                return False
            try:
                os.write(self._gate, b"go\n")
            except OSError:  # the held process is gone (killed from outside)
                return False
            self._opened = early
            return True

    def _fits(
        self, proc: thread_spawn.ThreadSpawned, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> bool:
        if _key(argv, cwd, env) != self._key:
            return False
        return unlike_a_start_now(proc, self._made_under, env) is None

    def discard(self) -> None:
        """Not needed: the process ends without running its program (one that started early is stopped)."""
        self._stop_rechecks()
        self._take_word_back()
        self._close_gate()
        making, self._making = self._making, None
        if making is not None:
            making.add_done_callback(end_made)

    def __del__(self) -> None:
        # one dropped without `take` or `discard` (an error between the prefetch and the task's start) still
        # ends unrun: its held process sees the pipe close
        self._close_gate()

    def _close_gate(self) -> None:
        if getattr(self, "_gate", -1) < 0:  # (not set when the pipe could not be made)
            return
        with self._lock:
            self._close_gate_locked()

    def _close_gate_locked(self) -> None:
        self._take_word_back_locked()  # (`_told` never outlives the pipes)
        if self._gate >= 0:
            for fd in (self._gate, self._unread, self._before):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            self._gate = self._unread = self._before = -1


def unlike_a_start_now(
    proc: thread_spawn.ThreadSpawned, made_under: tuple[object, object], env: Mapping[str, str] | None
) -> str | None:
    """Why a process held since (made under `made_under`: the task policy and priority then) is not what a start
    now with the command's `env` would make; None when it is. Asks in the calling context (its task's roots)."""
    if proc.returncode is not None:
        return "it ended"
    policy = task_policy.current()
    if (policy, render_limits.current()) != made_under:
        return "the worker's task policy or priority changed"
    if task_environment(os.environ, env, policy.env_allow) != proc.base_env:
        return "the command's own variables, or the worker's environment changed"
    if not task_policy.confines_as_now(proc.ruleset):
        return "a start now confines otherwise (the task's output roots, or a folder it must know)"
    return None


async def made_for_taking(
    making: asyncio.Task[thread_spawn.ThreadSpawned] | None, close_gate: Callable[[], None], what: str
) -> thread_spawn.ThreadSpawned | None:
    """The held process once made, for `take`; None (its gate closed) when there is none or it could not be
    made. Cancelled meanwhile: its gate is closed, and it is ended once made."""
    if making is None:
        return None
    try:
        return await asyncio.shield(making)
    except asyncio.CancelledError:
        close_gate()
        making.add_done_callback(end_made)
        raise
    except Exception as exc:  # a fresh start reports whatever this was, in the task's own words
        log.debug("%s could not be made: %s", what, exc)
        close_gate()
        return None


def end_made(making: asyncio.Task[thread_spawn.ThreadSpawned]) -> None:
    if not making.cancelled() and making.exception() is None:
        end_held(making.result())


_ending: set[asyncio.Task[int]] = set()  # the loop keeps only weak references to tasks


def made_under() -> tuple[object, object]:
    """What a held process is made under and must still be taken under: the task policy and the priority."""
    return task_policy.current(), render_limits.current()


def end_held(proc: thread_spawn.ThreadSpawned) -> None:
    """Its gate is closed, so it is leaving; the kill is for a held process that ignores that, and for a
    program started early (`open_when_ended`) and then stopped, with whatever it started."""
    proc.kill_group()
    ending = asyncio.ensure_future(proc.wait())  # reaped by its thread; this closes the loop's end of its output
    _ending.add(ending)
    ending.add_done_callback(_ending.discard)


def begin(task: AssignedTask, after: thread_spawn.ThreadSpawned | None = None) -> WarmStart | None:
    """Hold the first process of `task` (prefetched) when its first command is a plain `exec`; else None.
    `after`: the running task's last process, when it has started (see `open_when_ended`)."""
    if not task.commands or task.commands[0].name != "exec" or not thread_spawn.usable(task_policy.current()):
        return None
    if not gates.keep_environment():
        return None
    try:  # the parameters as the command's runner will see them, checked by the same contract
        params = commands.EXEC.validate(substitute(task.commands[0].parameters, task.variables))
    except InvalidParameters:
        return None  # the task's own start reports it in its words, as below
    cwd, env = params.get("cwd"), params.get("env")
    argv = exec_argv(params["argv"])
    if argv is None or not executable_as_is(argv[0]) or (cwd is not None and not Path(cwd).is_dir()):
        return None
    try:
        return WarmStart(task, argv, cwd, env, after)
    except OSError as exc:  # out of file descriptors, say: the task starts its process when it runs
        log.debug("no warm start for task %d: %s", task.id, exc)
        return None


def executable_as_is(program: str) -> bool:
    """A binary or a script naming its interpreter: the gate's `exec` runs it as a direct start would (a shell
    runs a text file without `#!` as a shell script, where execve refuses it; such a file starts directly)."""
    try:
        with open(program, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith((b"#!", b"\x7fELF"))
