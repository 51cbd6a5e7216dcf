"""The durable update queue: every task update is stored in SQLite first, then sent in order, in batches.

Sequence numbers are per worker and survive restarts; the Manager deduplicates by them, so sending an
update twice (a lost answer, a crash after sending) is harmless, while losing one is impossible: a row is
deleted only after the Manager acknowledged it. Rows are sent strictly in seq order, one task's run at a
time, so the Manager's "ignore seq <= last seen" never skips anything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.protocol import process_guard
from services.protocol.worker_client import ManagerError, StaleTask, WorkerClient

log = logging.getLogger("tablao.worker.buffer")

BATCH_MAX_ROWS = 1000  # WorkerTaskUpdates.updates max_length
BATCH_MAX_CHARS = 4_000_000
# rows holding a preview (each up to ~350 kB of JSON): the newest per task is kept, and at most this many in all,
# so a long Manager outage with frames saved every second does not grow the buffer
PREVIEW_ROWS_MAX = 8

_SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    seq INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, handout INTEGER NOT NULL, body TEXT NOT NULL,
    preview INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    task_id: int
    handout: int
    body: str  # the WorkerTaskUpdate as JSON, seq included


class Backoff:
    """Exponential back-off with full jitter: the n-th wait is uniform in [0, min(cap, base·2ⁿ)]."""

    def __init__(self, base: float = 0.1, cap: float = 30.0) -> None:
        self.base, self.cap, self.failures = base, cap, 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.failures)
        self.failures += 1
        return max(0.01, random.uniform(0, ceiling))

    def reset(self) -> None:
        self.failures = 0


class UpdateBuffer:
    def __init__(
        self,
        path: Path,
        client: WorkerClient,
        *,
        on_stale: Callable[[int, int], None] | None = None,
        batch_delay: float = 0.5,
        backoff: Backoff | None = None,
    ) -> None:
        self.path = path
        self.client = client
        self.on_stale = on_stale
        self.batch_delay = batch_delay
        self.backoff = backoff or Backoff()
        # held while rows are in flight, so two senders never race and order holds
        self.lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if "preview" not in {r[1] for r in self._db.execute("PRAGMA table_info(updates)")}:
            # a buffer from before previews: the column marks the rows a newer preview may replace
            self._db.execute("ALTER TABLE updates ADD COLUMN preview INTEGER NOT NULL DEFAULT 0")
        row = self._db.execute(
            "SELECT max(coalesce((SELECT max(seq) FROM updates), 0),"
            " coalesce((SELECT value FROM meta WHERE key = 'last_seq'), 0))"
        ).fetchone()
        self.last_seq: int = int(row[0])
        self._note_drained()

    def close(self) -> None:
        self._db.close()

    # -- writing -----------------------------------------------------------------------------------------

    def put(self, task_id: int, handout: int, **fields: Any) -> int:
        """Store one update (WorkerTaskUpdate fields besides seq and handout) and wake the sender."""
        seq = self.last_seq + 1
        body = _dumps({"seq": seq, "handout": handout, **fields})
        self._db.execute(
            "INSERT INTO updates (seq, task_id, handout, body) VALUES (?, ?, ?, ?)",
            (seq, task_id, handout, body),
        )
        self.last_seq = seq
        self._drained.clear()
        self._wake.set()
        return seq

    def put_preview(self, task_id: int, handout: int, preview: dict[str, Any]) -> int:
        """Store a preview as an update of its own, replacing the task's older preview not sent yet.

        Dropping an unsent preview row leaves a gap in the seqs, which the Manager's "newer than the last seen"
        rule does not mind; only previews are ever dropped this way, never a log line or a status.
        """
        seq = self.last_seq + 1
        body = _dumps({"seq": seq, "handout": handout, "preview": preview})
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM updates WHERE preview = 1 AND task_id = ?", (task_id,))
            self._db.execute(
                "INSERT INTO updates (seq, task_id, handout, body, preview) VALUES (?, ?, ?, ?, 1)",
                (seq, task_id, handout, body),
            )
            self._db.execute(
                "DELETE FROM updates WHERE preview = 1 AND seq NOT IN"
                " (SELECT seq FROM updates WHERE preview = 1 ORDER BY seq DESC LIMIT ?)",
                (PREVIEW_ROWS_MAX,),
            )
        self.last_seq = seq
        self._drained.clear()
        self._wake.set()
        return seq

    def preview_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM updates WHERE preview = 1").fetchone()[0])

    # -- reading -----------------------------------------------------------------------------------------

    def pending_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM updates").fetchone()[0])

    def head(self) -> list[Row]:
        """The next batch to send: the leading rows that belong to one task, in seq order."""
        rows = self._db.execute(
            "SELECT seq, task_id, handout, body FROM updates ORDER BY seq LIMIT ?", (BATCH_MAX_ROWS,)
        ).fetchall()
        batch: list[Row] = []
        size = 0
        for seq, task_id, handout, body in rows:
            if batch and (task_id != batch[0].task_id or size + len(body) > BATCH_MAX_CHARS):
                break
            batch.append(Row(seq, task_id, handout, body))
            size += len(body)
        return batch

    def only_task_pending(self, task_id: int) -> list[Row] | None:
        """All pending rows when every one belongs to task_id and they fit one batch; otherwise None."""
        batch = self.head()
        if not batch:
            return []
        if batch[0].task_id != task_id or len(batch) != self.pending_count():
            return None
        return batch

    def ack(self, rows: list[Row]) -> None:
        if not rows:
            return
        last = rows[-1].seq
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM updates WHERE seq <= ?", (last,))
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_seq', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                (last,),
            )
        self._note_drained()

    def move_past(self, seen: int) -> int:
        """The Manager has taken seqs up to `seen` from this worker id, more than this buffer ever numbered: it
        is not the buffer the Manager knows (the data folder was wiped and the credentials kept, say), so none
        of its rows reached the Manager. Number them after `seen`, in order, or the Manager would take them for
        repeats and ignore them. Returns how many rows were renumbered."""
        if seen <= self.last_seq:
            return 0  # this buffer numbered `seen` itself: its rows up to there were taken or are resends
        rows = self._db.execute("SELECT seq, body FROM updates ORDER BY seq").fetchall()
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("UPDATE updates SET seq = -seq")  # out of the way of the new numbers
            for new, (old, body) in enumerate(rows, start=seen + 1):
                renumbered = _dumps({**json.loads(body), "seq": new})
                self._db.execute("UPDATE updates SET seq = ?, body = ? WHERE seq = ?", (new, renumbered, -old))
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_seq', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                (seen,),
            )
        self.last_seq = seen + len(rows)
        log.warning(
            "the Manager has seen updates up to %d from this worker, more than this update buffer numbered;"
            " %d pending updates are numbered after it", seen, len(rows),
        )  # fmt: skip
        return len(rows)

    def drop_task(self, task_id: int, handout: int) -> int:
        """Forget the queued updates of a hand-out of a task the Manager refused (409)."""
        cur = self._db.execute("DELETE FROM updates WHERE task_id = ? AND handout <= ?", (task_id, handout))
        self._note_drained()
        return cur.rowcount

    def _note_drained(self) -> None:
        if not self.pending_count():
            self._drained.set()

    async def drained(self) -> None:
        """Return once nothing is pending (the sender delivered everything)."""
        await self._drained.wait()

    # -- sending -----------------------------------------------------------------------------------------

    async def send_head(self) -> bool:
        """Send one batch (call with the lock held). True if something was sent or dropped."""
        batch = self.head()
        if not batch:
            return False
        log.debug("sending %d updates of task %d", len(batch), batch[0].task_id)
        try:
            ack = await self.client.send_updates(batch[0].task_id, [r.body for r in batch])
        except StaleTask as exc:
            self._stale(batch[0].task_id, batch[0].handout, exc)
            return True
        except ManagerError as exc:
            if exc.status in (400, 404, 422):
                # the Manager will never take these (unknown task, malformed); retrying forever helps no one
                log.error("Manager refused updates of task %d for good: %s", batch[0].task_id, exc)
                self.drop_task(batch[0].task_id, batch[-1].handout)
                return True
            raise
        if self.move_past(ack.last_seq):
            return True  # taken for repeats, not applied: sent again under their new numbers
        self.ack(batch)
        return True

    def _stale(self, task_id: int, handout: int, exc: Exception) -> None:
        dropped = self.drop_task(task_id, handout)
        log.info("task %d hand-out %d is stale (%s); dropped %d updates", task_id, handout, exc, dropped)
        if self.on_stale is not None:
            self.on_stale(task_id, handout)

    async def flush(self, within: float) -> bool:
        """Send everything pending, retrying with back-off, for at most `within` seconds."""
        try:
            async with asyncio.timeout(within):
                await self._send_pending()
        except TimeoutError:
            return False
        return True

    async def run_sender(self) -> None:
        """Background loop: wait for rows, let them gather for `batch_delay`, send, back off on failure."""
        while True:
            if not self.pending_count():
                self._wake.clear()
                await self._wake.wait()
            # coalesce: a running task's log lines ride in one request every batch_delay
            await asyncio.sleep(self.batch_delay)
            await self._send_pending()

    async def _send_pending(self) -> None:
        """Send batch after batch until nothing is pending; a failed send waits with back-off and tries again."""
        while self.pending_count():
            try:
                async with self.lock:
                    await self.send_head()
                self.backoff.reset()
            except (httpx.TransportError, ManagerError) as exc:
                delay = self.backoff.next_delay()
                log.warning("sending updates failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)

    def stale_from(self, rows: list[Row], exc: StaleTask) -> None:
        """The Manager refused the given rows as stale in a combined request."""
        if rows:
            self._stale(rows[0].task_id, rows[-1].handout, exc)

    def wake(self) -> None:
        self._wake.set()


def _dumps(update: dict[str, Any]) -> str:
    """The update as stored and sent, with any NUL a task printed replaced by U+FFFD, as undecodable bytes are:
    the Manager refuses NULs (a 422, which would drop the task's updates), and no database column takes them."""
    body = json.dumps(update, separators=(",", ":"))
    if "\\u0000" in body:  # rare: a second pass rather than a scan of every string of every update
        body = json.dumps(_without_nul(update), separators=(",", ":"))
    return body


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(v) for v in value]
    return value


def open_buffer(data_dir: Path, client: WorkerClient, **kwargs: Any) -> UpdateBuffer:
    process_guard.private_dir(data_dir)
    process_guard.private_file(data_dir / "updates.sqlite")
    return UpdateBuffer(data_dir / "updates.sqlite", client, **kwargs)
