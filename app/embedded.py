"""Embedded mode: the app's Qt view of the local farm; the farm itself is `services.localfarm` (no Qt there).

The farm runs under its own supervisor process (`tablao all-in-one --headless`), started by the app or found
already running on the data directory and adopted. This module only turns the plain `FarmHandle` into Qt
signals: it polls the supervisor's record and the services' log files a few times a second, on the event loop,
without blocking it.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from pathlib import Path

from app.qt import QObject, QTimer, Signal
from services.localfarm.farm import display_name
from services.localfarm.handle import FarmHandle, LogTail
from services.localfarm.supervisor import ChildState

ServiceState = ChildState  # the name the app's widgets use
LOG_LINES = 500
POLL_MS = 250


class Service(QObject):
    """One service of the farm as the app shows it: state, pid, port and its last log lines."""

    changed = Signal()
    line = Signal(str)

    def __init__(self, farm: EmbeddedFarm, name: str, port: int | None) -> None:
        super().__init__(farm)
        self.farm = farm
        self.key = name
        self.name = display_name(name)
        self.port = port
        self.state = ServiceState.NOT_STARTED
        self.pid: int | None = None
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self._log = LogTail(farm.handle.log_path(name), start_at_end=True)

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    def describe(self) -> str:
        return self.state.value

    def is_alive(self) -> bool:
        return self.pid is not None

    def update(self, state: ServiceState, pid: int | None) -> None:
        for ln in self._log.read_new():
            self.lines.append(ln)
            self.line.emit(ln)
        if (state, pid) != (self.state, self.pid):
            self.state, self.pid = state, pid
            self.changed.emit()

    def start(self) -> None:
        self.farm.handle.request(self.key, "start")

    def stop(self) -> None:
        self.farm.handle.request(self.key, "stop")

    def restart(self) -> None:
        self.farm.handle.request(self.key, "restart")


class EmbeddedFarm(QObject):
    """The local farm of embedded mode: Server on `port`, Manager on `port + 1`, `workers` local workers."""

    changed = Signal()
    message = Signal(str)

    def __init__(
        self,
        data_dir: Path,
        port: int,
        workers: int = 1,
        parent: QObject | None = None,
        output_roots: tuple[str, ...] = (),
    ) -> None:
        super().__init__(parent)
        self.handle = FarmHandle(data_dir, port, workers, output_roots)
        self.data_dir = data_dir
        self._leave_running = False
        self.services: list[Service] = []
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)

    @property
    def adopted(self) -> bool:
        """True when the farm was already running (left running by an earlier session) and the app took it."""
        return self.handle.adopted

    @property
    def leave_running(self) -> bool:
        return self._leave_running

    @leave_running.setter
    def leave_running(self, leave: bool) -> None:
        self._leave_running = leave
        if self.handle.record is not None:
            self.handle.leave_running(leave, os.getpid())

    @property
    def server_url(self) -> str:
        return self.handle.server_url

    @property
    def manager_url(self) -> str:
        return self.handle.manager_url

    @property
    def port(self) -> int:
        return int(self.server_url.rsplit(":", 1)[1])

    def service(self, key: str) -> Service | None:
        return next((s for s in self.services if s.key == key), None)

    @property
    def server(self) -> Service:
        found = self.service("server")
        assert found is not None
        return found

    @property
    def manager(self) -> Service:
        found = self.service("manager")
        assert found is not None
        return found

    def admin_token(self) -> str:
        return self.handle.layout.admin_token_file.read_text().strip()

    async def start(self) -> bool:
        """Adopt the farm running on the data directory or start one; True once its Server answers."""
        try:
            await self.handle.open(owner_pid=None if self._leave_running else os.getpid())
        except RuntimeError as exc:
            self.message.emit(f"The local farm did not start: {exc}")
            self._make_services()
            return False
        self._make_services()
        self.poll()
        self._timer.start(POLL_MS)
        if self.adopted:
            kept = " It was started on the command line: it keeps running when the app quits."
            pid = self.handle.supervisor_pid()
            self.message.emit(
                f"Adopted the local farm already running in {self.data_dir} (supervisor pid {pid})."
                + (kept if self.handle.from_command_line else "")
            )
        return True

    def _make_services(self) -> None:
        if self.services:
            return
        for name in self.handle.service_names():
            port = self.port if name == "server" else self.port + 1 if name == "manager" else None
            service = Service(self, name, port)
            service.changed.connect(self.changed)
            self.services.append(service)

    def poll(self) -> None:
        self.handle.refresh()
        states = self.handle.states()
        for s in self.services:
            s.update(states.get(s.key, ServiceState.NOT_STARTED), self.handle.pid(s.key))

    def tail(self) -> str:
        return self.handle.tail()

    async def stop_all(self) -> None:
        """Stop the farm (its supervisor stops the workers, the Manager, then the Server), unless it is to be
        left running: then it runs on without an owner and the app started again adopts it."""
        self._timer.stop()
        if self.handle.record is None:
            return
        if self._leave_running or self.handle.from_command_line:  # the latter stops where it was started
            self.handle.leave_running(True, os.getpid())
            return
        await self.handle.stop()
        with contextlib.suppress(RuntimeError):  # the window may be gone already
            self.poll()
