"""Runs Tablao services as child processes: start, watch, restart after a crash, and stop them cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.protocol import process_guard


def tablao_argv(*args: str) -> list[str]:
    """The command line that runs `tablao ARGS` with this same installation."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the executable is `tablao` itself
        return [sys.executable, *args]
    return [sys.executable, "-m", "app.cli", *args]


@dataclass
class Child:
    """One service in its own process; its output goes to a log file in its data directory."""

    name: str
    argv: list[str]
    log_path: Path
    health_url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    restarts: deque[float] = field(default_factory=lambda: deque(maxlen=5))
    stopping: bool = False

    def start(self) -> None:
        process_guard.private_dir(self.log_path.parent)
        process_guard.private_file(self.log_path)  # logs name paths, users and errors: the user's only
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # its own process group: a Ctrl-C in the terminal reaches the supervisor, which stops
                # the children in order, rather than every child at once
                start_new_session=True,
            )
        self.stopping = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        assert self.health_url is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited with {self.exit_code}; see {self.log_path}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.health_url, timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer at {self.health_url} within {timeout:.0f} s")

    def stop(self, timeout: float = 15.0) -> None:
        self.stopping = True
        if not self.running or self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def may_restart(self) -> bool:
        """At most five restarts a minute, so a child that cannot start does not spin."""
        now = time.monotonic()
        if len(self.restarts) == self.restarts.maxlen and now - self.restarts[0] < 60:
            return False
        self.restarts.append(now)
        return True
