"""Queries that find and delete the full logs of tasks that left this Manager long ago (log_retention.py).

A chunk has no time, but its id grows with time: `log_marks` notes now and then the newest chunk id, so "the
newest chunk of the task is older than T" is "at or below the id marked at T". The rows are walked in id order
from the oldest, a few at a time, and each task met is looked up by index (ix_task_logs_task): once the old logs
are gone, a pass reads only the old chunks still kept (of tasks held here, or run again lately), never the
whole table.
"""

from __future__ import annotations

import math
import sqlite3
import time


def mark(conn: sqlite3.Connection, now: float, every: float) -> None:
    """Note the newest chunk id at `now`, unless a mark is less than `every` seconds old."""
    # a mark from the future is a clock set back: dropped, so that a later time never has a lower id
    conn.execute("DELETE FROM log_marks WHERE at > ?", (now,))
    row = conn.execute("SELECT MAX(at) FROM log_marks").fetchone()
    if row[0] is None or now - float(row[0]) >= every:
        conn.execute("INSERT INTO log_marks (at, chunk_id) SELECT ?, COALESCE(MAX(id), 0) FROM task_logs", (now,))


def shift_marks(conn: sqlite3.Connection, seconds: float) -> None:
    """Move every mark by `seconds`: the wall clock jumped, and a log's age is what the clock measured before."""
    conn.execute("UPDATE log_marks SET at = at + ?", (seconds,))


def newest_chunk_at(conn: sqlite3.Connection, at: float) -> int | None:
    """The highest chunk id that existed at `at`, as the marks know it (None: no mark is that old); the marks
    before the one that says so are no longer needed and are deleted."""
    row = conn.execute("SELECT at, chunk_id FROM log_marks WHERE at <= ? ORDER BY at DESC LIMIT 1", (at,)).fetchone()
    if row is None:
        return None
    conn.execute("DELETE FROM log_marks WHERE at < ?", (row[0],))
    return int(row[1])


def delete_old(
    conn: sqlite3.Connection, up_to: int, after: int, *, scan: int, budget: int, deadline: float = math.inf
) -> tuple[int | None, int]:
    """Delete the logs of tasks not held here whose newest chunk id is at most `up_to`, looking at the chunks
    with ids after `after`: at most `scan` of them; at most `budget` chunks deleted, and none more once
    time.monotonic() is past `deadline` (one transaction stays short).

    Returns (where the next call goes on, or None: every chunk up to `up_to` was looked at; tasks deleted). A
    task's chunks go newest first, one at a time (a chunk may be 8 MB), over several calls if need be: what is
    left of its log meanwhile is its start, never an end without its beginning.
    """
    rows = conn.execute(
        "SELECT id, task_id FROM task_logs WHERE id > ? AND id <= ? ORDER BY id LIMIT ?", (after, up_to, scan)
    ).fetchall()
    # the newest chunk of all stays: a new chunk gets the highest id plus one, and an id used again would be
    # taken for an old one (a Manager idle for longer than the logs are kept would delete its next logs at once)
    newest = conn.execute("SELECT MAX(id) FROM task_logs").fetchone()[0]
    looked_at: set[int] = set()
    deleted = tasks = 0
    for chunk_id, task_id in rows:
        if task_id not in looked_at:
            looked_at.add(task_id)
            if _old_and_not_held(conn, task_id, up_to, newest):
                room = budget - deleted
                query = "SELECT id FROM task_logs WHERE task_id = ? ORDER BY id DESC LIMIT ?"
                doomed = [row[0] for row in conn.execute(query, (task_id, room + 1))]
                for doomed_id in doomed[:room]:
                    if deleted and time.monotonic() > deadline:
                        return chunk_id - 1, tasks  # the next call begins with this task
                    conn.execute("DELETE FROM task_logs WHERE id = ?", (doomed_id,))
                    deleted += 1
                if len(doomed) > room:
                    return chunk_id - 1, tasks
                tasks += 1
        after = chunk_id
    return (after if len(rows) == scan else None), tasks


def _old_and_not_held(conn: sqlite3.Connection, task_id: int, up_to: int, newest: int) -> bool:
    if conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is not None:
        return False  # ready, handed out, running or prefetched here: its log is still being written or read
    row = conn.execute("SELECT MAX(id) FROM task_logs WHERE task_id = ?", (task_id,)).fetchone()
    return row[0] is not None and row[0] <= up_to and row[0] < newest
