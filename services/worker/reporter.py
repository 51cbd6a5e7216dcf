"""Collects one running task's log lines and progress in memory and writes them to the buffer in chunks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from services.protocol.preview import Preview
from services.protocol.states import TaskStatus
from services.protocol.worker_api import LOG_CHUNK_MAX_LINES
from services.worker.buffer import UpdateBuffer

ACTIVITY_MAX = 1000
# a chunk's characters: long lines printed fast (5,000 of 10,000 characters) made 50 MB updates held in memory
LOG_CHUNK_MAX_CHARS = 500_000  # half a buffer row (update_sizes.ROW_MAX_CHARS): plain text is one row


class TaskReporter:
    """Coalesces output into few buffer rows: one per `flush_interval`, or per status change.

    A task's whole life can be a single row (its final update) when it lasts less than the interval,
    which is what keeps short tasks cheap for the Manager.
    """

    def __init__(self, buffer: UpdateBuffer, task_id: int, handout: int, steps_total: int) -> None:
        self.buffer = buffer
        self.task_id = task_id
        self.handout = handout
        self.steps_total = steps_total
        self.steps_done = 0
        self._lines: list[str] = []
        self._chars = 0  # in _lines
        self._fields: dict[str, Any] = {}
        self._outputs: list[str] = []
        self.discarded = False

    def log(self, line: str) -> None:
        self._lines.append(line)
        self._chars += len(line)
        if len(self._lines) >= LOG_CHUNK_MAX_LINES or self._chars >= LOG_CHUNK_MAX_CHARS:
            self.flush()

    def progress(self, done: int | None, total: int | None = None) -> None:
        if done is not None:
            self.steps_done = done
            self._fields["steps_done"] = done
        if total is not None:
            self._fields["steps_total"] = total

    def activity(self, text: str) -> None:
        self._fields["activity"] = text[:ACTIVITY_MAX]

    def output_file(self, path: str) -> None:
        self._outputs.append(path)

    def preview(self, preview: Preview) -> None:
        """A thumbnail of a saved frame: a buffer row of its own, which the task's next preview replaces."""
        if not self.discarded:
            self.buffer.put_preview(self.task_id, self.handout, preview.model_dump(mode="json"))

    def discard(self) -> None:
        """The task is no longer ours (409): nothing more of it goes out."""
        self.discarded = True
        self._lines.clear()
        self._chars = 0
        self._fields.clear()
        self._outputs.clear()

    def flush(self, status: TaskStatus | None = None) -> int | None:
        """Write what has gathered as one update; returns its seq, or None when there was nothing."""
        if self.discarded or not (status or self._lines or self._fields or self._outputs):
            return None
        fields = dict(self._fields)
        if status is not None:
            fields["status"] = status.value
            fields["time"] = datetime.now(UTC).isoformat()  # the Manager may hear of it later (buffered)
        if self._lines:
            fields["log_lines"] = self._lines
        if self._outputs:
            fields["output_files"] = self._outputs
        self._lines, self._fields, self._outputs, self._chars = [], {}, [], 0
        return self.buffer.put(self.task_id, self.handout, **fields)

    def finish(self, status: TaskStatus, activity: str) -> None:
        if status == TaskStatus.COMPLETED:
            self.progress(max(self.steps_done, self.steps_total))
        self.activity(activity)
        self.log(activity)
        self.flush(status)

    async def run_flusher(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.flush()
