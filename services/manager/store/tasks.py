"""Queries on the tasks the Manager holds, its workers and the blocklist."""

from __future__ import annotations

import json
import sqlite3
import time

from services.manager.model import HeldTask, WorkerState
from services.protocol.link import ClaimedTask
from services.protocol.states import WorkerStatus, WorkerStatusRequest


def insert_tasks(conn: sqlite3.Connection, claims: list[ClaimedTask]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO tasks (id, claim, failure_count) VALUES (?, ?, ?)",
        [(c.id, c.model_dump_json(), c.failure_count) for c in claims],
    )


def save_task(conn: sqlite3.Connection, task: HeldTask) -> None:
    conn.execute(
        "UPDATE tasks SET worker_id = ?, handout = ?, started = ?, failure_count = ?, failed_on = ? WHERE id = ?",
        (
            task.worker_id,
            task.handout,
            int(task.started),
            task.failure_count,
            json.dumps(sorted(task.failed_on)),
            task.id,
        ),
    )


def save_claims(conn: sqlite3.Connection, claims: list[ClaimedTask]) -> None:
    """Store changed claims (a new job priority) of tasks already held, keeping their hand-out state."""
    conn.executemany("UPDATE tasks SET claim = ? WHERE id = ?", [(c.model_dump_json(), c.id) for c in claims])


def delete_task(conn: sqlite3.Connection, task_id: int) -> None:
    conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))


def load_tasks(conn: sqlite3.Connection) -> list[HeldTask]:
    rows = conn.execute("SELECT claim, worker_id, handout, started, failure_count, failed_on FROM tasks").fetchall()
    return [
        HeldTask(
            claim=ClaimedTask.model_validate_json(r[0]),
            worker_id=r[1],
            handout=r[2],
            started=bool(r[3]),
            failure_count=r[4],
            failed_on=set(json.loads(r[5])),
        )
        for r in rows
    ]


def max_handout(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'handout'").fetchone()
    return int(row[0]) if row else 0


def insert_worker(conn: sqlite3.Connection, w: WorkerState) -> None:
    conn.execute(
        "INSERT INTO workers (id, secret_hash, name, platform, status) VALUES (?, ?, ?, ?, ?)",
        (w.id, w.secret_hash, w.name, w.platform, w.status.value),
    )


def save_worker(conn: sqlite3.Connection, w: WorkerState) -> None:
    conn.execute(
        "UPDATE workers SET name = ?, platform = ?, task_types = ?, tags = ?, software = ?, status = ?,"
        " last_seq = ?, status_requested = ?, lazy = ? WHERE id = ?",
        (
            w.name,
            w.platform,
            json.dumps(sorted(w.task_types)),
            json.dumps(sorted(w.tags)),
            json.dumps(w.software),
            w.status.value,
            w.last_seq,
            w.status_requested.value if w.status_requested else None,
            int(w.lazy),
            w.id,
        ),
    )


def save_worker_seq(conn: sqlite3.Connection, worker_id: str, seq: int) -> None:
    conn.execute("UPDATE workers SET last_seq = ? WHERE id = ?", (seq, worker_id))


def _text(value: str) -> str:
    """The text with any lone surrogate as U+FFFD. A Manager of before the input guard read strict UTF-8 stored
    what a worker sent as an encoded lone surrogate; no encoder writes it, and the link to the Server died on it
    at every start."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def load_workers(conn: sqlite3.Connection) -> list[WorkerState]:
    rows = conn.execute(
        "SELECT id, secret_hash, name, platform, task_types, tags, software, status, last_seq,"
        " status_requested, lazy FROM workers"
    ).fetchall()
    now = time.monotonic()
    out = []
    for r in rows:
        w = WorkerState(
            id=r[0],
            secret_hash=r[1],
            name=_text(r[2]),
            platform=_text(r[3]),
            task_types=frozenset(_text(t) for t in json.loads(r[4])),
            tags=frozenset(_text(t) for t in json.loads(r[5])),
            software={_text(k): _text(v) for k, v in json.loads(r[6]).items()},
            status=WorkerStatus(r[7]),
            last_seq=r[8],
            status_requested=WorkerStatusRequest(r[9]) if r[9] else None,
            lazy=bool(r[10]),
            last_seen=now,  # a restarted Manager gives every worker a full timeout to show up
        )
        # a worker that was signed on before the restart keeps its place; its next call confirms it
        w.signed_on = w.status not in (WorkerStatus.OFFLINE, WorkerStatus.STARTING)
        out.append(w)
    return out


def add_blocklist_failure(conn: sqlite3.Connection, job_id: int, worker_id: str, task_type: str) -> None:
    conn.execute(
        "INSERT INTO blocklist (job_id, worker_id, task_type, failures) VALUES (?, ?, ?, 1)"
        " ON CONFLICT (job_id, worker_id, task_type) DO UPDATE SET failures = failures + 1",
        (job_id, worker_id, task_type),
    )


def remove_blocklist_entry(conn: sqlite3.Connection, job_id: int, worker_id: str, task_type: str) -> None:
    conn.execute(
        "DELETE FROM blocklist WHERE job_id = ? AND worker_id = ? AND task_type = ?", (job_id, worker_id, task_type)
    )


def clear_blocklist(conn: sqlite3.Connection, job_ids: list[int]) -> None:
    conn.executemany("DELETE FROM blocklist WHERE job_id = ?", [(j,) for j in job_ids])


def load_blocklist(conn: sqlite3.Connection) -> dict[tuple[int, str, str], int]:
    rows = conn.execute("SELECT job_id, worker_id, task_type, failures FROM blocklist").fetchall()
    return {(r[0], r[1], r[2]): r[3] for r in rows}
