"""The Manager's preview store: the latest per job and per worker survive, older ones go, unsent ones wait."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.manager.store import previews
from services.manager.store.db import connect, transaction
from services.protocol.preview import Preview, PreviewReport


def report(job: int, worker: str, frame: int) -> PreviewReport:
    preview = Preview(content_type="image/jpeg", width=8, height=8, data=b"\xff\xd8" + bytes([frame]),
                      frame_path=f"/out/{job}/frame_{frame:04d}.png")  # fmt: skip
    return PreviewReport(task_id=job * 100 + frame, job_id=job, worker_id=worker, worker_name=worker,
                         time=datetime.now(UTC), preview=preview)  # fmt: skip


def keep(conn: sqlite3.Connection, *reports: PreviewReport) -> None:
    with transaction(conn):
        for r in reports:
            previews.keep(conn, r)


def test_latest_per_job_and_per_worker_are_kept_across_a_restart(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    # worker a renders job 1 then job 2; worker b renders job 1 last
    keep(conn, report(1, "a", 1), report(1, "a", 2), report(2, "a", 3), report(1, "b", 4))
    assert conn.execute("SELECT count(*) FROM previews").fetchone()[0] == 2  # frames 3 and 4
    conn.close()
    conn = connect(tmp_path / "m.sqlite")
    job1, job2 = previews.latest_of_job(conn, 1), previews.latest_of_job(conn, 2)
    assert job1 is not None and job1.preview.frame_path == "/out/1/frame_0004.png"
    assert job2 is not None and job2.preview.frame_path == "/out/2/frame_0003.png"
    a, b = previews.latest_of_worker(conn, "a"), previews.latest_of_worker(conn, "b")
    assert a is not None and a.job_id == 2 and b is not None and b.job_id == 1
    assert previews.latest_of_job(conn, 3) is None
    conn.close()


def test_unsent_ones_wait_until_marked_sent_and_stay_the_latest(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    keep(conn, report(1, "a", 1), report(2, "b", 2))
    waiting = previews.unsent(conn, 16)
    assert [r.task_id for _i, r in waiting] == [101, 202]
    with transaction(conn):
        previews.mark_sent(conn, [waiting[0][0]])
    assert [r.task_id for _i, r in previews.unsent(conn, 16)] == [202]
    assert previews.latest_of_job(conn, 1) is not None  # sent, still the job's latest
    keep(conn, report(1, "a", 5))  # a newer one replaces it and waits in turn
    assert [r.task_id for _i, r in previews.unsent(conn, 16)] == [202, 105]
    assert previews.has_unsent(conn)
    conn.close()


def test_old_sent_previews_are_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(previews, "KEEP_MAX", 5)
    conn = connect(tmp_path / "m.sqlite")
    for job in range(1, 11):
        keep(conn, report(job, f"w{job}", 1))
        with transaction(conn):
            previews.mark_sent(conn, [i for i, _r in previews.unsent(conn, 16)])
    assert conn.execute("SELECT count(*) FROM previews").fetchone()[0] == 5
    assert previews.latest_of_job(conn, 10) is not None and previews.latest_of_job(conn, 1) is None
    conn.close()
