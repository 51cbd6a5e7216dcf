"""Children that die with their supervisor, on Linux, macOS and Windows.

Two sides. The supervisor keeps a `Lifeline`: it names itself in each child's environment and, on Windows,
puts each child in a job object that kills its members when the supervisor's last handle to it closes (which
the OS does when the supervisor dies, however it dies). A child service calls `hold_from_environment()` first
thing: on Linux it asks the kernel for SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), on macOS a thread
waits on a kqueue watch of the parent's exit. Either way the child then checks that its parent is still the
supervisor that named itself, so a supervisor that died before the watch was set is noticed too.

Programs that are not ours (Blender, ffmpeg, a task's own command) cannot call anything: `program_hook()` gives
a preexec function that arms the same watch between fork and exec (Linux: prctl; macOS: a small watcher
process), and `Lifeline.bind()` puts them in the job object on Windows.

Linux's parent-death signal follows the *thread* that started the child: start children from a thread that
lives as long as the supervisor (the main thread, or the asyncio loop's).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

LIFELINE_ENV = "TABLAO_LIFELINE_PID"


def _die() -> None:
    if sys.platform != "win32":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)  # not reached where the signal is immediate


def hold_from_environment() -> None:
    """In a child service: die with the supervisor named by TABLAO_LIFELINE_PID (removed from the environment,
    so the child's own children, such as render processes, do not inherit a pid that is not their parent)."""
    value = os.environ.pop(LIFELINE_ENV, "")
    if value.isdigit():
        die_with_parent(int(value))


def die_with_parent(parent_pid: int) -> None:
    """Make this process die when parent_pid, its parent, dies; at once if it already has."""
    _watch_parent(parent_pid)
    if os.getppid() != parent_pid:  # the parent died before the watch was armed: we were re-parented
        _die()


def program_hook() -> Callable[[], None] | None:
    """A preexec_fn making a program that is not ours die with this process (POSIX; None on Windows, where
    `Lifeline.bind` does it). It takes no lock between fork and exec, so an asyncio program may use it."""
    return _program_hook(os.getpid())


if sys.platform == "win32":

    def _die() -> None:
        os._exit(137)

    def _watch_parent(parent_pid: int) -> None:
        """Nothing to do: the supervisor's job object kills us with it."""

    def _program_hook(parent_pid: int) -> Callable[[], None] | None:
        return None

else:

    def _die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)  # not reached

    if sys.platform == "darwin":
        import select

        def _kqueue_exit_watch(pids: list[int]) -> select.kqueue:
            kq = select.kqueue()
            events = [
                select.kevent(
                    pid,
                    filter=select.KQ_FILTER_PROC,
                    flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,
                    fflags=select.KQ_NOTE_EXIT,
                )
                for pid in pids
            ]
            kq.control(events, 0, 0)  # ProcessLookupError when one is already gone
            return kq

        def _watch_parent(parent_pid: int) -> None:
            try:
                kq = _kqueue_exit_watch([parent_pid])
            except ProcessLookupError:
                _die()
                return

            def wait() -> None:
                kq.control(None, 1, None)  # returns when the parent exits
                _die()

            threading.Thread(target=wait, name="lifeline", daemon=True).start()

        def _program_hook(parent_pid: int) -> Callable[[], None] | None:
            def arm() -> None:
                # runs in the new program's process between fork and exec (after setsid). A watcher process
                # kills the program's whole process group when the parent exits, and leaves when the program does.
                program = os.getpid()
                if os.fork() != 0:
                    return
                try:
                    os.closerange(0, min(os.sysconf("SC_OPEN_MAX"), 65536))  # hold none of the program's pipes
                    kq = _kqueue_exit_watch([parent_pid, program])
                    fired = kq.control(None, 1, None)
                    if fired and fired[0].ident == parent_pid:
                        os.killpg(program, signal.SIGKILL)
                except OSError:
                    pass
                finally:
                    os._exit(0)

            return arm

    else:  # Linux; elsewhere prctl fails and says so
        _PR_SET_PDEATHSIG = 1

        def _watch_parent(parent_pid: int) -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")

        def _program_hook(parent_pid: int) -> Callable[[], None] | None:
            libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not between fork and exec

            def arm() -> None:
                libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
                if os.getppid() != parent_pid:
                    os._exit(137)

            return arm


class Lifeline:
    """The supervisor's end of its children's lifelines."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._job: int | None = None

    def child_env(self) -> dict[str, str]:
        """What to add to a child service's environment so that it holds this lifeline."""
        return {LIFELINE_ENV: str(self.pid)}

    def bind(self, pid: int) -> None:
        """On Windows, put the started process (and so everything it starts) in the kill-on-close job."""
        _bind(self, pid)


if sys.platform == "win32":
    from services.localfarm import _windows

    def _bind(lifeline: Lifeline, pid: int) -> None:
        if lifeline._job is None:
            lifeline._job = _windows.new_kill_on_close_job()
        _windows.assign(lifeline._job, pid)

else:

    def _bind(lifeline: Lifeline, pid: int) -> None:
        """POSIX children hold their end themselves (hold_from_environment, program_hook)."""
