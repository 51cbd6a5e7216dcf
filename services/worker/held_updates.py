"""Updates a full disk kept out of the worker's update buffer: held in memory, in order, within a bound.

A task that logs heavily for hours while the disk stays full would otherwise grow the worker without end. Past
`HELD_CHARS_MAX` of held text, what only reports on a task's way (log lines, progress, activity, previews) is
dropped and counted; what changes a task's fate (a status, the files it made) is always held, without its log
lines. Before the task's next update held goes a line saying how many of its log lines were dropped, so its log
shows the hole, and the worker's log says it once per task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("tablao.worker.buffer")

# About 16 MB of JSON text. No new task is taken while the disk is full, so past this bound only the running
# task (and one prefetched) can add anything, and only their statuses and output files are still held.
HELD_CHARS_MAX = 16_000_000
# The fields that decide a task's fate: an update with any of them is never dropped; past the bound it keeps
# only these and the few small ones beside them.
FATEFUL = ("status", "output_files")
KEPT_PAST_BOUND = (*FATEFUL, "time", "activity", "steps_done", "steps_total")


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    task_id: int
    handout: int
    body: str  # the WorkerTaskUpdate as JSON, seq included


class HeldUpdates:
    """The rows SQLite could not store, oldest first, with the size of their text and what was dropped."""

    def __init__(self, max_chars: int = HELD_CHARS_MAX) -> None:
        self.max_chars = max_chars
        self.rows: list[tuple[Row, bool]] = []  # (row, is a preview), in seq order
        self.chars = 0
        self._dropped_lines: dict[int, int] = {}  # task id → its log lines dropped and not yet said so
        self._said: set[int] = set()  # tasks whose dropped lines the worker's log has mentioned

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def active(self) -> bool:
        """Some updates are held, or a task is owed a note of its dropped lines."""
        return bool(self.rows) or bool(self._dropped_lines)

    def admit(self, task_id: int, fields: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The fields of an update about to be held, as they may be, and a note to send before it.

        Past the bound, an update that changes nothing of the task's fate is dropped (None), and one that does
        keeps only what does (its log lines are dropped too: a render saving a frame a minute would otherwise
        grow the held text by a minute of log each time). The note, a log line of its own before the task's
        next update held, says how many lines are missing: an update of its own, as the update may already
        carry as many lines as one may."""
        if self.chars >= self.max_chars:
            lines = len(fields.get("log_lines") or ())
            if lines:
                self._drop_lines(task_id, lines)
            if not any(fields.get(k) for k in FATEFUL):
                return None, None
            fields = {k: v for k, v in fields.items() if k in KEPT_PAST_BOUND}
        dropped = self._dropped_lines.pop(task_id, 0)
        note = f"[tablao] {dropped} log lines were dropped here: the worker's disk was full" if dropped else None
        return fields, note

    def _drop_lines(self, task_id: int, lines: int) -> None:
        if task_id not in self._said:
            self._said.add(task_id)
            log.error(
                "the worker's update buffer has held %d MB in memory since the disk filled: task %d's log lines, "
                "progress and previews are dropped until there is room (its status and output files are kept)",
                self.chars // 1_000_000, task_id,
            )  # fmt: skip
        self._dropped_lines[task_id] = self._dropped_lines.get(task_id, 0) + lines

    def may_hold_preview(self) -> bool:
        return self.chars < self.max_chars

    def hold(self, row: Row, preview: bool) -> None:
        if preview:  # as in the buffer: a task's newer preview replaces its older one not stored yet
            replaced = [r for r, p in self.rows if p and r.task_id == row.task_id]
            if replaced:
                self.rows = [(r, p) for r, p in self.rows if not (p and r.task_id == row.task_id)]
                self.chars -= sum(len(r.body) for r in replaced)
        self.rows.append((row, preview))
        self.chars += len(row.body)

    def first(self) -> tuple[Row, bool]:
        return self.rows[0]

    def remove_first(self, count: int = 1) -> None:
        self.chars -= sum(len(r.body) for r, _ in self.rows[:count])
        del self.rows[:count]

    def replace(self, rows: list[tuple[Row, bool]]) -> None:
        """The same updates renumbered (their bodies carry the new seq)."""
        self.rows = rows
        self.chars = sum(len(r.body) for r, _ in rows)
