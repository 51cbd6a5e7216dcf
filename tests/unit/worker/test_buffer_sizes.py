"""Updates larger than a Manager takes: a task printing long lines fast wedged its worker on an endless 413."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.protocol.states import TaskStatus
from services.protocol.worker_client import WorkerClient
from services.worker.buffer import UpdateBuffer
from services.worker.reporter import LOG_CHUNK_MAX_CHARS, TaskReporter
from services.worker.update_sizes import ROW_MAX_CHARS
from tests.unit.worker.receiver import Receiver
from tests.unit.worker.test_buffer import send_all_and_close

MANAGER_LIMIT = 8 * 1024 * 1024


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.max_body = MANAGER_LIMIT
    yield r
    r.close()


async def deliver(buf: UpdateBuffer, client: WorkerClient) -> None:
    await send_all_and_close(buf, client, within=20.0)  # tens of MB of updates


def lines_of(receiver: Receiver) -> list[str]:
    return [line for _, u in receiver.updates for line in u.get("log_lines", [])]


@pytest.mark.parametrize("char", ["x", "é", "\U0001f600", "\x07"])
async def test_an_update_larger_than_a_row_is_stored_as_several_and_arrives_whole(
    tmp_path: Path, receiver: Receiver, char: str
) -> None:
    """1,000 lines of 9,000 characters in one update: 9 MB of JSON as ASCII, up to 108 MB as escaped emoji."""
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    lines = [f"{i} " + char * 9000 for i in range(1000)]
    seq = buf.put(1, 1, log_lines=lines, status="completed", activity="done")
    bodies = [r[0] for r in buf._db.execute("SELECT body FROM updates ORDER BY seq")]
    assert len(bodies) > 1 and all(len(b) <= ROW_MAX_CHARS for b in bodies)
    assert seq == len(bodies)
    await deliver(buf, client)
    assert receiver.too_large == 0
    assert lines_of(receiver) == lines
    statuses = [u.get("status") for _, u in receiver.updates]
    assert statuses[-1] == "completed" and statuses.count("completed") == 1  # after every line
    assert receiver.updates[-1][1]["activity"] == "done"


async def test_a_row_larger_than_the_manager_takes_is_cut_and_delivered(tmp_path: Path, receiver: Receiver) -> None:
    """A buffer written before rows had a size limit held a 12 MB row: it went out as it was, refused for ever."""
    receiver.max_body = 1_000_000  # a Manager whose limit is lower than the default
    client = WorkerClient(receiver.url)
    path = tmp_path / "u.sqlite"
    lines = [f"{i} " + "y" * 9000 for i in range(1300)]
    old = json.dumps({"seq": 1, "handout": 1, "log_lines": lines, "status": "completed"}, separators=(",", ":"))
    buf = UpdateBuffer(path, client, batch_delay=0.01)
    buf._db.execute("INSERT INTO updates (seq, task_id, handout, body) VALUES (1, 5, 1, ?)", (old,))
    buf.close()
    buf = UpdateBuffer(path, client, batch_delay=0.01)
    await deliver(buf, client)
    ((task_id, update),) = receiver.updates
    assert task_id == 5 and update["status"] == "completed"
    got = update["log_lines"]
    left_out = [line for line in got if line.startswith("[tablao]")]
    assert len(left_out) == 1 and "left out here" in left_out[0], left_out
    n = int(left_out[0].split()[1])
    kept = [line for line in got if not line.startswith("[tablao]")]
    assert len(kept) + n == len(lines) and kept[0] == lines[0] and kept[-1] == lines[-1]
    assert receiver.too_large >= 1


async def test_batches_shrink_after_a_413_and_every_row_arrives(tmp_path: Path, receiver: Receiver) -> None:
    receiver.max_body = 600_000
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    lines = [f"{i} " + "z" * 9000 for i in range(400)]
    for i in range(0, 400, 20):
        buf.put(1, 1, log_lines=lines[i : i + 20])  # 20 rows of ~180 kB: one batch of 3.6 MB at first
    await deliver(buf, client)
    assert lines_of(receiver) == lines  # nothing cut: each row fits, only the batches were too large
    assert receiver.too_large >= 1


async def test_a_task_printing_long_lines_fast_is_flushed_by_size(tmp_path: Path, receiver: Receiver) -> None:
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client)
    reporter = TaskReporter(buf, 1, 1, steps_total=1)
    per_chunk = LOG_CHUNK_MAX_CHARS // 10_000
    for i in range(per_chunk * 3):
        reporter.log(f"{i:05d}" + "w" * 9995)
    assert buf.pending_count() == 3  # not one update of 3,000 lines held in memory
    reporter.flush(TaskStatus.COMPLETED)
    await deliver(buf, client)
    assert len(lines_of(receiver)) == per_chunk * 3


async def test_a_row_the_manager_never_takes_is_retried_after_a_back_off_not_in_a_loop(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A proxy taking less than the smallest batch: nothing is left to make smaller, so the usual back-off holds."""
    receiver.max_body = 10_000
    client = WorkerClient(receiver.url)
    buf = UpdateBuffer(tmp_path / "u.sqlite", client, batch_delay=0.01)
    buf.put(1, 1, log_lines=["v" * 9000] * 3)  # 27 kB: under the smallest batch, over the proxy's limit
    sender = asyncio.create_task(buf.run_sender())
    await asyncio.sleep(1.5)
    sender.cancel()
    await client.aclose()
    assert 1 <= receiver.too_large <= 10, receiver.too_large
    assert buf.pending_count() == 1  # kept, to be sent when it can be
    buf.close()
