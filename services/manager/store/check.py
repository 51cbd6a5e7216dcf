"""Before the Manager opens its store: refuse a store that went missing or is damaged, unless told to start fresh.

A Manager that silently starts empty forgets its workers and the tasks it held; saying so is better. The
store is known to have existed by `store.created`, a small file written next to it on first creation
(services/protocol/sqlite_files.py, which the Worker's update buffer uses too).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from services.protocol.sqlite_files import file_problem, note_created, set_aside

log = logging.getLogger(__name__)

STORE_NAME = "tablao-manager.sqlite"
MARKER_NAME = "store.created"
LINK_NAME = "linked-to.json"  # the Server (URL and a digest of the token) the store's Manager worked for
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
        problem = file_problem(path, marker.exists(), _TABLES)
    except (OSError, sqlite3.OperationalError) as exc:  # the disk's trouble, not the store's: it is not set aside
        problem = disk_problem(exc, path) or f"cannot read the Manager's store {path}: {_reason(exc)}"
        raise StoreUnusable(problem) from exc
    if problem is not None:
        if not fresh:
            raise StoreUnusable(
                f"the Manager's store {path} {problem}; restore it from a backup, or start with --fresh-store "
                "to begin with an empty one (its workers register again, its tasks go back to the Server)"
            )
        set_aside(path)
    note_created(marker)


def check_owner(data_dir: Path, server_url: str, token: str, *, fresh: bool) -> None:
    """Raise StoreUnusable when the store is another Manager's: it worked for another Server with another token
    (`tablao manager` without --data-dir took the local farm's store, and its workers and tasks showed at the
    other Server). One of the two may change (a Server moved; a token replaced). With `fresh`, the store is set
    aside and this Manager starts empty."""
    link = data_dir / LINK_NAME
    digest = hashlib.sha256(token.encode()).hexdigest()
    earlier: Any = None
    try:
        earlier = json.loads(link.read_text())
        other = earlier["server_url"] != server_url and earlier["token_sha256"] != digest
    except (OSError, ValueError, KeyError, TypeError):
        other = False  # none yet (a new store, or one from before this file), or unreadable: written below
    path = store_path(data_dir)
    if other and path.exists():
        if not fresh:
            raise StoreUnusable(
                f"the data directory {data_dir} holds the store of a Manager of another Server "
                f"({earlier['server_url']}, another token): give this Manager a --data-dir of its own, or start "
                "with --fresh-store to set that store aside and begin with an empty one"
            )
        set_aside(path)
    wanted = {"server_url": server_url, "token_sha256": digest}
    if earlier == wanted:
        return  # as it was: nothing to write (a start on a full disk must not fail here, docs/manager.md)
    tmp = link.with_name(f"{LINK_NAME}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(wanted))
        tmp.replace(link)
    except OSError as exc:  # a full disk: the store waits for room; this note is written at a later start
        tmp.unlink(missing_ok=True)
        log.warning("could not note which Server and token %s works for: %s", data_dir, exc)


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
