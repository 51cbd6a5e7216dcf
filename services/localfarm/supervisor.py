"""Runs services as child processes that die with their supervisor: start, watch, restart with back-off, stop.

The reusable part of the local farm (`tablao all-in-one`, the desktop app through it, the tray agent's Worker):

    supervisor = Supervisor()                       # one per supervising process
    child = supervisor.add(ChildSpec("worker", tablao_argv("worker", ...), log_path))
    child.start()                                   # returns at once; the child holds this process's lifeline
    await supervisor.run(stop_event)                # restarts children that exit on their own, with back-off
    await supervisor.stop_all()                     # or child.stop(): SIGTERM, then SIGKILL after `grace`

Everything is asyncio and never blocks: it runs in a plain event loop or under qasync in a Qt application.
Start children from the loop's thread (see `lifeline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import httpx

from services.localfarm.lifeline import Lifeline
from services.localfarm.records import start_time
from services.protocol import process_guard

POLL_SECONDS = 0.02
# a child that exits with EX_CONFIG needs a person, not a restart (a worker another process signed on as)
EXIT_CONFIG = 78


def tablao_argv(*args: str) -> list[str]:
    """The command line that runs `tablao ARGS` with this same installation."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the executable is `tablao` itself
        return [sys.executable, *args]
    return [sys.executable, "-m", "app.cli", *args]


class ChildState(StrEnum):
    NOT_STARTED = "not started"
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # exited on its own; started again after the back-off delay
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"  # exited on its own and will not be restarted (gave up, or restart=False)


@dataclass
class Backoff:
    """Restart delays: first, doubling up to cap; a child that ran `healthy_after` seconds starts over at first.
    After give_up_after quick exits in a row the child is left crashed (None: never give up)."""

    first: float = 0.5
    cap: float = 30.0
    healthy_after: float = 60.0
    give_up_after: int | None = 5
    failures: int = 0

    def next_delay(self, ran_for: float) -> float | None:
        if ran_for >= self.healthy_after:
            self.failures = 0
        self.failures += 1
        if self.give_up_after is not None and self.failures > self.give_up_after:
            return None
        return min(self.cap, self.first * 2.0 ** (self.failures - 1))


@dataclass
class ChildSpec:
    """What to run: a name, the command line, the log file its output goes to, and how to tell it is up."""

    name: str
    argv: Sequence[str]
    log_path: Path
    health_url: str | None = None  # None: running as soon as started
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    grace: float = 1.0  # seconds between SIGTERM and SIGKILL when stopping


class Child:
    """One supervised process. `on_change(child)` is called on every state change."""

    def __init__(
        self,
        spec: ChildSpec,
        lifeline: Lifeline,
        on_change: Callable[[Child], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.spec = spec
        self.lifeline = lifeline
        self.on_change = on_change
        self.backoff = backoff or Backoff()
        self.state = ChildState.NOT_STARTED
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # the OS's start time of the process (psutil create_time)
        self.exit_code: int | None = None
        self._started_mono = 0.0
        self._restart_at: float | None = None
        self._health: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _set(self, state: ChildState) -> None:
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(self)

    def start(self) -> None:
        """Start the process (returns at once); it writes to spec.log_path and dies with this process."""
        if self.alive:
            return
        process_guard.private_dir(self.spec.log_path.parent)
        process_guard.private_file(self.spec.log_path)  # logs name paths, users and errors: the user's only
        env = {**os.environ, **self.spec.env, **self.lifeline.child_env(), "PYTHONUNBUFFERED": "1"}
        kwargs: dict[str, object] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            # its own session: a Ctrl-C in the terminal reaches the supervisor only, which stops the children in
            # order; and the child's whole group (its own children) can be signalled at once
            kwargs["start_new_session"] = True
        with open(self.spec.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                list(self.spec.argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                **kwargs,  # type: ignore[call-overload]
            )  # fmt: skip
        self.lifeline.bind(self.proc.pid)
        self.started_at = start_time(self.proc.pid) or time.time()
        self._started_mono = time.monotonic()
        self.exit_code = None
        self._restart_at = None
        self._set(ChildState.STARTING if self.spec.health_url else ChildState.RUNNING)
        if self.spec.health_url:
            # a restart (after a crash, or asked for) is RUNNING once it answers, whoever waits for it or not
            with contextlib.suppress(RuntimeError):  # no running loop: only an explicit wait_healthy() tells
                self._health = asyncio.get_running_loop().create_task(self._note_healthy())

    async def _note_healthy(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError):
            await self.wait_healthy(within=120.0)

    async def wait_healthy(self, within: float = 30.0) -> None:
        """Wait until the health URL answers 200; RuntimeError if the child exits, TimeoutError if it is slow."""
        if self.spec.health_url is None:
            return
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise RuntimeError(f"{self.name} exited with {self.returncode()}; see {self.spec.log_path}:\n"
                                       f"{self.tail()}")  # fmt: skip
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(self.spec.health_url)).status_code == 200:
                        self._set(ChildState.RUNNING)
                        return
                await asyncio.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer at {self.spec.health_url} within {within:.0f} s")

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, soft: bool) -> None:
        """SIGTERM (soft) or SIGKILL to the child's process group (Windows: CTRL_BREAK, or TerminateProcess)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
            if sys.platform == "win32":
                if soft:
                    self.proc.send_signal(signal.CTRL_BREAK_EVENT)
                else:
                    self.proc.kill()
            else:
                os.killpg(self.proc.pid, signal.SIGTERM if soft else signal.SIGKILL)

    async def stop(self, grace: float | None = None) -> None:
        """Ask the child to stop and wait; kill its whole group if it is still there after `grace` seconds."""
        self._restart_at = None
        if self._health is not None:
            self._health.cancel()
        if not self.alive:
            if self.state not in (ChildState.NOT_STARTED, ChildState.CRASHED):
                self._set(ChildState.STOPPED)
            return
        self._set(ChildState.STOPPING)
        self.signal(soft=True)
        if not await self._exited_within(self.spec.grace if grace is None else grace):
            self.signal(soft=False)
            await self._exited_within(10.0)  # SIGKILL: as long as the OS takes
        self.signal(soft=False)  # whatever the child itself left in its group
        self.exit_code = self.returncode()
        self._set(ChildState.STOPPED)

    async def _exited_within(self, seconds: float) -> bool:
        for _ in range(max(1, round(seconds / POLL_SECONDS))):
            if not self.alive:
                return True
            await asyncio.sleep(POLL_SECONDS)
        return not self.alive

    def check(self) -> None:
        """Notice an exit the supervisor did not ask for, and start again when the back-off delay is over."""
        now = time.monotonic()
        if self.state in (ChildState.STARTING, ChildState.RUNNING) and not self.alive:
            self.exit_code = self.returncode()
            if self.exit_code == 0:  # it chose to end (a worker told to shut down): not a crash, no restart
                self._set(ChildState.STOPPED)
                return
            restart = self.spec.restart and self.exit_code != EXIT_CONFIG
            delay = self.backoff.next_delay(now - self._started_mono) if restart else None
            if delay is None:
                self._set(ChildState.CRASHED)
            else:
                self._restart_at = now + delay
                self._set(ChildState.RESTARTING)
        elif self.state is ChildState.RESTARTING and self._restart_at is not None and now >= self._restart_at:
            self.start()

    def tail(self, lines: int = 15) -> str:
        """The last lines of the child's log."""
        try:
            with open(self.spec.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """The children of one supervising process, watched by `run()` until told to stop."""

    def __init__(self, on_change: Callable[[Child], None] | None = None) -> None:
        self.lifeline = Lifeline()
        self.on_change = on_change
        self.children: list[Child] = []

    def add(self, spec: ChildSpec, backoff: Backoff | None = None) -> Child:
        child = Child(spec, self.lifeline, self._changed, backoff)
        self.children.append(child)
        return child

    def _changed(self, child: Child) -> None:
        if self.on_change is not None:
            self.on_change(child)

    def check(self) -> None:
        for child in self.children:
            child.check()

    async def run(self, stop: asyncio.Event, interval: float = 0.1) -> None:
        """Watch the children (restarting those that exit on their own) until `stop` is set."""
        while not stop.is_set():
            self.check()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):  # not wait_for, which can lose a cancel on 3.11
                    await stop.wait()

    async def stop_all(self, order: Sequence[Sequence[Child]] | None = None) -> None:
        """Stop the children, group by group (each group at once): by default all at once."""
        for group in order if order is not None else [self.children]:
            await asyncio.gather(*(c.stop() for c in group))
