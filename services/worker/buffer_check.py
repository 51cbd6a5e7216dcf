"""Before the worker opens its update buffer: refuse a buffer that went missing or is damaged, unless told to
start fresh.

A worker that silently starts with an empty buffer loses the updates it had accepted (a finished task's
report, say), and the task runs again; saying so is better. The buffer is known to have existed by
`buffer.created`, a small file written next to it once it was first created (`note_created`, from
buffer.open_buffer; as the Manager's store.created).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from services.protocol import process_guard

BUFFER_NAME = "updates.sqlite"
MARKER_NAME = "buffer.created"
_TABLES = {"updates", "meta"}


class BufferUnusable(Exception):
    """The buffer cannot be used as it is; the message says why and what to do, in one line."""


def buffer_path(data_dir: Path) -> Path:
    return data_dir / BUFFER_NAME


def check_buffer(data_dir: Path, *, fresh: bool) -> Path | None:
    """Raise BufferUnusable when the buffer is missing or damaged; with `fresh`, set it aside (never deleted)
    and return where it went (None when there was nothing to set aside)."""
    path = buffer_path(data_dir)
    marker = data_dir / MARKER_NAME
    try:
        problem = _problem(path, marker.exists())
    except (OSError, sqlite3.OperationalError) as exc:  # the disk's trouble, not the buffer's: nothing is set aside
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        raise BufferUnusable(f"cannot read the worker's update buffer {path}: {reason}") from exc
    aside = None
    if problem is not None:
        if not fresh:
            raise BufferUnusable(
                f"the worker's update buffer {path} {problem}: the task updates it held (finished tasks' reports) "
                "are lost unless you restore it; start with --fresh-buffer to begin with an empty one (the old "
                "files are kept aside; the Manager hands the unreported tasks out again)"
            )
        try:
            aside = _set_aside(path)
            marker.unlink(missing_ok=True)  # written again once the new buffer exists (open_buffer)
        except OSError as exc:
            raise BufferUnusable(f"cannot set aside the worker's update buffer {path}: {exc.strerror or exc}") from exc
    return aside


def note_created(data_dir: Path) -> None:
    """The buffer exists now (its tables were made): from here on, a missing or empty one is a loss."""
    marker = data_dir / MARKER_NAME
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
    except sqlite3.OperationalError:
        raise  # cannot open or read it (permissions, a failing disk): not known to be damaged
    except sqlite3.DatabaseError as exc:
        return f"is damaged ({exc})"
    if verdict is None or verdict[0] != "ok":
        return f"is damaged (integrity check: {verdict[0] if verdict else 'no answer'})"
    if existed and (missing := _TABLES - tables):
        return f"is damaged (tables missing: {', '.join(sorted(missing))})"
    return None


def _set_aside(path: Path) -> Path:
    """Keep the old files for a post-mortem (or a restore) rather than deleting them."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            old.rename(old.with_name(f"{old.name}.damaged-{stamp}"))
    return path.with_name(f"{path.name}.damaged-{stamp}")
