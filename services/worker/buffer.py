"""The durable update queue: every task update is stored in SQLite first, then sent in order, in batches.

Sequence numbers are per worker and survive restarts; the Manager deduplicates by them, so sending an
update twice (a lost answer, a crash after sending) is harmless, while losing one is impossible: a row is
deleted only after the Manager acknowledged it. Rows are sent strictly in seq order, one task's run at a
time, so the Manager's "ignore seq <= last seen" never skips anything.

A full disk does not stop the worker: an update SQLite cannot store is kept in memory (with every later one, in
order, within a bound: held_updates.py) and written, with back-off, once space is freed; `writable` is clear
meanwhile, and the agent takes no new task. Only stored rows are sent, so the Manager never hears of a result the
buffer does not hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from services.protocol import process_guard
from services.protocol.worker_client import ManagerError, StaleTask, WorkerClient
from services.worker.buffer_check import BUFFER_NAME, note_created
from services.worker.disk_news import DiskNews
from services.worker.held_updates import HeldUpdates, Row
from services.worker.update_sizes import ROW_MAX_CHARS, SMALLEST_BATCH_CHARS, cut_to, dumps, parts

log = logging.getLogger("tablao.worker.buffer")

BATCH_MAX_ROWS = 1000  # WorkerTaskUpdates.updates max_length
BATCH_MAX_CHARS = 4_000_000  # half the Manager's default limit on a request's body (8 MiB)
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


class BufferFull(Exception):
    """The disk holding the buffer is full: a change could not be stored (the caller backs off and tries again)."""


def _is_full(exc: sqlite3.OperationalError) -> bool:
    return exc.sqlite_errorcode == sqlite3.SQLITE_FULL


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
        # set while every update is stored; clear while the disk is full and some wait in `_held`
        self.writable = asyncio.Event()
        self.writable.set()
        self._held = HeldUpdates()
        self._acked = 0  # rows up to here were acknowledged but not deleted yet (a full disk): not sent again
        self._batch_chars = BATCH_MAX_CHARS  # halved at each 413 (too_large)
        self._retry: asyncio.Task[None] | None = None
        self._news = DiskNews(path)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        # a buffer holds a few hundred KB at most: its log copied at 1 MB and cut back to 1 MB after (SQLite's
        # default lets it grow to 4 MB and keeps the file that size), so a small disk is not filled by the log
        self._db.execute("PRAGMA wal_autocheckpoint=256")
        self._db.execute(f"PRAGMA journal_size_limit={1024 * 1024}")
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
        if self._retry is not None:
            self._retry.cancel()
        if self._held and not self.store_unwritten():
            lost = sorted({row.task_id for row, _ in self._held.rows})
            log.error(
                "the disk holding the worker's update buffer %s is still full: %d task updates could not be saved "
                "and are lost (tasks %s); the Manager hands those tasks out again",
                self.path, len(self._held), ", ".join(map(str, lost)),
            )  # fmt: skip
        self._db.close()

    # -- writing -----------------------------------------------------------------------------------------

    def put(self, task_id: int, handout: int, **fields: Any) -> int | None:
        """Store one update (WorkerTaskUpdate fields besides seq and handout) and wake the sender; returns its seq,
        or None when a full disk's bound dropped it (held_updates.py)."""
        if self._held.active():
            admitted, note = self._held.admit(task_id, fields)
            if note is not None:
                self._put(task_id, handout, {"log_lines": [note]})
            if admitted is None:
                return None
            fields = admitted
        return self._put(task_id, handout, fields)

    def _put(self, task_id: int, handout: int, fields: dict[str, Any]) -> int:
        seq = self.last_seq + 1
        body = dumps({"seq": seq, "handout": handout, **fields})
        for part in [fields] if len(body) <= ROW_MAX_CHARS else parts(fields):
            seq = self.last_seq + 1
            if part is not fields:
                body = dumps({"seq": seq, "handout": handout, **part})
            self._write(Row(seq, task_id, handout, body), preview=False)
            self.last_seq = seq
        self._drained.clear()
        self._wake.set()
        return seq

    def put_preview(self, task_id: int, handout: int, preview: dict[str, Any]) -> int | None:
        """Store a preview as an update of its own, replacing the task's older preview not sent yet.

        Dropping an unsent preview row leaves a gap in the seqs, which the Manager's "newer than the last seen"
        rule does not mind; a status is never dropped, a log line only past a full disk's bound.
        """
        if self._held and not self._held.may_hold_preview():
            return None
        seq = self.last_seq + 1
        body = dumps({"seq": seq, "handout": handout, "preview": preview})
        self._write(Row(seq, task_id, handout, body), preview=True)
        self.last_seq = seq
        self._drained.clear()
        self._wake.set()
        return seq

    def _write(self, row: Row, *, preview: bool) -> None:
        """Store a row, or keep it in memory behind the others the full disk refused (order holds)."""
        if not self._held:
            try:
                self._insert(row, preview)
                return
            except sqlite3.OperationalError as exc:
                if not _is_full(exc):
                    raise
                self._disk_full()
        self._held.hold(row, preview)

    def _insert(self, row: Row, preview: bool) -> None:
        values = (row.seq, row.task_id, row.handout, row.body)
        if not preview:
            self._db.execute("INSERT INTO updates (seq, task_id, handout, body) VALUES (?, ?, ?, ?)", values)
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM updates WHERE preview = 1 AND task_id = ?", (row.task_id,))
            self._db.execute(
                "INSERT INTO updates (seq, task_id, handout, body, preview) VALUES (?, ?, ?, ?, 1)", values
            )
            self._db.execute(
                "DELETE FROM updates WHERE preview = 1 AND seq NOT IN"
                " (SELECT seq FROM updates WHERE preview = 1 ORDER BY seq DESC LIMIT ?)",
                (PREVIEW_ROWS_MAX,),
            )

    def _cut_wal(self) -> None:
        """Copy the write-ahead log into the buffer and cut it to nothing. On a full disk no commit goes through,
        so the log is never copied by itself (SQLite does that at 4 MB): on a small disk it kept the space its
        writes needed, and the buffer stayed full after room was made (a fault-injection audit, a 3 MB disk)."""
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _disk_full(self) -> None:
        self._cut_wal()
        if self.writable.is_set():
            self.writable.clear()
            self._news.filled()
        if self._retry is None or self._retry.done():
            # with no loop running (a test), the next store_unwritten() call tries again
            with contextlib.suppress(RuntimeError):
                self._retry = asyncio.get_running_loop().create_task(self._retry_writes())

    async def _retry_writes(self) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        while True:  # the disk sends no event when space is freed: try again, less often as time goes by
            self._cut_wal()
            try:
                if self.store_unwritten():
                    return
            except sqlite3.Error as exc:  # a failing disk, say: keep them and keep trying, but say so
                log.error("cannot write to the update buffer %s: %s", self.path, exc)
            await asyncio.sleep(backoff.next_delay())

    def store_unwritten(self) -> bool:
        """Write the updates kept in memory, in order; True once none is left."""
        while self._held:
            row, preview = self._held.first()
            try:
                self._insert(row, preview)
            except sqlite3.OperationalError as exc:
                if not _is_full(exc):
                    raise
                return False
            self._held.remove_first()
        if not self.writable.is_set():
            self._news.room()
            self.writable.set()
            self._wake.set()
        return True

    def unwritten_count(self) -> int:
        return len(self._held)

    def preview_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM updates WHERE preview = 1").fetchone()[0])

    # -- reading -----------------------------------------------------------------------------------------

    def pending_count(self) -> int:
        """Stored rows not acknowledged yet (the ones kept in memory on a full disk are not counted)."""
        return int(self._db.execute("SELECT count(*) FROM updates WHERE seq > ?", (self._acked,)).fetchone()[0])

    def head(self) -> list[Row]:
        """The next batch to send: the leading rows that belong to one task, in seq order."""
        rows = self._db.execute(
            "SELECT seq, task_id, handout, body FROM updates WHERE seq > ? ORDER BY seq LIMIT ?",
            (self._acked, BATCH_MAX_ROWS),
        ).fetchall()
        return _one_batch([Row(*r) for r in rows], self._batch_chars)

    def too_large(self, rows: list[Row], exc: ManagerError) -> None:
        """The Manager refused these rows, sent as one request, as larger than it takes (413). Later batches are at
        most half as large; a row alone is cut to fit (log lines from its middle, a line saying so; a preview
        dropped) rather than sent again as it is, for ever: a buffer written before rows had a size limit, or a
        Manager whose limit is below the default. Raises `exc` when there is nothing left to make smaller (a proxy
        that takes less than SMALLEST_BATCH_CHARS): sent again after the usual back-off, not in a loop."""
        size = sum(len(r.body) for r in rows)
        before = self._batch_chars
        self._batch_chars = max(SMALLEST_BATCH_CHARS, min(self._batch_chars, size // 2))
        log.warning(
            "the Manager refused %d updates of task %d as too large (%s); sending at most %d characters at a time",
            len(rows), rows[0].task_id, exc.detail, self._batch_chars,
        )  # fmt: skip
        if len(rows) == 1 and len(rows[0].body) > self._batch_chars:
            self._cut(rows[0], self._batch_chars)
        elif len(rows) == 1 or self._batch_chars == before:
            raise exc

    def _cut(self, row: Row, target: int) -> None:
        update = json.loads(row.body)
        try:
            if "preview" in update:
                # a preview can go; the task's next one replaces it
                self._db.execute("DELETE FROM updates WHERE seq = ?", (row.seq,))
                log.warning("dropped a preview of task %d that the Manager would not take", row.task_id)
            else:
                body = dumps(cut_to(update, target))
                self._db.execute("UPDATE updates SET body = ? WHERE seq = ?", (body, row.seq))
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise BufferFull(f"cannot cut an update in the update buffer {self.path}: the disk is full") from exc
            raise
        self._note_drained()

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
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("DELETE FROM updates WHERE seq <= ?", (last,))
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_seq', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                    (last,),
                )
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
            # the Manager has them: not sent again; deleted by a later ack (or resent after a restart: harmless)
            self._acked = max(self._acked, last)
        self._note_drained()

    def move_past(self, seen: int) -> int:
        """The Manager has taken seqs up to `seen` from this worker id, more than this buffer ever numbered: it
        is not the buffer the Manager knows (the data folder was wiped and the credentials kept, say), so none
        of its rows reached the Manager. Number them after `seen`, in order, or the Manager would take them for
        repeats and ignore them. Returns how many rows were renumbered."""
        if seen <= self.last_seq:
            return 0  # this buffer numbered `seen` itself: its rows up to there were taken or are resends
        rows = self._db.execute("SELECT seq, body FROM updates WHERE seq > ? ORDER BY seq", (self._acked,)).fetchall()
        try:
            with self._db:
                self._db.execute("BEGIN")
                # rows the Manager acknowledged that a full disk kept from being deleted: not sent again
                self._db.execute("DELETE FROM updates WHERE seq <= ?", (self._acked,))
                self._db.execute("UPDATE updates SET seq = -seq")  # out of the way of the new numbers
                for new, (old, body) in enumerate(rows, start=seen + 1):
                    renumbered = dumps({**json.loads(body), "seq": new})
                    self._db.execute("UPDATE updates SET seq = ?, body = ? WHERE seq = ?", (new, renumbered, -old))
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_seq', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                    (seen,),
                )
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise BufferFull(f"cannot renumber the update buffer {self.path}: the disk is full") from exc
            raise
        self._acked = 0  # every stored row was renumbered past it
        self._held.replace([
            (Row(new, row.task_id, row.handout, dumps({**json.loads(row.body), "seq": new})), preview)
            for new, (row, preview) in enumerate(self._held.rows, start=seen + 1 + len(rows))
        ])  # fmt: skip
        self.last_seq = seen + len(rows) + len(self._held)
        log.warning(
            "the Manager has seen updates up to %d from this worker, more than this update buffer numbered;"
            " %d pending updates are numbered after it", seen, len(rows),
        )  # fmt: skip
        return len(rows)

    def drop_task(self, task_id: int, handout: int) -> int:
        """Forget the queued updates of a hand-out of a task the Manager refused (409)."""
        try:
            cur = self._db.execute("DELETE FROM updates WHERE task_id = ? AND handout <= ?", (task_id, handout))
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise BufferFull(f"cannot drop updates from the update buffer {self.path}: the disk is full") from exc
            raise
        self._note_drained()
        return cur.rowcount

    def _note_drained(self) -> None:
        if not self.pending_count() and not self._held:
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
            self._stale(batch[0].task_id, batch[0].handout, exc, batch)
            return True
        except ManagerError as exc:
            if exc.status in (400, 404, 422):
                # the Manager will never take these (unknown task, malformed); retrying forever helps no one
                log.error("Manager refused updates of task %d for good: %s", batch[0].task_id, exc)
                self.drop_task(batch[0].task_id, batch[-1].handout)
                return True
            if exc.status == 413:
                self.too_large(batch, exc)
                return True
            raise
        if self.move_past(ack.last_seq):
            return True  # taken for repeats, not applied: sent again under their new numbers
        self.ack(batch)
        return True

    def _stale(self, task_id: int, handout: int, exc: Exception, sent: list[Row]) -> None:
        end = None if any(_completes(r) for r in sent) else self._queued_completion(task_id, handout)
        if end is not None:
            # The run completed before this worker heard that it was taken back (a pause): its completion is offered
            # once on its own, and the Manager still forwards it when it took the run back (the Server keeps the
            # output), or refuses it too. The rest of the run's updates go.
            dropped = self._drop_before(task_id, handout, end)
            log.info("task %d hand-out %d is stale (%s); dropped %d updates, offering its completion once",
                     task_id, handout, exc, dropped)  # fmt: skip
        else:
            dropped = self.drop_task(task_id, handout)
            log.info("task %d hand-out %d is stale (%s); dropped %d updates", task_id, handout, exc, dropped)
        if self.on_stale is not None:
            self.on_stale(task_id, handout)

    def _queued_completion(self, task_id: int, handout: int) -> int | None:
        """The seq of the queued update that completes this hand-out's run, if the run has completed."""
        query = "SELECT seq, task_id, handout, body FROM updates WHERE task_id = ? AND handout = ? AND seq > ?"
        rows = self._db.execute(query + " ORDER BY seq", (task_id, handout, self._acked)).fetchall()
        return next((r[0] for r in rows if _completes(Row(*r))), None)

    def _drop_before(self, task_id: int, handout: int, seq: int) -> int:
        try:
            cur = self._db.execute(
                "DELETE FROM updates WHERE task_id = ? AND handout <= ? AND seq < ?", (task_id, handout, seq)
            )
        except sqlite3.OperationalError as exc:
            if _is_full(exc):
                raise BufferFull(f"cannot drop updates from the update buffer {self.path}: the disk is full") from exc
            raise
        return cur.rowcount

    async def flush(self, within: float) -> bool:
        """Send everything pending, retrying with back-off, for at most `within` seconds; at a stop while the disk
        is full, the updates kept in memory too (after the stored ones, in order), rather than lose them."""
        try:
            async with asyncio.timeout(within):
                await self._send_pending()
                async with self.lock:
                    await self._send_unwritten()
        except TimeoutError:
            return False
        return True

    async def _send_unwritten(self) -> None:
        """Send the updates the full disk kept in memory straight to the Manager, a task's run at a time. Each
        carries its sequence number, so the Manager takes each once, whatever was sent before."""
        while self._held:
            batch = _one_batch([row for row, _preview in self._held.rows])
            task_id, handout = batch[0].task_id, batch[-1].handout
            try:
                ack = await self.client.send_updates(task_id, [r.body for r in batch])
            except StaleTask as exc:
                log.info(
                    "task %d hand-out %d is stale (%s); its updates kept in memory are dropped", task_id, handout, exc
                )
            except ManagerError as exc:
                if exc.status not in (400, 404, 422):
                    raise
                log.error("Manager refused updates of task %d for good: %s", task_id, exc)
            else:
                if ack.last_seq > batch[-1].seq:
                    log.error(
                        "the Manager has seen updates up to %d from this worker, past the ones kept in memory "
                        "(up to %d): they were not applied", ack.last_seq, batch[-1].seq,
                    )  # fmt: skip
                    return
            self._held.remove_first(len(batch))

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
            except (httpx.TransportError, ManagerError, BufferFull) as exc:
                delay = self.backoff.next_delay()
                log.warning("sending updates failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)

    def stale_from(self, rows: list[Row], exc: StaleTask) -> None:
        """The Manager refused the given rows as stale in a combined request."""
        if rows:
            self._stale(rows[0].task_id, rows[-1].handout, exc, rows)

    def wake(self) -> None:
        self._wake.set()


def _completes(row: Row) -> bool:
    return '"completed"' in row.body and json.loads(row.body).get("status") == "completed"


def _one_batch(rows: list[Row], max_chars: int = BATCH_MAX_CHARS) -> list[Row]:
    """The leading rows that belong to one hand-out of one task and fit one request, in seq order.

    One hand-out, not only one task: the Manager refuses a whole request when one of its updates is of a stale
    hand-out, and the refusal drops the batch's hand-out and those before it; a batch that held a killed run's
    updates and the next run's finished report lost that report, and the task ran again."""
    batch: list[Row] = []
    size = 0
    for row in rows[:BATCH_MAX_ROWS]:
        if batch and (
            row.task_id != batch[0].task_id or row.handout != batch[0].handout or size + len(row.body) > max_chars
        ):
            break
        batch.append(row)
        size += len(row.body)
    return batch


def open_buffer(data_dir: Path, client: WorkerClient, **kwargs: Any) -> UpdateBuffer:
    process_guard.private_dir(data_dir)
    process_guard.private_file(data_dir / BUFFER_NAME)
    buffer = UpdateBuffer(data_dir / BUFFER_NAME, client, **kwargs)
    note_created(data_dir)  # from now on a missing or emptied buffer is refused (buffer_check.py)
    return buffer
