"""The durable update buffer: frozen batches keep their seq and content; coalescing loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.manager.store import outbox
from services.manager.store.db import connect
from services.protocol.link import TaskUpdate
from services.protocol.states import TaskStatus as S


def up(task_id: int, status: S | None = None, tail: list[str] | None = None, attempt: int = 1) -> TaskUpdate:
    return TaskUpdate(task_id=task_id, attempt=attempt, status=status, log_tail=tail or [])


def test_a_frozen_batch_is_resent_unchanged_after_a_restart(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    outbox.enqueue(conn, [up(1, S.ACTIVE), up(2, S.ACTIVE)])
    seq, first = outbox.next_batch(conn, 100)  # type: ignore[misc]
    outbox.enqueue(conn, [up(3, S.ACTIVE)])  # arrives while the batch is in flight
    conn.close()
    conn = connect(tmp_path / "m.sqlite")
    again = outbox.next_batch(conn, 100)
    assert again == (seq, first)
    outbox.acknowledge(conn, seq)
    nxt = outbox.next_batch(conn, 100)
    assert nxt is not None and nxt[0] == seq + 1 and [u.task_id for u in nxt[1]] == [3]
    outbox.acknowledge(conn, seq + 1)
    assert outbox.next_batch(conn, 100) is None


def test_coalesce_merges_progress_into_the_final_status_but_keeps_soft_failures() -> None:
    merged = outbox.coalesce(
        [
            up(1, S.ACTIVE, ["a"]),
            up(2, S.ACTIVE),
            up(1, None, ["b"]),
            up(1, S.COMPLETED, ["c"]),
            up(2, S.SOFT_FAILED),
            up(2, S.ACTIVE),
            up(3, S.ACTIVE, attempt=1),
            up(3, S.COMPLETED, attempt=2),
        ]
    )
    assert [(u.task_id, u.status, u.log_tail) for u in merged] == [
        (1, S.COMPLETED, ["a", "b", "c"]),
        (2, S.SOFT_FAILED, []),
        (2, S.ACTIVE, []),
        (3, S.ACTIVE, []),
        (3, S.COMPLETED, []),
    ]
    long = outbox.coalesce([up(1, None, [str(i) for i in range(15)]), up(1, None, [str(i) for i in range(15, 30)])])
    assert long[0].log_tail == [str(i) for i in range(10, 30)]


def test_resync_renumbers_after_the_servers_count(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    hello = outbox.new_seq(conn)
    outbox.enqueue(conn, [up(1, S.ACTIVE)])
    assert hello == 1
    outbox.resync(conn, 41)  # the Server already knew this Manager up to 41
    got = outbox.next_batch(conn, 100)
    assert got is not None and got[0] == 42 and [u.task_id for u in got[1]] == [1]


def test_a_long_queue_is_merged_to_about_a_row_per_task_and_sends_what_it_would_have(tmp_path: Path) -> None:
    """While the Server is away every worker update was a row of its own (with its log tail): 300 requests of
    a worker printing long lines made 58 MB of queue."""
    conn = connect(tmp_path / "m.sqlite")
    queued = [up(t, S.ACTIVE if i == 0 else None, [f"{t}:{i}:" + "x" * 1000]) for i in range(300) for t in (1, 2, 3)]
    queued += [up(2, S.COMPLETED, ["done"]), up(3, S.SOFT_FAILED), up(3, S.ACTIVE, ["again"])]
    outbox.enqueue(conn, queued)
    assert outbox.compact(conn, at=len(queued)) is None  # under the mark: untouched
    assert outbox.pending_count(conn) == len(queued)
    assert outbox.compact(conn, at=100) == (len(queued), 4)
    outbox.enqueue(conn, [up(1, None, ["later"])])  # queued after the merge: still after it
    assert outbox.pending_count(conn) == 5
    _seq, sent = outbox.next_batch(conn, 1000)  # type: ignore[misc]
    assert sent == outbox.coalesce([*queued, up(1, None, ["later"])])
    assert [(u.task_id, u.status) for u in sent] == [(1, S.ACTIVE), (2, S.COMPLETED), (3, S.SOFT_FAILED), (3, S.ACTIVE)]
    assert sent[0].log_tail[-1] == "later" and sent[1].log_tail[-1] == "done"


def test_one_merge_reads_a_bounded_amount_of_the_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a review: 10,000 queued rows of long log tails held the Manager's loop 2.9 s in one merge."""
    monkeypatch.setattr(outbox, "COMPACT_BYTES", 50_000)
    conn = connect(tmp_path / "m.sqlite")
    queued = [up(1, None, [f"{i}:" + "x" * 1000]) for i in range(300)]  # about 1 KB each
    outbox.enqueue(conn, queued)
    read, left = outbox.compact(conn, at=10)  # type: ignore[misc]
    assert 45 < read < 55 and left == 1  # the first ~50 rows, merged into one
    assert 240 < outbox.pending_count(conn) < 260
    _seq, sent = outbox.next_batch(conn, 1000)  # type: ignore[misc]
    assert sent == outbox.coalesce(queued)  # nothing lost or out of order
