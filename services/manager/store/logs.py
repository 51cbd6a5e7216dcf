"""Full task logs in the Manager's store, one row per chunk, rotated to the last few hand-outs of a task."""

from __future__ import annotations

import sqlite3


def append_log(conn: sqlite3.Connection, task_id: int, handout: int, lines: list[str]) -> None:
    conn.execute(
        "INSERT INTO task_logs (task_id, handout, lines) VALUES (?, ?, ?)",
        (task_id, handout, "\n".join(lines) + "\n"),
    )


def rotate(conn: sqlite3.Connection, task_id: int, keep: int) -> None:
    """Keep the chunks of the newest `keep` hand-outs of a task (called when a new hand-out starts)."""
    rows = conn.execute(
        "SELECT DISTINCT handout FROM task_logs WHERE task_id = ? ORDER BY handout DESC LIMIT 1 OFFSET ?",
        (task_id, max(keep - 1, 0)),
    ).fetchall()
    if rows:
        conn.execute("DELETE FROM task_logs WHERE task_id = ? AND handout <= ?", (task_id, rows[0][0]))


def read_chunks(
    conn: sqlite3.Connection, task_id: int, after_id: int = 0, limit: int = 1000
) -> list[tuple[int, int, str]]:
    """(chunk id, hand-out, text) in order; `after_id` continues a live tail."""
    return [
        (int(r[0]), int(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT id, handout, lines FROM task_logs WHERE task_id = ? AND id > ? ORDER BY id LIMIT ?",
            (task_id, after_id, limit),
        )
    ]


def has_log(conn: sqlite3.Connection, task_id: int) -> bool:
    return conn.execute("SELECT 1 FROM task_logs WHERE task_id = ? LIMIT 1", (task_id,)).fetchone() is not None


def read_tail(
    conn: sqlite3.Connection, task_id: int, max_bytes: int, before_id: int | None = None
) -> list[tuple[int, str]]:
    """(chunk id, text) of the last chunks (before `before_id`) holding about `max_bytes`, in order.

    Reads backwards and stops as soon as it has enough, so the end of a huge log costs what the end costs.
    """
    out: list[tuple[int, str]] = []
    size = 0
    rows = conn.execute(
        "SELECT id, lines FROM task_logs WHERE task_id = ? AND id < ? ORDER BY id DESC",
        (task_id, before_id if before_id is not None else 2**62),
    )
    for chunk_id, text in rows:
        if out and size + len(text) > max_bytes:
            break
        out.append((int(chunk_id), str(text)))
        size += len(text)
        if size >= max_bytes:
            break
    out.reverse()
    return out


def has_before(conn: sqlite3.Connection, task_id: int, chunk_id: int) -> bool:
    query = "SELECT 1 FROM task_logs WHERE task_id = ? AND id < ? LIMIT 1"
    return conn.execute(query, (task_id, chunk_id)).fetchone() is not None
