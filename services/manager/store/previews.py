"""The latest preview of each job and of each worker at this Manager, and which ones the Server has not had yet.

One row per preview; a row stays while it is the newest of its job or of its worker, so a job's and a worker's
latest are always here (across restarts) and an outage of the Server queues one image per job and worker, not
one per frame. Unsent rows ride on the next update batch (server_link.py) and are marked sent on its answer.
"""

from __future__ import annotations

import sqlite3

from services.protocol.preview import PreviewReport

KEEP_MAX = 500  # rows kept in all; the oldest already sent go first (jobs long finished)

SCHEMA = """
CREATE TABLE IF NOT EXISTS previews (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    body TEXT NOT NULL,
    sent INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_previews_job ON previews (job_id, id);
CREATE INDEX IF NOT EXISTS ix_previews_worker ON previews (worker_id, id);
"""


def keep(conn: sqlite3.Connection, report: PreviewReport) -> None:
    """Store a new preview (inside the caller's transaction); older ones of its job and worker go."""
    conn.execute(
        "INSERT INTO previews (job_id, worker_id, body) VALUES (?, ?, ?)",
        (report.job_id, report.worker_id, report.model_dump_json()),
    )
    conn.execute(
        "DELETE FROM previews WHERE (job_id = ? OR worker_id = ?)"
        " AND id NOT IN (SELECT max(id) FROM previews GROUP BY job_id)"
        " AND id NOT IN (SELECT max(id) FROM previews GROUP BY worker_id)",
        (report.job_id, report.worker_id),
    )
    conn.execute(
        "DELETE FROM previews WHERE sent = 1 AND id NOT IN (SELECT id FROM previews ORDER BY id DESC LIMIT ?)",
        (KEEP_MAX,),
    )


def unsent(conn: sqlite3.Connection, limit: int) -> list[tuple[int, PreviewReport]]:
    rows = conn.execute("SELECT id, body FROM previews WHERE sent = 0 ORDER BY id LIMIT ?", (limit,)).fetchall()
    return [(int(i), PreviewReport.model_validate_json(body)) for i, body in rows]


def has_unsent(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM previews WHERE sent = 0 LIMIT 1").fetchone() is not None


def mark_sent(conn: sqlite3.Connection, ids: list[int]) -> None:
    conn.executemany("UPDATE previews SET sent = 1 WHERE id = ?", [(i,) for i in ids])


def latest_of_job(conn: sqlite3.Connection, job_id: int) -> PreviewReport | None:
    row = conn.execute("SELECT body FROM previews WHERE job_id = ? ORDER BY id DESC LIMIT 1", (job_id,)).fetchone()
    return None if row is None else PreviewReport.model_validate_json(row[0])


def latest_of_worker(conn: sqlite3.Connection, worker_id: str) -> PreviewReport | None:
    row = conn.execute(
        "SELECT body FROM previews WHERE worker_id = ? ORDER BY id DESC LIMIT 1", (worker_id,)
    ).fetchone()
    return None if row is None else PreviewReport.model_validate_json(row[0])
