"""A bound on one run of a task's log at the Manager: its start and its newest lines are kept, the middle left out.

A render printing in a loop, or a worker sending log batches without end, filled the Manager's disk (1.2 GB in
20 s from one fake worker) with nothing refused: only a line and a batch were bounded. Past
`max_task_log_chars` (TABLAO_MAX_TASK_LOG_MB), the oldest part after the run's first sixteenth is deleted down to
three quarters of the limit, and one line in its place says how much was left out. The end of a log, where a
failure says what went wrong, is what a wrangler reads first; its start says what was run. An update longer than
a sixteenth of the limit is stored in parts of that size, ending where lines end: the head and the newest chunk
are kept whole, and one worker update may be 8 MB (as single chunks, a run capped at 2 MB kept 12.6 MB).

Chunks are rows whose ids are shared by every task, so what to delete is not looked for by reading the rows
(their text is the log): the run keeps a mark every sixteenth of the limit (the id of the chunk that crossed it,
and how many characters were written up to it), and a cut deletes the chunks between two marks by id.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from services.manager.model import RunLog
from services.manager.store import logs

MARKS = 16  # marks per limit: a cut leaves out a whole number of sixteenths


def left_out_line(chars: int, limit: int) -> str:
    return (
        f"[... {chars / 2**20:.1f} MB of this log left out here: a run may keep {limit / 2**20:g} MB at this "
        "Manager (TABLAO_MAX_TASK_LOG_MB); its start is above, its newest lines below ...]\n"
    )


def append(
    conn: sqlite3.Connection, task_id: int, handout: int, run: RunLog, lines: list[str], limit: int | None
) -> None:
    """Store a worker update's lines; past `limit` characters kept, cut the run's middle."""
    text = "\n".join(lines) + "\n"
    if limit is None:
        logs.append_log_text(conn, task_id, handout, text)
        run.chars += len(text)
        return
    step = max(limit // MARKS, 1)
    for piece in pieces(text, step):
        chunk_id = logs.append_log_text(conn, task_id, handout, piece)
        run.chars += len(piece)
        if run.chars - (run.marks[-1][1] if run.marks else 0) >= step:
            run.marks.append((chunk_id, run.chars))  # the first: the end of the run's head, which is always kept
        if run.marks and kept(run) > limit:
            _cut(conn, task_id, run, limit, chunk_id)


def pieces(text: str, size: int) -> Iterator[str]:
    """`text` in parts of at most `size` characters that end where lines end (a longer line is a part of its own)."""
    start = 0
    while len(text) - start > size:
        end = text.rfind("\n", start, start + size) + 1
        if end <= start:
            end = text.find("\n", start + size) + 1 or len(text)
        yield text[start:end]
        start = end
    if start < len(text):
        yield text[start:]


def kept(run: RunLog) -> int:
    """Characters of the run still in the log (the line saying what was left out not counted)."""
    return run.chars - (run.cut_to - run.marks[0][1] if run.cut_id is not None else 0)


def _cut(conn: sqlite3.Connection, task_id: int, run: RunLog, limit: int, newest: int) -> None:
    head_id, head_end = run.marks[0]
    start_id = run.cut_id if run.cut_id is not None else head_id
    target = limit * 3 // 4
    # the first mark (after the head and what was cut before, before the newest chunk) whose cut keeps the target
    chosen = None
    for index, (mark_id, mark_chars) in enumerate(run.marks[1:], start=1):
        if mark_id <= start_id or mark_id >= newest:
            continue
        chosen = index
        if run.chars - (mark_chars - head_end) <= target:
            break
    if chosen is None:
        return  # nothing whole to cut between the head and the newest chunk (a few huge chunks)
    cut_id, cut_to = run.marks[chosen]
    if run.cut_id is None:
        run.cut_id = logs.first_chunk_after(conn, task_id, head_id)
        if run.cut_id is None or run.cut_id > cut_id:
            run.cut_id = None
            return
    logs.delete_chunks_between(conn, task_id, run.cut_id, cut_id)
    run.cut_to = cut_to
    logs.replace_chunk(conn, run.cut_id, left_out_line(cut_to - head_end, limit))
    del run.marks[1 : chosen + 1]
