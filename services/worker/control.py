"""The worker's local control channel: JSON lines on stdin (commands) and stdout (state), for the tray.

Only the process that started the worker holds these pipes, so nothing else on the machine can reach the
channel (no port, no socket file). Commands, one JSON object per line:

    {"cmd": "pause", "now": false, "reason": "outside-hours"}   claim nothing new (now: also give back the task)
    {"cmd": "resume"}                                            claim work again
    {"cmd": "stop"}                                              give back the running task, sign off, exit 0
    {"cmd": "status"}                                            answer with a state line now

Events, one JSON object per line: {"event": "state" | "task-started" | "task-finished", ...snapshot}, and
{"event": "error", "detail": ...} for a line that is not a command. End of stdin (the controller is gone)
stops the worker as "stop" does. Qt-free: the agent stays a plain asyncio program.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from services.protocol.states import Unavailability
from services.worker.agent import EXIT_OK, Agent

log = logging.getLogger("tablao.worker.control")

LINE_MAX_BYTES = 4096
REASONS = frozenset(r.value for r in Unavailability)


def snapshot(agent: Agent) -> dict[str, Any]:
    """What the tray shows: the worker's state, its reason for claiming nothing, its task and progress."""
    run = agent.current
    task: dict[str, Any] | None = None
    if run is not None:
        t = run.task
        task = {
            "id": t.id,
            "name": t.name,
            "job_id": t.job_id,
            "job_name": t.job_name,
            "steps_done": run.reporter.steps_done,
            "steps_total": run.reporter.steps_total,
        }
    return {
        "status": agent.status.value,
        "paused": agent.paused,
        "unavailable": agent.unavailable,
        "reachable": agent.reachable,
        "task": task,
    }


class ControlChannel:
    """Reads commands on a thread (stdin has no portable asyncio reader) and applies them on the loop."""

    def __init__(self, agent: Agent, stdin_fd: int | None = None, stdout: IO[bytes] | None = None) -> None:
        self.agent = agent
        # the raw descriptor, not sys.stdin: a thread blocked inside a buffered reader aborts interpreter exit
        self.stdin_fd = stdin_fd if stdin_fd is not None else sys.stdin.fileno()
        self.stdout = stdout if stdout is not None else sys.stdout.buffer
        self._write_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        agent.listeners.append(self._on_agent_event)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        threading.Thread(target=self._read, name="tablao-control", daemon=True).start()

    # -- out --------------------------------------------------------------------------------------------

    def send(self, event: str, **extra: Any) -> None:
        line = json.dumps({"event": event, **snapshot(self.agent), **extra}, separators=(",", ":")) + "\n"
        with self._write_lock:
            try:
                self.stdout.write(line.encode())
                self.stdout.flush()
            except (OSError, ValueError):  # the controller closed its end; end of stdin will stop us
                pass

    def _on_agent_event(self, event: str) -> None:
        if event.startswith("task-finished:"):
            self.send("task-finished", outcome=event.split(":", 1)[1])
        else:
            self.send(event)

    # -- in ---------------------------------------------------------------------------------------------

    def _read(self) -> None:
        pending = b""
        skipping = False  # inside an over-long line: its rest is dropped, not read as commands
        while True:
            try:
                chunk = os.read(self.stdin_fd, 65536)
            except OSError:
                chunk = b""
            if not chunk:
                self._post(self.agent.stop, EXIT_OK, "the controller closed the control channel")
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                if skipping:
                    skipping = False  # the end of a line already refused
                elif len(raw) > LINE_MAX_BYTES:
                    self._post(self._error, f"a command line is longer than {LINE_MAX_BYTES} bytes")
                elif raw.strip():
                    self._post(self.apply_line, raw)
            if len(pending) > LINE_MAX_BYTES:
                pending, skipping = b"", True
                self._post(self._error, f"a command line is longer than {LINE_MAX_BYTES} bytes")

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        # a closed loop (the worker is exiting) raises RuntimeError: then there is nothing left to tell
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(fn, *args)

    def _error(self, detail: str) -> None:
        log.warning("control: %s", detail)
        self.send("error", detail=detail)

    def apply_line(self, raw: bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            self._error("not a JSON line")
            return
        if not isinstance(msg, dict):
            self._error("a command must be a JSON object")
            return
        cmd = msg.get("cmd")
        if cmd == "pause":
            reason = msg.get("reason") or "paused-by-user"
            if reason not in REASONS:
                self._error(f"pause: reason must be one of {', '.join(sorted(REASONS))}")
                return
            self.agent.pause(now=bool(msg.get("now", False)), reason=str(reason))
        elif cmd == "resume":
            self.agent.resume()
        elif cmd == "stop":
            self.agent.stop(EXIT_OK, "stop requested by the controller")
        elif cmd == "status":
            self.send("state")
        else:
            self._error(f"unknown command {cmd!r} (pause, resume, stop, status)")
