"""Full task logs in the Manager's store, one row per chunk, rotated to the last few hand-outs of a task."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path


def append_log(conn: sqlite3.Connection, task_id: int, handout: int, lines: list[str]) -> int:
    return append_log_text(conn, task_id, handout, "\n".join(lines) + "\n")


def append_log_text(conn: sqlite3.Connection, task_id: int, handout: int, text: str) -> int:
    """Store a chunk; its id (ids grow with time, across tasks)."""
    cur = conn.execute("INSERT INTO task_logs (task_id, handout, lines) VALUES (?, ?, ?)", (task_id, handout, text))
    return int(cur.lastrowid or 0)


def first_chunk_after(conn: sqlite3.Connection, task_id: int, chunk_id: int) -> int | None:
    row = conn.execute("SELECT MIN(id) FROM task_logs WHERE task_id = ? AND id > ?", (task_id, chunk_id)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def delete_chunks_between(conn: sqlite3.Connection, task_id: int, after: int, up_to: int) -> None:
    """Delete the task's chunks with ids in (after, up_to]."""
    conn.execute("DELETE FROM task_logs WHERE task_id = ? AND id > ? AND id <= ?", (task_id, after, up_to))


def replace_chunk(conn: sqlite3.Connection, chunk_id: int, text: str) -> None:
    conn.execute("UPDATE task_logs SET lines = ? WHERE id = ?", (text, chunk_id))


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


SHIFT = 24  # a position in a log: chunk id << SHIFT | offset in the chunk (a chunk is one worker update, < 16 MB)
MASK = (1 << SHIFT) - 1


def read_tail(
    conn: sqlite3.Connection, task_id: int, max_chars: int, before: int | None = None
) -> tuple[str, int, int]:
    """About `max_chars` of the log ending at position `before` (None: its end), starting at a line where it can.

    Returns (text, position of its start, position of its end): the cursors for the next `before` and for a
    follow. Reads backwards and stops as soon as it has enough, so the end of a huge log costs what the end costs.
    """
    candidates: list[tuple[int, str]] = []
    end: int | None = before
    upper = 2**62
    if before is not None:
        upper = before >> SHIFT
        if before & MASK:
            row = conn.execute("SELECT lines FROM task_logs WHERE task_id = ? AND id = ?", (task_id, upper)).fetchone()
            if row is not None:
                candidates.append((upper, str(row[0])[: before & MASK]))
    rows = conn.execute(
        "SELECT id, lines FROM task_logs WHERE task_id = ? AND id < ? ORDER BY id DESC", (task_id, upper)
    )
    parts: list[str] = []
    size = 0
    first = before or 0
    for chunk_id, text in _chain(candidates, rows):
        if end is None:
            end = (chunk_id + 1) << SHIFT  # the end of the log: where the next chunk begins
        room = max_chars - size
        if len(text) <= room:
            parts.append(text)
            size += len(text)
            first = chunk_id << SHIFT
            continue
        cut = len(text) - room  # keep text[cut:], from the first whole line in it
        newline = text.find("\n", cut - 1)
        if 0 <= newline < len(text) - 1:
            start = newline + 1
        elif not parts:
            start = cut  # one line longer than asked for: its end
        else:
            break
        parts.append(text[start:])
        first = (chunk_id << SHIFT) | start
        break
    parts.reverse()
    return "".join(parts), first, end if end is not None else first


def read_after(conn: sqlite3.Connection, task_id: int, after: int, max_chars: int) -> tuple[str, int, int]:
    """At most `max_chars` of the log from position `after` on, ending at a line where it can.

    Returns (text, position of its start, position of its end): the end is the next `after`, so pages join into
    the whole log with nothing lost or repeated (a line longer than `max_chars` is cut and goes on in the next
    page). Rows are fetched one at a time and the read stops once it has enough: a huge log costs one page.
    """
    chunk_from, skip = after >> SHIFT, after & MASK
    rows = conn.execute(
        "SELECT id, lines FROM task_logs WHERE task_id = ? AND id >= ? ORDER BY id", (task_id, chunk_from)
    )
    parts: list[str] = []
    size = 0
    first: int | None = None
    last = after
    for chunk_id, lines in rows:
        offset = skip if chunk_id == chunk_from else 0
        text = str(lines)[offset:]
        if first is None:
            first = (chunk_id << SHIFT) | offset
        room = max_chars - size
        if len(text) <= room:
            parts.append(text)
            size += len(text)
            last = (chunk_id + 1) << SHIFT  # where the next chunk begins
            continue
        newline = text.rfind("\n", 0, room)
        take = newline + 1 if newline >= 0 else (room if size == 0 else 0)  # 0: the line goes next page
        parts.append(text[:take])
        last = (chunk_id << SHIFT) | (offset + take) if take else last
        break
    return "".join(parts), after if first is None else first, last


def reader(path: Path) -> sqlite3.Connection:
    """A connection of its own for reading logs in a thread: the core's is used (and written) on the event loop."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA query_only=1")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _chain(first: list[tuple[int, str]], rest: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    for chunk_id, text in first:
        yield int(chunk_id), str(text)
    for chunk_id, text in rest:
        yield int(chunk_id), str(text)


def has_before(conn: sqlite3.Connection, task_id: int, position: int) -> bool:
    if position & MASK:
        return True
    query = "SELECT 1 FROM task_logs WHERE task_id = ? AND id < ? LIMIT 1"
    return conn.execute(query, (task_id, position >> SHIFT)).fetchone() is not None
