"""A service's own SQLite file that must not silently start over: the Manager's store, the Worker's update buffer.

Each is known to have existed by a marker file written next to it once it was first created. At start, a file
that existed and is now missing, empty or damaged is refused (a fresh one would forget what it held: a
Manager's workers and tasks, a worker's unsent reports), unless the operator says to start fresh; the old files
are then set aside, never deleted. A file that cannot be read at all (permissions, a failing or full disk) is
not called damaged: it is as it was once the disk is fixed, and setting it aside would lose it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Set
from pathlib import Path

from services.protocol import process_guard


def file_problem(path: Path, existed: bool, tables: Set[str]) -> str | None:
    """What is wrong with the file ("is missing", "is damaged (...)"), or None; raises OSError or
    sqlite3.OperationalError when it cannot be read at all (the disk's trouble, not the file's)."""
    if not path.exists():
        return "is missing" if existed else None
    if path.stat().st_size == 0:
        return "is empty" if existed else None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            verdict = conn.execute("PRAGMA quick_check").fetchone()
            found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.OperationalError:
        raise  # cannot open or read it: not known to be damaged
    except sqlite3.DatabaseError as exc:  # not a database, malformed
        return f"is damaged ({exc})"
    if verdict is None or verdict[0] != "ok":
        return f"is damaged (integrity check: {verdict[0] if verdict else 'no answer'})"
    if existed and (missing := set(tables) - found):
        return f"is damaged (tables missing: {', '.join(sorted(missing))})"
    return None


def note_created(marker: Path) -> None:
    """The file exists now: from here on, a missing or empty one is a loss."""
    if not marker.exists():
        process_guard.private_dir(marker.parent)
        marker.write_text(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n", encoding="utf-8")


def set_aside(path: Path) -> Path:
    """Rename the file (and its WAL and shared-memory files) to `*.damaged-<time>` for a post-mortem or a restore;
    returns the main file's new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            old.rename(old.with_name(f"{old.name}.damaged-{stamp}"))
    return path.with_name(f"{path.name}.damaged-{stamp}")
