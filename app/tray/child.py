"""The tray's worker: the ordinary `tablao worker` as a supervised child, driven over its stdin/stdout.

A thin adapter: the command line comes from services.localfarm.supervisor (`tablao_argv`, so a frozen bundle runs
itself), the process is a QProcess so its control lines arrive as Qt signals. A crash restarts it with
back-off (1 s doubling to 60 s, reset after a minute of good running); exit 1 means only a person can fix
it (a refused secret), so it is not restarted; exit 75 (restart requested) starts it again at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from app.qt import QObject, QProcess, QProcessEnvironment, QTimer, Signal
from app.tray.datadir import private_log
from services.localfarm.supervisor import tablao_argv

EXIT_ERROR = 1
EXIT_USAGE = 2  # argparse's, and the worker's for a value it refuses at its start
EXIT_RESTART = 75
EXIT_SUPERSEDED = 78  # another process signed on with this worker's identity (services/worker/agent.py)
BACKOFF_START = 1.0
BACKOFF_CAP = 60.0
GOOD_RUN_SECONDS = 60.0
LINE_MAX = 1 << 20


class WorkerChild(QObject):
    control_line = Signal(dict)  # one control line from the worker
    started = Signal()
    exited = Signal(int, str)  # exit code, and a line saying what happens next

    def __init__(self, log_path: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_path = log_path
        self.argv: list[str] = []
        self.env: dict[str, str] = {}
        self.proc: QProcess | None = None
        self.backoff = BACKOFF_START
        self.started_at = 0.0
        self.wanted = False  # should be running (False after stop())
        self.last_exit: tuple[int, str] | None = None
        self._buffer = b""
        self._restart = QTimer(self)
        self._restart.setSingleShot(True)
        self._restart.timeout.connect(self._spawn)
        self._kill = QTimer(self)
        self._kill.setSingleShot(True)
        self._kill.timeout.connect(self._force)

    @staticmethod
    def worker_argv(args: list[str]) -> list[str]:
        return tablao_argv("worker", *args, "--control", "stdio")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def start(self, args: list[str], env: dict[str, str]) -> None:
        self.argv = self.worker_argv(args)
        self.env = env
        self.wanted = True
        self.backoff = BACKOFF_START
        self._restart.stop()
        if not self.running:
            self._spawn()

    def _spawn(self) -> None:
        if not self.wanted or self.running:
            return
        private_log(self.log_path)
        proc = QProcess(self)
        penv = QProcessEnvironment.systemEnvironment()
        for key, value in self.env.items():
            penv.insert(key, value)
        proc.setProcessEnvironment(penv)
        proc.setStandardErrorFile(str(self.log_path), QProcess.OpenModeFlag.Append)
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self._buffer = b""
        self.proc = proc
        self.started_at = time.monotonic()
        proc.start(self.argv[0], self.argv[1:])
        self.started.emit()

    def send(self, command: dict[str, Any]) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.write((json.dumps(command) + "\n").encode())

    def stop(self, timeout_ms: int = 15000) -> None:
        """Ask the worker to give its task back and sign off; killed if it has not left after the timeout."""
        self.wanted = False
        self._restart.stop()
        if self.running:
            self.send({"cmd": "stop"})
            self._kill.start(timeout_ms)

    def wait_stopped(self, timeout_ms: int = 15000) -> bool:
        if self.proc is None or not self.running:
            return True
        return bool(self.proc.waitForFinished(timeout_ms))

    def _force(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.kill()

    def _read(self) -> None:
        assert self.proc is not None
        self._buffer += bytes(self.proc.readAllStandardOutput().data())
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > LINE_MAX:
            self._buffer = b""
        for raw in lines:
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            if isinstance(msg, dict):
                self.control_line.emit(msg)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._finished(-1, QProcess.ExitStatus.CrashExit)

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        if self.proc is None:
            return
        self.proc.deleteLater()
        self.proc = None
        self._kill.stop()
        # (the tray shows these after "Stopped: ")
        if not self.wanted:
            why = ""
        elif code in (EXIT_ERROR, EXIT_USAGE):  # EXIT_USAGE: a setting it refuses, which a restart does not mend
            self.wanted = False
            why = "it needs your attention (see Show log)"
        elif code == EXIT_SUPERSEDED:
            self.wanted = False
            # EX_CONFIG: another computer took this worker's identity, or its update buffer is damaged
            why = "it needs your attention, its log says why and what to do (see Show log)"
        elif code == EXIT_RESTART:
            why = "restarting"
            self._restart.start(0)
        else:
            if time.monotonic() - self.started_at > GOOD_RUN_SECONDS:
                self.backoff = BACKOFF_START
            why = f"it stopped unexpectedly; restarting in {self.backoff:.0f} s"
            self._restart.start(int(self.backoff * 1000))
            self.backoff = min(BACKOFF_CAP, self.backoff * 2)
        self.last_exit = (code, why)
        self.exited.emit(code, why)
