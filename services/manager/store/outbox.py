"""The durable outgoing update buffer: updates are queued, then frozen into numbered batches for the Server.

A batch keeps its sequence number and content until the Server acknowledges it, so a resend after a crash or
an outage carries exactly what the Server may already have applied, and the Server's dedup by seq is exact.
"""

from __future__ import annotations

import sqlite3

from services.manager.store.db import get_meta, set_meta, transaction
from services.protocol.link import LOG_TAIL_LINES, TaskUpdate
from services.protocol.states import TaskStatus


def enqueue(conn: sqlite3.Connection, updates: list[TaskUpdate]) -> None:
    conn.executemany(
        "INSERT INTO outbox (task_id, body) VALUES (?, ?)",
        [(u.task_id, u.model_dump_json(exclude_defaults=True)) for u in updates],
    )


def tasks_waiting(conn: sqlite3.Connection) -> set[int]:
    """The tasks with updates not yet taken by the Server (queued or in a frozen batch): reads only, so it answers
    while the store takes no write."""
    ids = {int(r[0]) for r in conn.execute("SELECT DISTINCT task_id FROM outbox")}
    for (body,) in conn.execute("SELECT body FROM batches"):
        ids.update(u.task_id for u in _decode(body))
    return ids


def pending_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def waiting(conn: sqlite3.Connection, max_updates: int) -> tuple[bool, bool]:
    """(anything waiting, a whole batch waiting): a frozen batch, or updates in the queue, up to `max_updates`."""
    if conn.execute("SELECT 1 FROM batches LIMIT 1").fetchone() is not None:
        return True, True
    queued = int(conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM outbox LIMIT ?)", (max_updates,)).fetchone()[0])
    return queued > 0, queued >= max_updates


def next_batch(conn: sqlite3.Connection, max_updates: int) -> tuple[int, list[TaskUpdate]] | None:
    """The oldest unacknowledged batch, or a new one frozen from the queue; None when nothing is waiting."""
    row = conn.execute("SELECT seq, body FROM batches ORDER BY seq LIMIT 1").fetchone()
    if row is not None:
        return int(row[0]), _decode(row[1])
    with transaction(conn):
        rows = conn.execute("SELECT id, body FROM outbox ORDER BY id LIMIT ?", (max_updates,)).fetchall()
        if not rows:
            return None
        seq = int(get_meta(conn, "next_seq") or "1")
        body = _encode(coalesce([TaskUpdate.model_validate_json(r[1]) for r in rows]))
        conn.execute("INSERT INTO batches (seq, body) VALUES (?, ?)", (seq, body))
        conn.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
        set_meta(conn, "next_seq", str(seq + 1))
    return seq, _decode(body)


COMPACT_AT = 200  # queued updates past which a Server away makes the queue's oldest ones merge (`compact`)
COMPACT_ROWS = 10_000  # the most merged at once
COMPACT_BYTES = 8 * 1024 * 1024  # and at most about this much of their JSON: parsed on the Manager's loop (~50 ms)


def compact(conn: sqlite3.Connection, at: int = COMPACT_AT) -> tuple[int, int] | None:
    """While the Server is away the queue grows by a row per worker update (each with its log tail); past `at`
    rows its oldest ones (at most COMPACT_ROWS, COMPACT_BYTES: call it again for more) are merged as freezing them
    into a batch would merge them, so it holds about one row per task instead. Returns (rows read, rows they
    became), None when under `at`."""
    queued = int(conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM outbox LIMIT ?)", (at + 1,)).fetchone()[0])
    if queued <= at:
        return None
    with transaction(conn):
        rows = []
        size = 0
        for row in conn.execute("SELECT id, task_id, body FROM outbox ORDER BY id LIMIT ?", (COMPACT_ROWS,)):
            rows.append(row)
            size += len(row[2])
            if size >= COMPACT_BYTES:  # 10,000 rows of long log tails took 2.9 s to parse
                break
        merged = coalesce([TaskUpdate.model_validate_json(r[2]) for r in rows])
        conn.execute("DELETE FROM outbox WHERE id <= ?", (rows[-1][0],))
        # the merged rows go back at the queue's head, before anything queued after them, in their order
        first = int(rows[0][0])
        conn.executemany(
            "INSERT INTO outbox (id, task_id, body) VALUES (?, ?, ?)",
            [(first + i, u.task_id, u.model_dump_json(exclude_defaults=True)) for i, u in enumerate(merged)],
        )
    return len(rows), len(merged)


def drop_from_batch(conn: sqlite3.Connection, seq: int, indexes: set[int]) -> list[TaskUpdate]:
    """Take the updates at these positions out of frozen batch `seq` (the Server will never take them); the
    batch keeps its number, so the Server's count is unchanged. Returns what was dropped."""
    with transaction(conn):
        row = conn.execute("SELECT body FROM batches WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            return []
        updates = _decode(row[0])
        kept = [u for i, u in enumerate(updates) if i not in indexes]
        conn.execute("UPDATE batches SET body = ? WHERE seq = ?", (_encode(kept), seq))
    return [u for i, u in enumerate(updates) if i in indexes]


def new_seq(conn: sqlite3.Connection) -> int:
    """A sequence number for a batch without task updates (a keep-alive), frozen like any other."""
    with transaction(conn):
        seq = int(get_meta(conn, "next_seq") or "1")
        conn.execute("INSERT INTO batches (seq, body) VALUES (?, '[]')", (seq,))
        set_meta(conn, "next_seq", str(seq + 1))
    return seq


def acknowledge(conn: sqlite3.Connection, seq: int) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM batches WHERE seq <= ?", (seq,))


def resync(conn: sqlite3.Connection, server_last_seq: int) -> None:
    """A fresh store meets a Server that already knows this Manager: continue after the Server's number."""
    with transaction(conn):
        conn.execute("DELETE FROM batches WHERE body = '[]'")
        rows = conn.execute("SELECT seq, body FROM batches ORDER BY seq").fetchall()
        conn.execute("DELETE FROM batches")
        seq = server_last_seq + 1
        for _old, body in rows:
            conn.execute("INSERT INTO batches (seq, body) VALUES (?, ?)", (seq, body))
            seq += 1
        set_meta(conn, "next_seq", str(seq))


def coalesce(updates: list[TaskUpdate]) -> list[TaskUpdate]:
    """Merge each task's run of updates where nothing is lost: a later update takes over an earlier one whose
    status is none or `active` (the Server goes assigned → completed directly); log tails are joined."""
    out: list[TaskUpdate] = []
    last: dict[int, int] = {}  # task id -> index in out of its latest update
    for u in updates:
        i = last.get(u.task_id)
        prev = out[i] if i is not None else None
        if prev is None or prev.attempt != u.attempt or prev.status not in (None, TaskStatus.ACTIVE):
            last[u.task_id] = len(out)
            out.append(u.model_copy())
            continue
        merged = prev.model_copy(update={k: v for k, v in u if v is not None and k != "log_tail"})
        merged.log_tail = [*prev.log_tail, *u.log_tail][-LOG_TAIL_LINES:]
        if u.status is None:
            merged.status = prev.status
        out[i] = merged  # type: ignore[index]
    return out


def _encode(updates: list[TaskUpdate]) -> str:
    return "[" + ",".join(u.model_dump_json(exclude_defaults=True) for u in updates) + "]"


def _decode(body: str) -> list[TaskUpdate]:
    import json

    return [TaskUpdate.model_validate(item) for item in json.loads(body)]
