"""What wranglers set on a worker at this Manager: the number of the status request it holds, and edited tags.

Kept in a table of their own (JSON per worker) so a restarted Manager neither repeats a request the worker
already carried out (a second restart) nor forgets tags a wrangler gave the worker.
"""

from __future__ import annotations

import json
import sqlite3

from services.manager.model import WorkerState
from services.manager.sleep import SleepSchedules
from services.protocol.states import WorkerStatusRequest

SCHEMA = "CREATE TABLE IF NOT EXISTS worker_controls (worker_id TEXT PRIMARY KEY, body TEXT NOT NULL)"


def load(conn: sqlite3.Connection, workers: dict[str, WorkerState]) -> None:
    conn.execute(SCHEMA)
    for worker_id, body in conn.execute("SELECT worker_id, body FROM worker_controls").fetchall():
        w = workers.get(worker_id)
        if w is None:
            continue
        raw = json.loads(body)
        w.request_id = int(raw.get("request_id", 0))
        if raw.get("tags") is not None:
            w.tags_override = frozenset(str(t) for t in raw["tags"])
            w.tags = w.tags_override


def save(conn: sqlite3.Connection, w: WorkerState) -> None:
    """Write the worker's controls (the caller holds the transaction)."""
    body = {"request_id": w.request_id, "tags": sorted(w.tags_override) if w.tags_override is not None else None}
    conn.execute(
        "INSERT INTO worker_controls (worker_id, body) VALUES (?, ?)"
        " ON CONFLICT(worker_id) DO UPDATE SET body = excluded.body",
        (w.id, json.dumps(body)),
    )


def forget(conn: sqlite3.Connection, worker_id: str) -> None:
    """Remove every trace of a worker from this Manager's database (the caller holds the transaction)."""
    for table, column in (
        ("worker_controls", "worker_id"),
        ("sleep_schedules", "worker_id"),
        ("blocklist", "worker_id"),
        ("worker_capabilities", "worker_id"),
        ("worker_instances", "worker_id"),
        ("workers", "id"),
    ):
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (worker_id,))


def leaving_done(worker: WorkerState) -> None:
    """A shutdown or restart asked of the worker is over once it signs off, times out or signs on again."""
    if worker.status_requested in (WorkerStatusRequest.SHUTDOWN, WorkerStatusRequest.RESTART):
        worker.status_requested = None


def forget_schedule_and_blocklist(
    sleep: SleepSchedules, blocklist: dict[tuple[int, str, str], int], worker_id: str
) -> None:
    """Forget a worker's sleep schedule and blocklist entries in memory (forget() drops their rows)."""
    sleep.schedules.pop(worker_id, None)
    sleep.asleep_by_schedule.discard(worker_id)
    for key in [k for k in blocklist if k[1] == worker_id]:
        del blocklist[key]
