"""What a farm's data directory records about the processes a run started, and the lock that makes it one run.

Each process is recorded with its pid and its start time as the OS reports it (psutil's create_time), so a pid
the OS has since given to another program is never mistaken for ours. The lock is held by the running
supervisor for its whole life and released by the OS however it ends, so a second start on the same data
directory can tell a running farm from the leftovers of a crashed one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import psutil

from services.protocol import process_guard
from services.protocol.dir_lock import DirLock, InUse

RECORD_FILE = "processes.json"
LOCK_FILE = "supervisor.lock"
TEMP_SUFFIX = ".tmp"  # write_private's file in progress, renamed over its target when whole


@dataclass
class ProcessRecord:
    """One process a run started: name, pid and start time, its state as the supervisor last saw it."""

    name: str
    pid: int
    started: float  # psutil create_time (seconds since the epoch)
    state: str = "starting"
    url: str | None = None
    exit_code: int | None = None

    @classmethod
    def of(cls, name: str, pid: int, **extra: Any) -> ProcessRecord:
        return cls(name, pid, start_time(pid) or 0.0, **extra)

    @classmethod
    def from_raw(cls, raw: object) -> ProcessRecord:
        """The record a JSON object describes; ValueError if it is not one (a pid, a start time, names...)."""
        if not isinstance(raw, dict) or not set(raw) <= _RECORD_FIELDS:
            raise ValueError("not a process record")
        name, pid, started = raw.get("name"), raw.get("pid"), raw.get("started")
        state, url, exit_code = raw.get("state", "starting"), raw.get("url"), raw.get("exit_code")
        if not isinstance(name, str) or not isinstance(state, str) or not isinstance(url, str | None):
            raise ValueError("a process record's name, state and url are strings")
        if not _is_int(pid) or pid <= 0 or (exit_code is not None and not _is_int(exit_code)):
            raise ValueError("a process record's pid is a positive integer, its exit code an integer")
        if not (_is_int(started) or isinstance(started, float)) or not math.isfinite(started):
            raise ValueError("a process record's start time is a number")
        return cls(name, pid, float(started), state, url, exit_code)

    def process(self) -> psutil.Process | None:
        """The live process this record names, or None (gone, a zombie, the pid now someone else's or not one)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.started) > 0.05 or proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.Error, ValueError, TypeError, OverflowError):  # psutil refuses a pid below 0, or no int
            return None
        return proc


_RECORD_FIELDS = {"name", "pid", "started", "state", "url", "exit_code"}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class FarmRecord:
    """The record of one run: its supervisor, where it listens, and each service it started."""

    supervisor: ProcessRecord | None = None
    server_url: str = ""
    manager_url: str = ""
    services: dict[str, ProcessRecord] = field(default_factory=dict)
    # started by the desktop app (in the background, for it), not by a person on the command line: only such a
    # farm is the app's to stop when it quits
    for_app: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> FarmRecord:
        """The record `to_json` wrote; ValueError for anything else (not JSON, or JSON of another shape)."""
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a farm record is a JSON object")
        sup, services = raw.get("supervisor"), raw.get("services", {})
        server_url, manager_url = raw.get("server_url", ""), raw.get("manager_url", "")
        if not isinstance(server_url, str) or not isinstance(manager_url, str) or not isinstance(services, dict):
            raise ValueError("a farm record's urls are strings and its services an object")
        return cls(
            supervisor=None if sup is None else ProcessRecord.from_raw(sup),
            server_url=server_url,
            manager_url=manager_url,
            services={name: ProcessRecord.from_raw(srv) for name, srv in services.items()},
            for_app=raw.get("for_app") is True,
        )


def start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, ValueError):  # ValueError: a pid below 0
        return None


def load(farm_dir: Path) -> FarmRecord | None:
    """The record in farm_dir, or None when there is none or it cannot be read: a torn write, or a file of
    another shape, is as good as none and replaced by the next save."""
    try:
        return FarmRecord.from_json((farm_dir / RECORD_FILE).read_text())
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


def running(farm_dir: Path) -> FarmRecord | None:
    """The record of the farm running on farm_dir (its supervisor alive and holding the lock), or None."""
    rec = load(farm_dir)
    if rec is None or rec.supervisor is None or rec.supervisor.process() is None:
        return None
    return rec if FarmLock(farm_dir).held_elsewhere() else None


def save(farm_dir: Path, record: FarmRecord) -> None:
    """Replace the record in one step, so a reader never sees half of it."""
    write_private(farm_dir / RECORD_FILE, record.to_json())


def write_private(path: Path, text: str) -> None:
    """Replace a file of the farm's folder in one step, readable by this user only (0700 folder, 0600 file):
    whoever runs the farm, a process's command line names its data directory, nothing for other users."""
    process_guard.private_dir(path.parent)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def leftovers(record: FarmRecord, data_dir: Path) -> list[tuple[ProcessRecord, psutil.Process]]:
    """The recorded services still running and still ours: same start time, data directory on the command line."""
    found = []
    for rec in record.services.values():
        proc = rec.process()
        if proc is None:
            continue
        with contextlib.suppress(psutil.Error):
            if any(str(data_dir) in arg for arg in proc.cmdline()):
                found.append((rec, proc))
    return found


class FarmLock:
    """An exclusive lock on a farm's data directory, held while its supervisor runs (the OS drops it on exit)."""

    def __init__(self, farm_dir: Path) -> None:
        self.path = farm_dir / LOCK_FILE
        self._lock = DirLock(self.path)

    def acquire(self) -> bool:
        """True if this process now holds the lock; False if another running process does."""
        process_guard.private_dir(self.path.parent)
        process_guard.private_file(self.path)
        try:
            self._lock.acquire()
        except InUse:
            return False
        return True

    def release(self) -> None:
        self._lock.release()

    def held_elsewhere(self) -> bool:
        """True if another process holds the lock now (tries it and lets go at once, writing nothing)."""
        return self._lock.held_elsewhere()
