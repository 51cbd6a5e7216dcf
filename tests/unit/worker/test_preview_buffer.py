"""Previews in the durable update buffer: a Manager outage loses no log line or status, keeps the newest preview
of each task, and does not let frames saved every second grow the buffer."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path
from typing import Any

from services.protocol.worker_client import WorkerClient
from services.worker.buffer import PREVIEW_ROWS_MAX, Backoff, UpdateBuffer
from tests.support.ports import free_port
from tests.unit.worker.receiver import Receiver


def preview(frame: int) -> dict[str, Any]:
    data = base64.b64encode(b"\xff\xd8" + bytes([frame % 256]) * 40_000).decode()  # ~53 kB of JSON each
    return {"content_type": "image/jpeg", "width": 512, "height": 288, "data": data,
            "frame_path": f"/out/frame_{frame:04d}.png"}  # fmt: skip


async def test_a_manager_outage_keeps_every_line_and_the_newest_preview(tmp_path: Path) -> None:
    port = free_port()  # the Manager is down
    client = WorkerClient(f"http://127.0.0.1:{port}", timeout=1.0)
    path = tmp_path / "u.sqlite"
    buf = UpdateBuffer(path, client, batch_delay=0.01, backoff=Backoff(base=0.05, cap=0.3))
    sender = asyncio.create_task(buf.run_sender())
    buf.put(1, 1, status="active")
    for frame in range(1, 61):  # a minute of frames, one a second, while the Manager is away
        buf.put(1, 1, log_lines=[f"Fra:{frame}", f"Saved: '/out/frame_{frame:04d}.png'"], steps_done=frame)
        buf.put_preview(1, 1, preview(frame))
    buf.put(1, 1, status="completed")
    await asyncio.sleep(0.5)
    assert buf.preview_count() == 1  # the newest of the task only
    assert buf.pending_count() == 1 + 60 + 1 + 1
    with sqlite3.connect(path) as db:
        queued = int(db.execute("SELECT sum(length(body)) FROM updates").fetchone()[0])
    receiver = Receiver(port)  # the Manager is back
    try:
        async with asyncio.timeout(10):
            await buf.drained()
    finally:
        sender.cancel()
        receiver.close()
        await client.aclose()
        buf.close()
    got = [u for _t, u in receiver.updates]
    assert got[0]["status"] == "active" and got[-1]["status"] == "completed"
    lines = [ln for u in got for ln in u.get("log_lines", [])]
    assert lines == [x for f in range(1, 61) for x in (f"Fra:{f}", f"Saved: '/out/frame_{f:04d}.png'")]
    shown = [u["preview"]["frame_path"] for u in got if "preview" in u]
    assert shown == ["/out/frame_0060.png"]
    assert [u["seq"] for u in got] == sorted(u["seq"] for u in got)  # in order, gaps where previews were replaced
    # sixty previews of ~53 kB would have queued over 3 MB; with one kept the queue held under 100 kB
    assert queued < 100_000, queued


async def test_previews_of_many_tasks_are_capped_newest_first(tmp_path: Path) -> None:
    client = WorkerClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client)
    for task in range(1, 21):
        buf.put(task, 1, status="active")
        buf.put_preview(task, 1, preview(task))
        buf.put(task, 1, status="completed")
    kept = [
        (t, b)
        for t, b in sqlite3.connect(tmp_path / "u.sqlite").execute(
            "SELECT task_id, body FROM updates WHERE preview = 1 ORDER BY seq"
        )
    ]
    assert [t for t, _b in kept] == list(range(21 - PREVIEW_ROWS_MAX, 21))
    assert buf.pending_count() == 40 + PREVIEW_ROWS_MAX  # every status is still there
    await client.aclose()
    buf.close()


async def test_a_buffer_from_before_previews_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE updates (seq INTEGER PRIMARY KEY, task_id INTEGER NOT NULL, handout INTEGER NOT NULL,"
        " body TEXT NOT NULL);"
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        """INSERT INTO updates VALUES (4, 9, 1, '{"seq":4,"handout":1,"status":"active"}');"""
    )
    old.commit()
    old.close()
    receiver = Receiver()
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(path, client)
    try:
        assert buf.put_preview(9, 1, preview(1)) == 5
        assert await buf.flush(5.0)
    finally:
        receiver.close()
        await client.aclose()
        buf.close()
    assert [(u["seq"], "preview" in u) for _t, u in receiver.updates] == [(4, False), (5, True)]
