"""Embedded mode: a Server, a Manager and local workers as child processes of the app, watched and stopped."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from enum import StrEnum
from pathlib import Path

import httpx

from app.qt import QObject, QProcess, QProcessEnvironment, Signal
from services.all_in_one import trust_args
from services.protocol import API_PREFIX
from services.protocol.server_client import ApiError, ServerClient
from services.supervisor import tablao_argv

LOG_LINES = 500
START_TIMEOUT = 40.0
STOP_GRACE_MS = 5000


class ServiceState(StrEnum):
    NOT_STARTED = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    CRASHED = "crashed"


class Service(QObject):
    """One child process: its command line, state, exit code and last log lines."""

    changed = Signal()
    line = Signal(str)

    def __init__(
        self, name: str, args: list[str], data_dir: Path, port: int | None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.args = args
        self.data_dir = data_dir
        self.port = port
        self.state = ServiceState.NOT_STARTED
        self.exit_code: int | None = None
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self._stopping = False
        self._partial = ""
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None

    @property
    def pid(self) -> int:
        return int(self.process.processId())

    def describe(self) -> str:
        if self.state is ServiceState.CRASHED:
            return f"crashed (exit code {self.exit_code})"
        return self.state.value

    def _set(self, state: ServiceState) -> None:
        self.state = state
        self.changed.emit()

    def start(self) -> None:
        if self.process.state() != QProcess.ProcessState.NotRunning:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")  # log lines as they happen, not when a buffer fills
        root = str(Path(__file__).resolve().parents[1])
        env.insert("PYTHONPATH", root + os.pathsep + env.value("PYTHONPATH", ""))
        self.process.setProcessEnvironment(env)
        self._stopping = False
        self.exit_code = None
        self._set(ServiceState.STARTING)
        self.lines.append(f"$ tablao {' '.join(self.args)}")
        program, *args = tablao_argv(*self.args)
        self.process.start(program, args)

    def mark_running(self) -> None:
        if self.state is ServiceState.STARTING:
            self._set(ServiceState.RUNNING)

    def stop(self, wait_ms: int = STOP_GRACE_MS) -> None:
        """Ask the process to end (SIGTERM), and kill it if it has not within `wait_ms`. Blocks at most that."""
        if self.process.state() == QProcess.ProcessState.NotRunning:
            return
        self._stopping = True
        self._set(ServiceState.STOPPING)
        self.process.terminate()
        if not self.process.waitForFinished(wait_ms):
            self.process.kill()
            self.process.waitForFinished(2000)

    def is_alive(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def _read(self) -> None:
        text = self._partial + bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        *complete, self._partial = text.split("\n")
        for ln in complete:
            self.lines.append(ln)
            self.line.emit(ln)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self.exit_code = code if status == QProcess.ExitStatus.NormalExit else -1
        clean = self._stopping or code == 0
        self.lines.append(f"[{self.name} exited with code {self.exit_code}]")
        self._set(ServiceState.STOPPED if clean else ServiceState.CRASHED)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.exit_code = -1
            self.lines.append(f"[{self.name} could not start: {self.process.errorString()}]")
            self._set(ServiceState.CRASHED)


async def wait_healthy(service: Service, within: float = START_TIMEOUT) -> bool:
    """Poll the service's health route until it answers, it dies, or time runs out."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if not service.is_alive():
                return False
            try:
                if (await http.get(f"{service.url}{API_PREFIX}/health")).status_code == 200:
                    service.mark_running()
                    return True
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    return False


class EmbeddedFarm(QObject):
    """The local farm of embedded mode: Server on `port`, Manager on `port + 1`, `workers` local workers."""

    changed = Signal()
    message = Signal(str)

    def __init__(self, data_dir: Path, port: int, workers: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.data_dir = data_dir
        self.port = port
        self.leave_running = False
        d = data_dir
        server_trust, self._worker_trust = trust_args(d)  # output roots, protected data (docs/security.md)
        self.server = Service(
            "Server", ["server", "--data-dir", str(d / "server"), "--port", str(port), *server_trust], d / "server",
            port, self,
        )  # fmt: skip
        manager_args = [
            "manager", "--server", f"http://127.0.0.1:{port}", "--token-file", str(d / "manager.token"),
            "--data-dir", str(d / "manager"), "--port", str(port + 1),
        ]  # fmt: skip
        self.manager = Service("Manager", manager_args, d / "manager", port + 1, self)
        self.workers = [
            Service(f"Worker {i}", self._worker_args(i), d / f"worker-{i}", None, self) for i in range(1, workers + 1)
        ]
        for s in self.services:
            s.changed.connect(self.changed)

    def _worker_args(self, i: int) -> list[str]:
        d = self.data_dir
        return [
            "worker", "--manager", f"http://127.0.0.1:{self.port + 1}",
            "--registration-secret-file", str(d / "manager" / "worker-registration.secret"),
            "--data-dir", str(d / f"worker-{i}"), "--name", f"local-{i}", *self._worker_trust,
        ]  # fmt: skip

    @property
    def services(self) -> list[Service]:
        return [self.server, self.manager, *self.workers]

    @property
    def server_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def manager_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 1}"

    def admin_token(self) -> str:
        return (self.data_dir / "server" / "admin.token").read_text().strip()

    async def start(self) -> bool:
        """Start everything in order; True once the Server runs (the others may still have failed)."""
        self.server.start()
        if not await wait_healthy(self.server):
            self.message.emit(f"The local Server did not start: {self.server.describe()}")
            return False
        await self.start_manager()
        return True

    async def start_manager(self) -> None:
        try:
            await self._ensure_manager_token()
        except (ApiError, OSError, httpx.HTTPError) as exc:
            self.message.emit(f"Could not register the local Manager with the Server: {exc}")
            return
        self.manager.start()
        if not await wait_healthy(self.manager):
            self.message.emit(f"The local Manager did not start: {self.manager.describe()}")
            return
        await self.start_workers()

    async def start_workers(self) -> None:
        secret = self.manager.data_dir / "worker-registration.secret"
        for _ in range(100):  # the Manager writes it at start-up; ten seconds at most
            if secret.exists():
                break
            await asyncio.sleep(0.1)
        for w in self.workers:
            w.start()
            w.mark_running()  # a worker has no port to ask; it runs until its process ends

    async def _ensure_manager_token(self) -> None:
        path = self.data_dir / "manager.token"
        if path.exists() and path.read_text().strip():
            return
        async with ServerClient(self.server_url, self.admin_token()) as client:
            try:
                created = await client.create_manager("local")
            except ApiError as exc:
                if exc.status_code != 409:
                    raise
                # a "local" Manager from an earlier farm in this folder whose token file is gone
                created = await client.create_manager(f"local-{int(time.time())}")
        path.touch(mode=0o600)
        path.chmod(0o600)  # the Manager's credential: readable by this user only
        path.write_text(created.token + "\n")

    async def restart(self, service: Service) -> None:
        service.stop()
        if service is self.server:
            service.start()
            await wait_healthy(service)
        elif service is self.manager:
            await self.start_manager()
        else:
            service.start()
            service.mark_running()

    def stop_all(self) -> None:
        """Stop workers first (they hand back their tasks), then the Manager, then the Server."""
        if self.leave_running:
            return
        for s in reversed(self.services):
            s.stop()
