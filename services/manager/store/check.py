"""Before the Manager opens its store: refuse a store that went missing or is damaged, unless told to start fresh.

A Manager that silently starts empty forgets its workers and the tasks it held; saying so is better. The
store is known to have existed by `store.created`, a small file written next to it on first creation.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
import time
from pathlib import Path

from services.protocol import process_guard

STORE_NAME = "tablao-manager.sqlite"
MARKER_NAME = "store.created"
_TABLES = {"meta", "tasks", "workers", "blocklist", "task_logs"}
FULL_BELOW = 1024 * 1024  # bytes free under which a failed write is put down to a full disk


class StoreUnusable(Exception):
    """The store cannot be used as it is; the message says why and what to do, in one line."""


def store_path(data_dir: Path) -> Path:
    return data_dir / STORE_NAME


def check_store(data_dir: Path, *, fresh: bool) -> None:
    """Raise StoreUnusable when the store is missing or damaged; with `fresh`, set it aside and start empty."""
    path = store_path(data_dir)
    marker = data_dir / MARKER_NAME
    try:
        problem = _problem(path, marker.exists())
    except (OSError, sqlite3.DatabaseError) as exc:  # the disk's trouble, not the store's: it is not set aside
        problem = disk_problem(exc, path) or f"cannot read the Manager's store {path}: {_reason(exc)}"
        raise StoreUnusable(problem) from exc
    if problem is not None:
        if not fresh:
            raise StoreUnusable(
                f"the Manager's store {path} {problem}; restore it from a backup, or start with --fresh-store "
                "to begin with an empty one (its workers register again, its tasks go back to the Server)"
            )
        _set_aside(path)
    if not marker.exists():
        process_guard.private_dir(data_dir)
        marker.write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n", encoding="utf-8")


def _problem(path: Path, existed: bool) -> str | None:
    if not path.exists():
        return "is missing" if existed else None
    if path.stat().st_size == 0:
        return "is empty" if existed else None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if disk_problem(exc, path):
            raise  # a full or failing disk: after freeing space or fixing it, the store is as it was
        return f"is damaged ({exc})"
    if verdict is None or verdict[0] != "ok":
        return f"is damaged (integrity check: {verdict[0] if verdict else 'no answer'})"
    if existed and (missing := _TABLES - tables):
        return f"is damaged (tables missing: {', '.join(sorted(missing))})"
    return None


def disk_problem(exc: BaseException, path: Path) -> str | None:
    """One line when a store error is the disk's (full, or failing reads and writes), not the store's; else None."""
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        return None  # not a database, malformed: the file's trouble
    text = str(exc)
    full = "database or disk is full" in text or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    )
    if not full:
        with contextlib.suppress(OSError):
            full = shutil.disk_usage(path.parent).free < FULL_BELOW
    if full:
        return f"the disk holding the Manager's store {path} is full: free some space (nothing is lost)"
    if (isinstance(exc, OSError) and exc.errno == errno.EIO) or "disk I/O error" in text:
        return f"cannot read or write the Manager's store {path}: disk I/O error (look at the disk and its free space)"
    return None


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _set_aside(path: Path) -> None:
    """Keep the old files for a post-mortem rather than deleting them."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            old.rename(old.with_name(f"{old.name}.damaged-{stamp}"))
