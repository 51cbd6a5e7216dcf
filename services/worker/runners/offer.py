"""Which process made ahead the running task's commands may take, and the hand-on from a task's last process.

A task's first command that starts a process may take one made for it ahead: a prefetched task's
(runners/warm_start.py) or the idle worker's spare (runners/spare.py). TaskRun offers it to its commands, which
run in their own asyncio task, so the offer stays with them (a context variable); the process wrapper
(runners/process.py) asks for it, and hands the task's last process on to the prefetcher.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from services.worker.runners import thread_spawn


class Held(Protocol):
    """A process made ahead for a task's first command that starts one (a prefetched task's, or a spare)."""

    async def take(
        self, argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
    ) -> thread_spawn.ThreadSpawned | None: ...

    def discard(self) -> None: ...


_OFFERED: contextvars.ContextVar[Held | None] = contextvars.ContextVar("tablao_warm_start", default=None)
_LAST: contextvars.ContextVar[Callable[[thread_spawn.ThreadSpawned], None] | None] = contextvars.ContextVar(
    "tablao_last_process", default=None
)


def offer(warm: Held | None) -> None:
    """For the commands of the task that runs now (their own asyncio task: the offer stays with them)."""
    _OFFERED.set(warm)


def hands_on() -> bool:
    """The command about to start its process is its task's last, whose end may start the next task's."""
    return _LAST.get() is not None


def hand_on_after(callback: Callable[[thread_spawn.ThreadSpawned], None] | None) -> None:
    """For a task's last command: `callback` gets the one process it starts (see warm_start's `open_when_ended`)."""
    _LAST.set(callback)


def last_started(proc: thread_spawn.ThreadSpawned) -> None:
    """The process of a task's command has started: when that command is the task's last, the next task's
    process made ahead may start as this one ends."""
    callback = _LAST.get()
    if callback is not None:
        _LAST.set(None)
        callback(proc)


async def start_offered(
    argv: Sequence[str], cwd: str | None, env: Mapping[str, str] | None
) -> thread_spawn.ThreadSpawned | None:
    """The offered process when it is the one asked for; the offer is used up either way."""
    warm = _OFFERED.get()
    if warm is None:
        return None
    _OFFERED.set(None)
    return await warm.take(argv, cwd, env)
