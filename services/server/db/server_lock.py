"""One Server process per SQLite database: a second one is refused with a clear message.

SQLite serves one Server process (several Servers need PostgreSQL, which they share through row locks and
notifications). The lock is an OS file lock on a file beside the database, held for the process's life: the
OS drops it when the process ends, however it ends, so a crash never leaves a stale lock behind. Admin
commands (`tablao users add`, …) open the database without it and keep working beside a running Server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url


class SecondServer(RuntimeError):
    """Another Server process already uses this SQLite database."""


class ServerLock:
    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def hold_sqlite(url: str) -> ServerLock | None:
    """Take the one-Server lock of a SQLite database (None for PostgreSQL); SecondServer when it is taken."""
    db = sqlite_path(url)
    if db is None:
        return None
    path = db.with_name(db.name + ".server-lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _lock(fd)
    except OSError:
        os.close(fd)
        raise SecondServer(
            f"another Tablao Server is already running on the SQLite database {db}. SQLite serves one Server "
            "process: stop the other one, or use PostgreSQL (--database-url) to run several Servers on one farm"
        ) from None
    return ServerLock(path, fd)


def _lock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
