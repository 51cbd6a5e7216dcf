"""Starting a task's process on Linux without a pre-exec function: the same guarantees, a fifth of the cost.

A Python `preexec_fn` makes CPython fork the whole worker (tens of megabytes of page tables, then copy-on-write
faults while the child runs Python) instead of using vfork: measured here, `bash -c true` takes 10.7 ms that way
against 2.3 ms, and a farm of short tasks pays it on every task. Each thing the pre-exec hooks did is done
another way, all of them Linux behaviour that is per thread and inherited by a thread's children:

- Landlock (`landlock_restrict_self` and no-new-privileges) and the render priority (`nice`) are applied to a
  thread started for this one process, which then starts it: the child inherits that thread's confinement
  and priority, the worker's other threads stay as they were.
- The parent-death signal is armed by util-linux's `setpriv --pdeathsig KILL` exec'ing the program in the same
  process. It follows the thread that started the child, and that thread lives exactly as long as the child:
  it waits for the child's exit and hands the status to the event loop.

Used when `setpriv` is there and no other user is asked for (switching users makes CPython fork anyway);
otherwise the runner uses asyncio's own subprocess support with pre-exec hooks. The thread also builds the
task's environment and confinement, which touch files, so a task start costs the event loop no other hop.
As the process ends, the thread first runs the hook set on it (`ExitHook`: the next task's process made ahead
starting), then removes the scratch folder, then tells the loop.

A process started with `hands_on` carries a baton: the writing end of a pipe, inherited at a descriptor number
above 2 and never written. It closes when the process and whatever inherited it have ended, which the kernel
tells any reader of the pipe at once: a process held before its program for the next task (`after`, the
reading end as its standard error while it waits) can start the moment the process before ends, with no
thread of the worker in between (runners/warm_start.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import fcntl
import functools
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from services.worker import landlock, render_limits, task_policy
from services.worker.runners import gates

_PIPE_LIMIT = 2**16
log = logging.getLogger("tablao.worker.process")


@functools.cache
def setpriv() -> str | None:
    """util-linux's setpriv when it can arm the parent-death signal (2.33 and later), else None."""
    if not sys.platform.startswith("linux"):
        return None
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        done = subprocess.run([path, "--pdeathsig", "KILL", "--", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if done.returncode == 0 else None


def usable(policy: task_policy.TaskPolicy) -> bool:
    """This way can start the process: Linux with setpriv, and no other user to switch to."""
    return setpriv() is not None and not policy.run_as


class ExitHook:
    """One function run in a process's thread the moment the process ends, before anything else hears of it:
    how the next task's process made ahead starts without waiting for the event loop (runners/warm_start.py)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hook: Callable[[], None] | None = None
        self._on_never: Callable[[], object] | None = None
        self._ended = False

    def set(self, hook: Callable[[], None], on_never: Callable[[], object] | None = None) -> bool:
        """Run `hook` when the process ends, or `on_never` (on the loop) when it is stopped first; False (and
        neither runs) when it has ended already."""
        with self._lock:
            if self._ended:
                return False
            self._hook, self._on_never = hook, on_never
            return True

    def never(self) -> None:
        """No hook runs at this process's end, nor may one be set any more (it is being stopped)."""
        with self._lock:
            self._hook = None
            self._ended = True
            on_never, self._on_never = self._on_never, None
        if on_never is not None:
            on_never()

    def fire(self) -> None:
        """In the process's thread, once it has ended."""
        with self._lock:
            self._ended = True
            hook, self._hook, self._on_never = self._hook, None, None
        if hook is not None:
            try:
                hook()
            except Exception:  # the process's end must still reach the loop
                log.exception("the hook at the end of a process failed")


class ThreadSpawned:
    """A process started from its own thread; what the runner needs of `asyncio.subprocess.Process`."""

    def __init__(
        self, popen: subprocess.Popen[bytes], stdout: asyncio.StreamReader, transport: Any, at_exit: ExitHook
    ) -> None:
        self.pid = popen.pid
        self.at_exit = at_exit  # runs in the process's thread as it ends (`set` before, `never` to take back)
        self.stdout = stdout
        self.returncode: int | None = None
        self.baton: int | None = None  # the reading end of its baton (`hands_on`), until it is reaped
        # what it was started with (a warm start checks them against what a start now would use)
        self.base_env: Mapping[str, str] | None = None
        self.ruleset: landlock.Ruleset | None = None
        self.search_path = os.defpath  # a spare's (`start(spare=True)`): the PATH a start now would search
        self._popen = popen
        self._transport = transport
        self._ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def _exited(self, status: int) -> None:
        self.returncode = status
        if not self._ended.done():
            self._ended.set_result(status)

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            self._popen.send_signal(sig)

    def kill(self) -> None:
        if self.returncode is None:
            self._popen.kill()

    def kill_group(self) -> None:
        """SIGKILL to it and whatever it started, unless it has been reaped (its number may be another's)."""
        if self._popen.poll() is None:
            kill_group(self.pid)

    async def wait(self) -> int:
        try:
            return await asyncio.shield(self._ended)
        finally:
            if self._ended.done():
                self._transport.close()
                if self.baton is not None:
                    os.close(self.baton)
                    self.baton = None


async def start(
    argv: Sequence[str],
    *,
    cwd: str | None,
    extra_env: Mapping[str, str] | None,
    gate: int | None = None,
    after: int | None = None,
    hands_on: bool = False,
    spare: bool = False,
) -> ThreadSpawned:
    """Start argv (stdout and stderr merged into one pipe) in a new session; OSError as Popen raises it.

    The task's environment and confinement are prepared in the process's thread too (it touches files), and
    its scratch folder is removed there once the process has ended, before the loop hears of the end.
    With `gate` (the reading end of a pipe, closed here once the child has it), the process is made, confined
    and waits, and its program runs once a line is written to the pipe (runners/warm_start.py); with `after`
    too (the reading end of the baton of the process before, closed here likewise), the gate can be told to
    open by itself as that process ends. With `hands_on`, the process carries a baton (`ThreadSpawned.baton`).
    With `spare` (and `gate`, and no `argv`), the process is held before any program: what the gate reads
    says which (runners/spare.py).
    """
    wrapper = setpriv()
    assert wrapper is not None
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the worker's task policy, as the awaiting task sees it
    started: asyncio.Future[tuple[subprocess.Popen[bytes], task_policy.Prepared, int | None]] = loop.create_future()
    holder: list[ThreadSpawned] = []
    at_exit = ExitHook()
    ended = threading.Event()  # the loop's object exists (or never will) before the exit is handed over

    def deliver(callback: Any, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(callback, *args)

    def run() -> None:
        prepared: task_policy.Prepared | None = None
        baton: tuple[int, ...] = ()
        try:
            prepared = context.run(task_policy.prepare, extra_env)
            env = render_limits.child_env(prepared.env)
            kept = env if env is not None else os.environ
            if spare:
                command = gates.spare(kept)
            else:
                program = find_program(argv[0], cwd, kept.get("PATH", os.defpath))
                command = [*([] if gate is None else gates.prefetched(kept)), program, *argv[1:]]
            if render_limits.preexec() is not None:
                os.nice(render_limits.NICE_LOW)  # Linux: this thread only, and what it starts
            render_limits.pin_this_thread()
            if prepared.ruleset is not None:
                prepared.ruleset.restrict_self()  # this thread only, and what it starts
            if hands_on:
                baton = os.pipe()
            popen = subprocess.Popen(
                [wrapper, "--pdeathsig", "KILL", "--", *command],
                stdin=subprocess.DEVNULL if gate is None else gate,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if after is None or gate is None else after,
                cwd=cwd,
                env=env,
                start_new_session=True,
                pass_fds=baton[1:],
                **prepared.spawn,
            )
        except BaseException as exc:
            if prepared is not None:
                prepared.close()
            if baton:
                os.close(baton[0])
            deliver(_fail, started, exc)
            return
        finally:
            for fd in (gate, after, *baton[1:]):
                if fd is not None:
                    os.close(fd)  # the child has its copy (or there is none)
        deliver(_succeed, started, (popen, prepared, baton[0] if baton else None))
        status = popen.wait()
        at_exit.fire()
        try:
            prepared.close()
        except Exception:  # what the task left in its scratch folder must not keep the task from ending
            log.warning("could not remove the scratch folder of %s", argv[0], exc_info=True)
        finally:
            ended.wait()
            deliver(lambda: holder[0]._exited(status) if holder else None)

    threading.Thread(target=run, name=f"task-process {argv[0] if argv else 'spare'}", daemon=True).start()
    try:
        try:
            popen, prepared, baton_end = await asyncio.shield(started)
        except asyncio.CancelledError:
            started.add_done_callback(_kill_abandoned)  # started after all: nobody will read or stop it
            raise
        except landlock.LandlockError as exc:
            raise subprocess.SubprocessError(str(exc)) from exc
        try:
            reader = asyncio.StreamReader(limit=_PIPE_LIMIT, loop=loop)
            stdout: IO[bytes] | None = popen.stdout
            assert stdout is not None
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            transport, _ = await loop.connect_read_pipe(lambda: protocol, stdout)
        except BaseException:
            kill_group(popen.pid)
            if baton_end is not None:
                os.close(baton_end)
            raise
        proc = ThreadSpawned(popen, reader, transport, at_exit)
        proc.baton = baton_end
        proc.base_env, proc.ruleset = prepared.base_env, prepared.ruleset
        if spare:  # where its program is looked for, once the gate is told which (runners/spare.py)
            proc.search_path = (render_limits.child_env(prepared.env) or os.environ).get("PATH", os.defpath)
        holder.append(proc)
        return proc
    finally:
        ended.set()


def find_program(name: str, cwd: str | None, path: str) -> str:
    """The program to run, as exec would find it: a name with a slash relative to the working directory, else
    on PATH. Looked up here because setpriv would only report a missing one as exit status 127."""
    if os.sep in name:
        found = Path(cwd) / name if cwd else Path(name).absolute()
        if found.is_file() and os.access(found, os.X_OK):
            return str(found)
        raise FileNotFoundError(2, "No such file or directory", name)
    program = shutil.which(name, path=path)
    if program is None:
        raise FileNotFoundError(2, "No such file or directory", name)
    return program


def _kill_abandoned(
    started: asyncio.Future[tuple[subprocess.Popen[bytes], task_policy.Prepared, int | None]],
) -> None:
    if not started.cancelled() and started.exception() is None:
        popen, _, baton_end = started.result()
        kill_group(popen.pid)
        if baton_end is not None:
            os.close(baton_end)


def kill_group(pid: int) -> None:
    """SIGKILL to the process group a process started here leads (its own session), whatever it started."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def reopen(fd: int) -> int:
    """A new open file of the pipe end `fd` reads, not blocking (Linux)."""
    return os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def unread(fd: int) -> int:
    """Bytes waiting in the pipe `fd` reads from; 0 once it is closed."""
    if fd < 0:
        return 0
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _succeed(future: asyncio.Future[Any], value: object) -> None:
    if not future.done():
        future.set_result(value)
