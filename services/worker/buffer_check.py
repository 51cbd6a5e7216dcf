"""Before the worker opens its update buffer: refuse a buffer that went missing or is damaged, unless told to
start fresh.

A worker that silently starts with an empty buffer loses the updates it had accepted (a finished task's
report, say), and the task runs again; saying so is better. The buffer is known to have existed by
`buffer.created`, a small file written next to it once it was first created (`note_created`, from
buffer.open_buffer; services/protocol/sqlite_files.py, as the Manager's store.created).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.protocol import sqlite_files
from services.protocol.sqlite_files import file_problem, set_aside

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
        problem = file_problem(path, marker.exists(), _TABLES)
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
            aside = set_aside(path)
            marker.unlink(missing_ok=True)  # written again once the new buffer exists (open_buffer)
        except OSError as exc:
            raise BufferUnusable(f"cannot set aside the worker's update buffer {path}: {exc.strerror or exc}") from exc
    return aside


def note_created(data_dir: Path) -> None:
    """The buffer exists now (its tables were made): from here on, a missing or empty one is a loss."""
    sqlite_files.note_created(data_dir / MARKER_NAME)
