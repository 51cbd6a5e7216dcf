"""The update buffer on a full disk (a real SQLITE_FULL, from PRAGMA max_page_count): nothing raises, the updates
wait in memory in order, are stored once there is room, and only stored ones are sent."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.protocol.worker_api import LOG_CHUNK_MAX_LINES, WorkerTaskUpdates
from services.protocol.worker_client import WorkerClient
from services.worker.buffer import UpdateBuffer
from services.worker.disk_news import NEARLY_FULL_WINDOW, DiskNews
from tests.unit.worker.receiver import Receiver

BIG = "x" * 20_000  # a few pages: past any room left in the file


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def fill(buf: UpdateBuffer) -> None:
    """No page may be added to the buffer's file from now on: the disk is full, as SQLite sees it."""
    pages = buf._db.execute("PRAGMA page_count").fetchone()[0]
    buf._db.execute(f"PRAGMA max_page_count = {pages}")


def free(buf: UpdateBuffer) -> None:
    buf._db.execute("PRAGMA max_page_count = 1073741823")


async def test_updates_wait_in_memory_on_a_full_disk_and_are_sent_in_order_once_stored(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    sender = asyncio.create_task(buf.run_sender())
    try:
        buf.put(1, 1, status="active")
        async with asyncio.timeout(5):
            await buf.drained()
        fill(buf)
        with caplog.at_level(logging.WARNING, logger="tablao.worker.buffer"):
            seqs = [buf.put(1, 1, log_lines=[BIG]), buf.put(1, 1, status="completed"), buf.put(2, 1, log_lines=["b"])]
            assert seqs == [2, 3, 4]
            assert not buf.writable.is_set() and buf.unwritten_count() == 3
            await asyncio.sleep(0.3)  # the sender sends nothing it has not stored
            assert [u["seq"] for _, u in receiver.updates] == [1]
            full = [r.getMessage() for r in caplog.records if "is full" in r.getMessage()]
            assert len(full) == 1 and str(tmp_path / "u.sqlite") in full[0], full
            free(buf)
            async with asyncio.timeout(10):
                await buf.writable.wait()
                await buf.drained()
        assert [(t, u["seq"]) for t, u in receiver.updates] == [(1, 1), (1, 2), (1, 3), (2, 4)]
        assert receiver.updates[2][1]["status"] == "completed"
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await client.aclose()
        buf.close()


async def test_an_ack_on_a_full_disk_does_not_send_the_rows_again(tmp_path: Path, receiver: Receiver) -> None:
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    try:
        for i in range(40):
            buf.put(1, 1, log_lines=[BIG[:3000] + str(i)])
        fill(buf)
        async with buf.lock:
            assert await buf.send_head()
        assert buf.pending_count() == 0 and buf.head() == []
        assert len(receiver.requests) == 1
        free(buf)
    finally:
        await client.aclose()
        buf.close()
    reopened = UpdateBuffer(tmp_path / "u.sqlite", client)
    try:  # not deleted while full: sent again after a restart, which the Manager ignores as repeats
        assert reopened.last_seq == 40
    finally:
        reopened.close()


def test_previews_kept_in_memory_replace_the_tasks_older_one(tmp_path: Path) -> None:
    buf = UpdateBuffer(tmp_path / "u.sqlite", WorkerClient("http://127.0.0.1:9"))
    try:
        fill(buf)
        buf.put(1, 1, log_lines=[BIG])
        buf.put_preview(1, 1, {"n": 1})
        buf.put_preview(1, 1, {"n": 2})
        assert buf.unwritten_count() == 2
        free(buf)
        assert buf.store_unwritten() and buf.writable.is_set()
        assert [r.seq for r in buf.head()] == [1, 3] and buf.preview_count() == 1
    finally:
        buf.close()


def test_closing_on_a_full_disk_says_which_tasks_updates_are_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buf = UpdateBuffer(tmp_path / "u.sqlite", WorkerClient("http://127.0.0.1:9"))
    fill(buf)
    buf.put(7, 1, log_lines=[BIG])
    buf.put(7, 1, status="completed")
    buf.put(9, 2, status="queued")
    with caplog.at_level(logging.ERROR, logger="tablao.worker.buffer"):
        buf.close()
    lost = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(lost) == 1, lost
    assert "3 task updates could not be saved" in lost[0] and "tasks 7, 9" in lost[0], lost


async def test_a_stop_while_the_disk_is_full_sends_what_is_kept_in_memory(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The updates are in memory, numbered after the stored ones: sent at the stop rather than lost (a finished
    frame rendered again)."""
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    try:
        buf.put(1, 1, status="active")
        fill(buf)
        buf.put(1, 1, log_lines=[BIG])
        buf.put(1, 1, status="completed")
        buf.put(2, 1, status="active")
        assert buf.unwritten_count() == 3
        assert await buf.flush(5)
        assert [(t, u["seq"]) for t, u in receiver.updates] == [(1, 1), (1, 2), (1, 3), (2, 4)]
        assert buf.unwritten_count() == 0
        with caplog.at_level(logging.ERROR, logger="tablao.worker.buffer"):
            buf.close()
        assert not [r for r in caplog.records if "are lost" in r.getMessage()]
    finally:
        await client.aclose()


async def test_rows_acknowledged_on_a_full_disk_are_not_renumbered_and_sent_again(
    tmp_path: Path, receiver: Receiver
) -> None:
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    try:
        for i in range(3):
            buf.put(1, 1, log_lines=[f"line {i}"])
        fill(buf)
        async with buf.lock:
            assert await buf.send_head()  # acknowledged, not deleted: the disk is full
        free(buf)
        buf.move_past(10)  # the Manager has seen more than this buffer numbered (a restored data folder)
        assert buf.pending_count() == 0 and buf.head() == []
    finally:
        await client.aclose()
        buf.close()


async def test_what_a_full_disk_keeps_in_memory_is_bounded_and_the_log_shows_the_hole(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A task logging heavily for hours on a full disk: past the bound only what decides the task's fate is
    held (a status, its output files), without log lines; a line of its own says how many were dropped."""
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    buf._held.max_chars = 100_000
    try:
        buf.put(1, 1, status="active")
        fill(buf)
        with caplog.at_level(logging.ERROR, logger="tablao.worker.buffer"):
            kept = [buf.put(1, 1, log_lines=[BIG, BIG], steps_done=i) for i in range(200)]  # 8 MB asked
            assert buf.put_preview(1, 1, {"n": 1}) is None
            assert buf.put(1, 1, steps_done=201, activity="rendering") is None
            # a frame saved while over the bound: kept, its lines are not
            frame = buf.put(1, 1, log_lines=[BIG, "Saved: f1.png"], output_files=["/out/f1.png"])
            more = [buf.put(1, 1, log_lines=[BIG]) for _ in range(50)]
            final = buf.put(1, 1, status="completed", log_lines=["done"], output_files=["/out/f2.png"])
            stale = buf.put(2, 3, status="queued")
        held = [s for s in kept if s is not None]
        assert 0 < len(held) < 10 and kept[: len(held)] == held  # the first ones, up to the bound
        assert frame is not None and final is not None and stale is not None and more == [None] * 50
        assert buf._held.chars < 100_000 + 2 * len(BIG) + 5_000  # the frames' rows are small
        said = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(said) == 1 and "task 1" in said[0], said
        free(buf)
        async with asyncio.timeout(10):
            assert await buf.flush(5)
        updates = [u for _t, u in receiver.updates]
        assert [u["seq"] for u in updates] == sorted(u["seq"] for u in updates)  # in order, gaps where dropped
        by_seq = {u["seq"]: u for u in updates}
        first_note = by_seq[frame - 1]["log_lines"]
        assert first_note == [
            f"[tablao] {2 * (200 - len(held)) + 2} log lines were dropped here: the worker's disk was full"
        ]
        assert by_seq[frame]["output_files"] == ["/out/f1.png"] and "log_lines" not in by_seq[frame]
        assert by_seq[final - 1]["log_lines"] == ["[tablao] 51 log lines were dropped here: the worker's disk was full"]
        done = by_seq[final]
        assert done["status"] == "completed" and done["output_files"] == ["/out/f2.png"] and "log_lines" not in done
        assert by_seq[stale]["status"] == "queued"
    finally:
        await client.aclose()
        buf.close()


def test_lines_dropped_while_held_are_noted_even_once_the_disk_has_room(tmp_path: Path) -> None:
    """The note is an update of its own: the update after it may carry as many lines as one may (5,000), and one
    more would have the Manager refuse the batch, and with it the task's result."""
    buf = UpdateBuffer(tmp_path / "u.sqlite", WorkerClient("http://127.0.0.1:9"))
    buf._held.max_chars = 30_000
    try:
        fill(buf)
        buf.put(1, 1, log_lines=[BIG, BIG])
        assert buf.put(1, 1, log_lines=["a", "b", "c"]) is None
        free(buf)
        assert buf.store_unwritten()
        full = [f"line {i}" for i in range(LOG_CHUNK_MAX_LINES)]
        assert buf.put(1, 1, log_lines=full, status="completed") is not None
        rows = buf.head()
        bodies = [json.loads(r.body) for r in rows]
        assert bodies[-2]["log_lines"] == ["[tablao] 3 log lines were dropped here: the worker's disk was full"]
        assert bodies[-1]["log_lines"] == full
        WorkerTaskUpdates.model_validate({"updates": bodies[-2:]})  # what the Manager takes: both rows
        assert buf.put(1, 1, log_lines=["e"]) is not None
        assert json.loads(buf.head()[-1].body)["log_lines"] == ["e"]  # said once
    finally:
        buf.close()


async def test_the_write_ahead_log_stays_small_and_is_cut_when_the_disk_is_full(
    tmp_path: Path, receiver: Receiver
) -> None:
    """On a 3 MB disk the buffer's log grew to 3 MB (SQLite copies it into the file at 4 MB only) and, the disk
    full, stayed so after room was made: the buffer never took a write again (a fault-injection audit). The log
    is copied at 1 MB and cut back, and cut to nothing when the disk is full."""
    client = WorkerClient(receiver.url)
    path = tmp_path / "u.sqlite"
    wal = tmp_path / "u.sqlite-wal"
    buf = UpdateBuffer(path, client, batch_delay=0.01)
    sender = asyncio.create_task(buf.run_sender())
    try:
        largest = 0
        for i in range(300):  # 6 MB of log lines through the buffer, sent as they come
            buf.put(1, 1, log_lines=[f"{i} {BIG}"])
            if i % 20 == 0:
                await buf.drained()
            largest = max(largest, wal.stat().st_size)
        await buf.drained()
        assert largest < 1.6 * 1024 * 1024, largest
        assert wal.stat().st_size > 0
        fill(buf)
        pages = buf._db.execute("PRAGMA page_count").fetchone()[0]
        buf.put(1, 1, log_lines=["y" * (pages + 10) * 4096])  # more than the whole file: kept in memory, log cut
        assert buf.unwritten_count() == 1
        assert wal.stat().st_size == 0
        free(buf)
        assert buf.store_unwritten()
        await buf.drained()
    finally:
        sender.cancel()
        await client.aclose()
        buf.close()


def test_a_nearly_full_disk_is_said_once_not_at_every_task(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The disk fills at each task and room is made at once (as cutting the write-ahead log does): a fault-injection
    audit saw "full" and "room again" in the same millisecond, task after task."""
    buf = UpdateBuffer(tmp_path / "u.sqlite", WorkerClient("http://127.0.0.1:9"))
    try:
        buf.put(1, 1, status="active")
        with caplog.at_level(logging.WARNING, logger="tablao.worker.buffer"):
            for task in range(2, 22):
                fill(buf)
                buf.put(task, 1, log_lines=[BIG])
                assert not buf.writable.is_set()
                free(buf)
                assert buf.store_unwritten() and buf.writable.is_set()
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 3, said  # full, room again, then: nearly full
        assert "is full" in said[0] and "has room again" in said[1] and "is nearly full" in said[2], said
        assert buf.pending_count() == 21  # every update stored
    finally:
        buf.close()


def test_nearly_full_is_said_again_now_and_then_and_a_disk_that_stayed_writable_is_news_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    news = DiskNews(Path("/buf"), clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="tablao.worker.buffer"):
        for _ in range(100):  # every 10 s, for 1,000 s
            news.filled()
            news.room()
            now[0] += 10
        now[0] += NEARLY_FULL_WINDOW  # a quiet minute: the next fill is news
        news.filled()
    said = [r.getMessage() for r in caplog.records]
    assert [m.split(" is ")[1].split(":")[0] for m in said if "has room" not in m] == [
        "full", "nearly full", "still nearly full", "full",
    ], said  # fmt: skip
    assert "filled 60 times in the last 10 minutes" in said[3], said
