"""A handle on a local farm run by its own supervisor process: start it in the background or adopt the one
already running on the data directory, follow its services and logs, ask it to stop or leave it running.

The desktop app uses this (through a thin Qt adapter), so the app and `tablao all-in-one --headless` run a farm
the same way: the supervisor is that very command. A farm the app started stops with the app (the supervisor
watches its owner) unless the user chose to leave it running; the app started again adopts it. A farm a person
started on the command line (`make run HEADLESS=1`) is adopted too, but never owned: it keeps running when the
app quits, and stops where it was started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.localfarm import farm, records
from services.localfarm.layout import FarmLayout
from services.localfarm.records import FarmRecord
from services.localfarm.supervisor import ChildState, tablao_argv

SUPERVISOR_LOG = "supervisor.log"


class LogTail:
    """New lines of a growing log file, read from where the last call stopped (a bounded read each time)."""

    def __init__(self, path: Path, start_at_end: bool = False, max_bytes: int = 65536) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.offset = 0
        self._partial = ""
        if start_at_end:
            with contextlib.suppress(OSError):
                self.offset = max(0, path.stat().st_size - max_bytes)

    def read_new(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < self.offset:  # the file was replaced or truncated
                    self.offset, self._partial = 0, ""
                f.seek(self.offset)
                data = f.read(self.max_bytes)
        except OSError:
            return []
        self.offset += len(data)
        *lines, self._partial = (self._partial + data.decode("utf-8", "replace")).split("\n")
        return lines


class FarmHandle:
    """One local farm seen from outside its supervisor."""

    def __init__(self, data_dir: Path, port: int, workers: int, output_roots: tuple[str, ...] = ()) -> None:
        self.layout = FarmLayout(data_dir)
        self.data_dir = data_dir
        self.port = port
        self.workers = workers
        self.output_roots = output_roots  # `--output-root`s of a farm this handle starts (an adopted one keeps its own)
        self.adopted = False
        self.record: FarmRecord | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def supervisor_log(self) -> Path:
        return self.layout.farm_dir / SUPERVISOR_LOG

    @property
    def server_url(self) -> str:
        return self.record.server_url if self.record else f"http://127.0.0.1:{self.port}"

    @property
    def manager_url(self) -> str:
        return self.record.manager_url if self.record else f"http://127.0.0.1:{self.port + 1}"

    def service_names(self) -> list[str]:
        """The farm's services in start order: an adopted farm's recorded ones, else those this one starts."""
        planned = ["server", "manager", *(f"worker-{i}" for i in range(1, self.workers + 1))]
        names = set(self.record.services) if self.record else set()
        if not self.adopted:
            names |= set(planned)
        order = {n: i for i, n in enumerate(planned)}
        return sorted(names, key=lambda n: (order.get(n, len(order)), n))

    def log_path(self, name: str) -> Path:
        lay = self.layout
        if name == "server":
            return lay.server_dir / "server.log"
        if name == "manager":
            return lay.manager_dir / "manager.log"
        return lay.root / name / "worker.log"

    def supervisor_pid(self) -> int | None:
        sup = self.record.supervisor if self.record else None
        return sup.pid if sup is not None else None

    async def open(self, owner_pid: int | None, within: float = 60.0) -> None:
        """Adopt the farm running on the data directory, or start one; return once its Server answers.

        owner_pid: the farm stops when that process ends (None: it runs on its own). RuntimeError says why a
        farm could not be started, with the end of the supervisor's log."""
        running = farm.running_farm(self.layout)
        if running is not None:
            self.adopted = True
            self.record = running
            if running.for_app:
                farm.set_owner(self.layout.farm_dir, owner_pid)
        else:
            self._start_supervisor(owner_pid)
        deadline = time.monotonic() + within
        for _ in range(int(within / 0.1) + 1):
            self.refresh()
            states = self.states()
            if states.get("server") is ChildState.RUNNING:
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the local farm stopped (exit code {self.process.returncode}):\n{self.tail()}")
            if self.adopted and self.supervisor_alive() is False:
                raise RuntimeError("the adopted farm stopped while the app was connecting to it")
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the local Server did not start within {within:.0f} s:\n{self.tail()}")

    def _start_supervisor(self, owner_pid: int | None) -> None:
        argv = tablao_argv("all-in-one", "--headless", "--for-app", "--data-dir", str(self.data_dir),
                           "--port", str(self.port), "--workers", str(self.workers))  # fmt: skip
        for root in self.output_roots:
            argv += ["--output-root", root]
        if owner_pid is not None:
            argv += ["--owned-by", str(owner_pid)]
        self.layout.farm_dir.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, object] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        else:
            kwargs["start_new_session"] = True  # not in the app's terminal session: it may outlive the app
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.supervisor_log, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                **kwargs,  # type: ignore[call-overload]
            )  # fmt: skip

    def refresh(self) -> None:
        """Read the supervisor's record again (cheap: one small file)."""
        rec = records.load(self.layout.farm_dir)
        if rec is not None and (self.process is None or (rec.supervisor and rec.supervisor.pid == self.process.pid)):
            self.record = rec

    def states(self) -> dict[str, ChildState]:
        if self.record is None:
            return {}
        states = farm.service_states(self.record)
        if self.supervisor_alive() is False:
            states = {n: s if s is ChildState.CRASHED else ChildState.STOPPED for n, s in states.items()}
        return states

    def pid(self, name: str) -> int | None:
        srv = self.record.services.get(name) if self.record else None
        return srv.pid if srv is not None and srv.process() is not None else None

    def supervisor_alive(self) -> bool | None:
        """None when there is no record of a supervisor yet."""
        sup = self.record.supervisor if self.record else None
        if sup is None:
            return None
        if self.process is not None and sup.pid == self.process.pid:
            return self.process.poll() is None
        return sup.process() is not None

    def request(self, name: str, action: str) -> None:
        """Ask the supervisor to start, stop or restart one service."""
        farm.request(self.layout.farm_dir, name, action)

    @property
    def from_command_line(self) -> bool:
        """An adopted farm a person started on the command line: it is theirs to stop, not the app's."""
        return self.adopted and self.record is not None and not self.record.for_app

    def leave_running(self, leave: bool, owner_pid: int) -> None:
        """Leave the farm running when owner_pid ends, or stop it then (a farm from the command line: left)."""
        if not self.from_command_line:
            farm.set_owner(self.layout.farm_dir, None if leave else owner_pid)

    async def stop(self, within: float = 5.0) -> None:
        """Stop the farm and wait for its supervisor to end (it stops its services first)."""
        farm.request(self.layout.farm_dir, "farm", "stop")
        pid = self.supervisor_pid()
        if pid is not None and self.supervisor_alive() and sys.platform != "win32":
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)  # at once, not at the supervisor's next look at its requests
        for _ in range(int(within / 0.05)):
            if not self.supervisor_alive():
                break
            await asyncio.sleep(0.05)
        else:
            sup = self.record.supervisor if self.record else None
            if sup is not None and (proc := sup.process()) is not None:
                proc.kill()  # its services die with it
        for _ in range(20):  # reap it, without blocking the caller's event loop
            if self.process is None or self.process.poll() is not None:
                break
            await asyncio.sleep(0.05)

    def tail(self, lines: int = 15) -> str:
        tail = LogTail(self.supervisor_log, start_at_end=True)
        return "\n".join(tail.read_new()[-lines:])
