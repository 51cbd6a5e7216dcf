"""One Server process per SQLite database: a second one is refused with a clear message.

SQLite serves one Server process (several Servers need PostgreSQL, which they share through row locks and
notifications). The lock is an OS file lock on a file beside the database, held for the process's life: the
OS drops it when the process ends, however it ends, so a crash never leaves a stale lock behind. Admin
commands (`tablao users add`, …) open the database without it and keep working beside a running Server.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from services.protocol.dir_lock import DirLock, InUse


class SecondServer(RuntimeError):
    """Another Server process already uses this SQLite database."""


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def hold_sqlite(url: str) -> DirLock | None:
    """Take the one-Server lock of a SQLite database (None for PostgreSQL); SecondServer when it is taken."""
    db = sqlite_path(url)
    if db is None:
        return None
    lock = DirLock(db.with_name(db.name + ".server-lock"))
    try:
        lock.acquire()
    except InUse as exc:
        holder = f" (process {exc.pid})" if exc.pid is not None else ""
        raise SecondServer(
            f"another Tablao Server is already running on the SQLite database {db}{holder}. SQLite serves one "
            "Server process: stop the other one, or use PostgreSQL (--database-url) to run several Servers on "
            "one farm"
        ) from None
    return lock
