"""The durable update buffer against a real HTTP receiver: order, batching, restarts, outages, 409s."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.protocol.worker_client import WorkerClient
from services.worker.buffer import BATCH_MAX_ROWS, Backoff, UpdateBuffer
from tests.support.ports import free_port
from tests.unit.worker.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def send_all_and_close(buf: UpdateBuffer, client: WorkerClient, within: float = 5.0) -> None:
    sender = asyncio.create_task(buf.run_sender())
    async with asyncio.timeout(within):
        await buf.drained()
    sender.cancel()
    await client.aclose()
    buf.close()


async def test_updates_arrive_in_seq_order_in_few_batches(tmp_path: Path, receiver: Receiver):
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.05)
    for i in range(300):
        buf.put(1 if i < 150 else 2, 1, log_lines=[f"line {i}"])
    await send_all_and_close(buf, client)
    seqs = [u["seq"] for _, u in receiver.updates]
    assert seqs == list(range(1, 301))
    assert [t for t, _ in receiver.updates] == [1] * 150 + [2] * 150
    assert [u["log_lines"] for _, u in receiver.updates] == [[f"line {i}"] for i in range(300)]
    assert len(receiver.requests) == 2  # one batch per task run, not one request per update


async def test_a_nul_a_task_printed_is_replaced_before_it_is_stored(tmp_path: Path, receiver: Receiver):
    """The Manager refuses NULs (422, which would drop the task's updates): they become U+FFFD, as undecodable
    bytes do; a backslash followed by `u0000` is ordinary text and stays."""
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    buf.put(1, 1, log_lines=["a\x00b", "\\u0000", "plain"], activity="frame\x00 1")
    buf.put_preview(1, 1, {"frame_path": "/out/f\x00.png"})
    await send_all_and_close(buf, client)
    first, preview = (u for _, u in receiver.updates)
    assert first["log_lines"] == ["a\ufffdb", "\\u0000", "plain"]
    assert first["activity"] == "frame\ufffd 1"
    assert preview["preview"] == {"frame_path": "/out/f\ufffd.png"}


async def test_seq_numbers_and_pending_updates_survive_a_restart(tmp_path: Path, receiver: Receiver):
    client = WorkerClient(receiver.url)
    path = tmp_path / "u.sqlite"
    buf = UpdateBuffer(path, client)
    assert [buf.put(7, 1, activity=f"a{i}") for i in range(3)] == [1, 2, 3]
    async with buf.lock:
        await buf.send_head()
    assert buf.put(7, 1, activity="after") == 4
    buf.close()  # the worker stops with one update not sent

    again = UpdateBuffer(path, client)
    assert again.pending_count() == 1
    assert again.put(7, 1, status="completed") == 5  # numbering goes on, never reused
    assert await again.flush(5.0)
    again.close()
    third = UpdateBuffer(path, client)  # even with an empty queue the counter persists
    assert third.put(8, 1, activity="x") == 6
    third.close()
    await client.aclose()
    assert [u["seq"] for _, u in receiver.updates] == [1, 2, 3, 4, 5]
    assert receiver.updates[-1][1] == {"seq": 5, "handout": 1, "status": "completed"}


async def test_a_fresh_buffer_behind_the_managers_seq_numbers_its_updates_after_it(tmp_path: Path, receiver: Receiver):
    """The worker's data folder was wiped and its credentials kept (the tray keeps them in the keyring): the
    Manager has taken seqs 1-6 from this worker id, and took 1-3 of the new buffer for repeats with a 200,
    losing a completion without a word."""
    receiver.last_seq = 6
    client = WorkerClient(receiver.url)
    path = tmp_path / "u.sqlite"
    buf = UpdateBuffer(path, client)
    buf.put(9, 1, status="active")
    buf.put(9, 1, log_lines=["rendering"])
    buf.put(9, 1, status="completed")
    async with buf.lock:
        assert await buf.send_head()  # answered last_seq 6: renumbered 7-9, not dropped
    assert buf.pending_count() == 3 and buf.last_seq == 9
    assert await buf.flush(5.0)
    assert [(u["seq"], u.get("status")) for _, u in receiver.updates] == [(7, "active"), (8, None), (9, "completed")]
    assert buf.move_past(8) == 0  # seqs this buffer numbered itself: nothing changes
    buf.put(9, 1, activity="x")
    buf.close()
    again = UpdateBuffer(path, client)
    assert again.last_seq == 10  # the new numbering outlives a restart
    assert again.move_past(20) == 1 and again.last_seq == 21  # a sign-on telling of a higher seq
    assert [r.seq for r in again.head()] == [21] and '"seq":21' in again.head()[0].body
    again.close()
    await client.aclose()


async def test_an_outage_is_bridged_with_back_off(tmp_path: Path):
    port = free_port()  # nothing listens here yet: the Manager is down
    client = WorkerClient(f"http://127.0.0.1:{port}", timeout=1.0)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01, backoff=Backoff(base=0.05, cap=0.4))
    for i in range(5):
        buf.put(3, 2, log_lines=[f"during outage {i}"])
    sender = asyncio.create_task(buf.run_sender())
    await asyncio.sleep(0.8)
    assert buf.pending_count() == 5
    assert buf.backoff.failures >= 3
    receiver = Receiver(port)  # the Manager comes back, and first says it is busy
    receiver.fail_next = 2
    try:
        async with asyncio.timeout(5):
            await buf.drained()
    finally:
        sender.cancel()
        receiver.close()
        await client.aclose()
        buf.close()
    assert [u["log_lines"][0] for _, u in receiver.updates] == [f"during outage {i}" for i in range(5)]
    assert len(receiver.requests) == 3  # two 503s, then the batch


async def test_a_stale_task_drops_its_updates_and_tells_the_agent(tmp_path: Path, receiver: Receiver):
    stale: list[tuple[int, int]] = []
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, on_stale=lambda t, a: stale.append((t, a)))
    receiver.stale_tasks.add(5)
    buf.put(4, 1, activity="ok")
    buf.put(5, 3, activity="refused")
    buf.put(5, 3, activity="refused too")
    buf.put(6, 1, activity="ok after")
    assert await buf.flush(5.0)
    await client.aclose()
    buf.close()
    assert stale == [(5, 3)]
    assert [(t, u["activity"]) for t, u in receiver.updates] == [(4, "ok"), (6, "ok after")]


async def test_a_run_taken_back_that_had_completed_offers_its_completion_once(tmp_path: Path, receiver: Receiver):
    """The Manager refused the run's start (a pause took it back) after the run had completed: the completion,
    queued behind, is offered on its own (the Manager forwards it, and the Server keeps the frame) rather than
    dropped with the start, which rendered the frame again after the resume."""
    stale: list[tuple[int, int]] = []
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, on_stale=lambda t, a: stale.append((t, a)))
    receiver.taken_back_tasks.update({5, 7})
    buf.put(5, 3, status="active")
    for i in range(BATCH_MAX_ROWS):  # the start and its log fill one request; the completion comes in the next
        buf.put(5, 3, log_lines=[f"line {i}"])
    buf.put(5, 3, status="completed", activity="done")
    buf.put(7, 1, status="active")  # a run still going when it was taken back: all its updates go, as before
    assert await buf.flush(5.0)
    buf.put(8, 1, status="completed")
    receiver.stale_tasks.add(8)  # a completion refused on its own is not offered again
    assert await buf.flush(5.0)
    await client.aclose()
    buf.close()
    assert [(t, u.get("status"), u.get("activity")) for t, u in receiver.updates] == [(5, "completed", "done")]
    assert stale == [(5, 3), (7, 1), (8, 1)]


async def test_flush_gives_up_after_its_deadline_and_keeps_the_updates(tmp_path: Path):
    client = WorkerClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, backoff=Backoff(base=0.02, cap=0.1))
    buf.put(1, 1, activity="x")
    start = time.monotonic()
    assert not await buf.flush(0.5)
    assert time.monotonic() - start < 1.5
    assert buf.pending_count() == 1
    await client.aclose()
    buf.close()


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    samples: dict[int, list[float]] = {n: [] for n in range(8)}
    for _ in range(400):
        b = Backoff(base=0.1, cap=3.0)
        for n in range(8):
            samples[n].append(b.next_delay())
    for n, delays in samples.items():
        ceiling = min(3.0, 0.1 * 2**n)
        assert max(delays) <= ceiling
        assert len(set(delays)) > 300  # jittered, not a fixed schedule
    means = [statistics.mean(samples[n]) for n in range(6)]
    assert all(later > 1.6 * earlier for earlier, later in itertools.pairwise(means))
    assert statistics.mean(samples[7]) < 1.7  # capped: uniform in [0, 3]
