"""`tablao all-in-one --headless` as a real process for tests and benchmarks: start it, wait until the whole
farm runs, signal it, and see which processes are left."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from services.localfarm import records
from tests.support.farm import free_port_pair
from tests.support.services import ROOT, child_env, tablao_command


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those of procs still running (a zombie waiting for its parent counts as gone)."""
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def wait_gone(procs: list[psutil.Process], within: float) -> tuple[float, list[psutil.Process]]:
    """Seconds until every one of procs is gone (polling every 10 ms), and those still there after `within`."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if not alive(procs):
            return time.monotonic() - start, []
        time.sleep(0.01)
    return time.monotonic() - start, alive(procs)


@dataclass
class AllInOne:
    data_dir: Path
    workers: int = 2
    port: int = field(default_factory=free_port_pair)
    extra: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-all-in-one-{self.port}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def argv(self) -> list[str]:
        return tablao_command("all-in-one", "--headless", "--data-dir", str(self.data_dir), "--port", str(self.port),
                              "--workers", str(self.workers), *self.extra)  # fmt: skip

    def start(self) -> AllInOne:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(), cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_running(self, within: float = 90) -> list[psutil.Process]:
        """Wait until the supervisor says every service runs; returns the supervisor and its services."""
        assert self.proc is not None
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"all-in-one exited with {self.proc.returncode}:\n{self.log()}"
            rec = records.load(self.data_dir / "farm")
            if (
                rec is not None
                and "Press Ctrl-C" in self.log()
                and len(rec.services) == 2 + self.workers
                and all(s.state == "running" for s in rec.services.values())
            ):
                return [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children()]
            time.sleep(0.1)
        raise AssertionError(f"the farm did not come up within {within} s:\n{self.log()}")

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def close(self) -> None:
        """Whatever happened in the test, leave nothing running."""
        if self.proc is None:
            return
        family = []
        with contextlib.suppress(psutil.NoSuchProcess):
            family = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in alive(family):
            p.kill()
