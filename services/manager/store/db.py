"""Opens the Manager's SQLite database (WAL, synchronous=NORMAL) and creates its schema."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.manager.store import previews
from services.protocol import process_guard

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- tasks held: the claim as the Server sent it (JSON) plus where the task is at this Manager
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY,
    claim TEXT NOT NULL,
    worker_id TEXT,
    handout INTEGER NOT NULL DEFAULT 0,
    started INTEGER NOT NULL DEFAULT 0,
    failure_count INTEGER NOT NULL DEFAULT 0,
    failed_on TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    platform TEXT NOT NULL,
    task_types TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    software TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    status_requested TEXT,
    lazy INTEGER NOT NULL DEFAULT 1
);
-- the process that signed on last with each worker identity (workers.take_instance)
CREATE TABLE IF NOT EXISTS worker_instances (
    worker_id TEXT PRIMARY KEY, instance TEXT NOT NULL, peer TEXT NOT NULL, since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sleep_schedules (worker_id TEXT PRIMARY KEY, body TEXT NOT NULL);
-- what each worker offers for OpenJD host requirements (host_match.py), as it said at sign-on
CREATE TABLE IF NOT EXISTS worker_capabilities (worker_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocklist (
    job_id INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    task_type TEXT NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (job_id, worker_id, task_type)
);
-- full task logs, one row per chunk; `handout` tells the hand-outs apart so old ones can be rotated out
CREATE TABLE IF NOT EXISTS task_logs (
    id INTEGER PRIMARY KEY,
    task_id INTEGER NOT NULL,
    handout INTEGER NOT NULL,
    lines TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_task_logs_task ON task_logs (task_id, id);
-- the newest chunk id now and then, so chunks (which have no time) can be told apart by age (store/old_logs.py);
-- made here on the first start of a Manager that has it, like every table of this script
CREATE TABLE IF NOT EXISTS log_marks (at REAL PRIMARY KEY, chunk_id INTEGER NOT NULL);
-- the outgoing update buffer: single updates, then frozen batches with their sequence number
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
"""


def connect(path: Path) -> sqlite3.Connection:
    process_guard.private_dir(path.parent)
    process_guard.private_file(path)  # 0600, and so its WAL: it holds the workers' credentials
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one write transaction per request
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA journal_size_limit=67108864")
    conn.executescript(SCHEMA)
    conn.executescript(previews.SCHEMA)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; nested use joins the outer one."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        # a COMMIT that failed (a full disk) may leave the transaction open: the next write would join it
        with contextlib.suppress(sqlite3.Error):  # none left open: "no transaction is active"
            conn.execute("ROLLBACK")
        raise


def get_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
