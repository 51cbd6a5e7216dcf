"""The full logs of tasks that left the Manager long ago are deleted (TABLAO_TASK_LOG_DAYS); nothing else removed
them, and a busy Manager's disk filled over weeks. Held tasks' logs and recent ones stay, and a log goes whole."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from services.manager import task_updates
from services.manager.config import ManagerConfig
from services.manager.core import ManagerCore
from services.manager.log_retention import LogRetention
from services.manager.model import WorkerState
from services.manager.store import logs, old_logs
from services.manager.store.db import connect, transaction
from services.protocol.link import ClaimResponse, UpdateAck, UpdateBatch
from services.protocol.states import TaskStatus
from services.protocol.worker_api import WorkerTaskUpdate
from tests.unit.manager.test_core import claimed, make_core, take, worker
from tests.unit.manager.test_server_link import linked

DAY = 86400.0
T0 = 1_800_000_000.0  # the marks' clock: the test's days, not the wall clock


def run(core: ManagerCore, w: WorkerState, task_id: int, attempt: int = 1, *, done: bool = True) -> None:
    """The task is claimed, handed to `w`, logs a few lines and (`done`) completes: it leaves the Manager."""
    core.add_claimed([claimed(task_id, attempt=attempt)])
    assert take(core, w) == task_id
    handout = core.tasks[task_id].handout
    ups = [
        WorkerTaskUpdate(seq=w.last_seq + 1, handout=handout, status=TaskStatus.ACTIVE, log_lines=[f"start {task_id}"])
    ]
    ups.append(WorkerTaskUpdate(seq=w.last_seq + 2, handout=handout, log_lines=[f"{task_id} run {attempt}"]))
    if done:
        ups.append(WorkerTaskUpdate(seq=w.last_seq + 3, handout=handout, status=TaskStatus.COMPLETED))
    task_updates.apply(core, w, task_id, ups)
    assert (task_id in core.tasks) != done


def sweep(retention: LogRetention, now: float, mono: float | None = None) -> None:
    """A whole pass, as the housekeeping loop makes it (one short transaction a step); the days pass on both
    clocks unless `mono` says otherwise (the wall clock jumped)."""
    steps = 0
    while retention.step(now, now if mono is None else mono):
        steps += 1
        assert steps < 1000


def log_of(conn: sqlite3.Connection, task_id: int) -> list[str]:
    return "".join(text for _id, _handout, text in logs.read_chunks(conn, task_id)).splitlines()


def test_logs_of_tasks_that_left_long_ago_are_deleted_and_the_others_kept(tmp_path: Path) -> None:
    core = make_core(tmp_path)
    busy, w = worker(core, "busy"), worker(core, "w")
    retention = LogRetention(lambda: core.conn, 30)
    run(core, busy, 1, done=False)  # still running here on day 57
    run(core, w, 2)
    run(core, w, 3)
    sweep(retention, T0)  # day 0: a mark
    run(core, w, 4)
    sweep(retention, T0 + 20 * DAY)
    run(core, w, 3, attempt=2)  # a wrangler requeued it: it ran here again on day 25
    sweep(retention, T0 + 25 * DAY)
    sweep(retention, T0 + 31 * DAY)
    assert log_of(core.conn, 2) == []
    assert log_of(core.conn, 1) == ["start 1", "1 run 1"]  # held
    assert log_of(core.conn, 3) == ["start 3", "3 run 1", "start 3", "3 run 2"]  # whole: its newest is 6 days old
    assert log_of(core.conn, 4) == ["start 4", "4 run 1"]  # 11 days old
    run(core, w, 6)  # day 56: the newest chunk of all is not 3's, which would keep it (see the next test)
    sweep(retention, T0 + 56 * DAY)
    assert log_of(core.conn, 3) == log_of(core.conn, 4) == []
    assert log_of(core.conn, 1) == ["start 1", "1 run 1"]  # held still, whatever its age
    report = [WorkerTaskUpdate(seq=busy.last_seq + 1, handout=core.tasks[1].handout, status=TaskStatus.COMPLETED)]
    task_updates.apply(core, busy, 1, report)  # it leaves, with a log 57 days old
    run(core, w, 5)
    sweep(retention, T0 + 57 * DAY)
    assert log_of(core.conn, 1) == []
    assert log_of(core.conn, 5) == ["start 5", "5 run 1"]
    # the marks older than the one the last pass went by are gone
    assert core.conn.execute("SELECT MIN(at) FROM log_marks").fetchone()[0] == T0 + 25 * DAY


def test_a_manager_idle_for_longer_than_logs_are_kept_keeps_its_next_logs(tmp_path: Path) -> None:
    """The newest chunk of all stays: deleted, its id would be used again and the next log taken for an old one."""
    core = make_core(tmp_path)
    w = worker(core, "w")
    retention = LogRetention(lambda: core.conn, 30)
    run(core, w, 1)
    run(core, w, 2)
    sweep(retention, T0)
    sweep(retention, T0 + 40 * DAY)
    assert log_of(core.conn, 1) == [] and log_of(core.conn, 2) == ["start 2", "2 run 1"]
    run(core, w, 3)
    sweep(retention, T0 + 41 * DAY)
    assert log_of(core.conn, 3) == ["start 3", "3 run 1"]
    assert log_of(core.conn, 2) == []  # no longer the newest


def test_a_long_log_goes_in_short_transactions_newest_first(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    for n in range(3):
        logs.append_log(conn, 1, 1, [f"small {n}"])
    big = [logs.append_log(conn, 2, 1, [f"big {n}"]) for n in range(50)]
    logs.append_log(conn, 3, 1, ["newest"])
    up_to = big[-1]
    after: int | None = 0
    left = [len(log_of(conn, 2))]
    while after is not None:
        before = conn.execute("SELECT COUNT(*) FROM task_logs").fetchone()[0]
        with transaction(conn):
            after, _tasks = old_logs.delete_old(conn, up_to, after, scan=1000, budget=20)
        assert before - conn.execute("SELECT COUNT(*) FROM task_logs").fetchone()[0] <= 20
        kept = log_of(conn, 2)
        assert kept == [f"big {n}" for n in range(len(kept))]  # what is left meanwhile is its start
        left.append(len(kept))
    assert log_of(conn, 1) == [] and left == [50, 33, 13, 0]  # the small one first, whole, then the big one
    assert log_of(conn, 3) == ["newest"]


def test_no_query_reads_the_whole_table(tmp_path: Path) -> None:
    conn = connect(tmp_path / "m.sqlite")
    with transaction(conn):
        rows = [(n % 500,) for n in range(5000)]
        conn.executemany("INSERT INTO task_logs (task_id, handout, lines) VALUES (?, 1, 'x')", rows)
        conn.execute("INSERT INTO tasks (id, claim) VALUES (7, '{}')")  # held
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    with transaction(conn):
        old_logs.mark(conn, T0, 600)
        old_logs.newest_chunk_at(conn, T0)
        old_logs.delete_old(conn, 4000, 0, scan=1000, budget=10)
        old_logs.delete_old(conn, 4000, 0, scan=1000, budget=100)  # a task larger than what is left
    conn.set_trace_callback(None)
    plans = {
        sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in statements
        if sql.startswith(("SELECT", "DELETE", "INSERT"))
    }
    assert len(plans) >= 8
    for sql, plan in plans.items():
        assert plan and not any(step.startswith("SCAN") for step in plan), (sql, plan)


def test_an_existing_store_gets_its_marks_table_on_start(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    conn = connect(path)
    conn.execute("DROP TABLE log_marks")  # a store written by a Manager before the marks
    logs.append_log(conn, 1, 1, ["old"])
    conn.close()
    conn = connect(path)
    sweep(LogRetention(lambda: conn, 30), T0)
    assert conn.execute("SELECT at, chunk_id FROM log_marks").fetchall() == [(T0, 1)]
    assert log_of(conn, 1) == ["old"]


@pytest.mark.parametrize(("days", "kept"), [(30, False), (None, True)])
async def test_the_managers_housekeeping_deletes_old_logs_unless_told_to_keep_them(
    tmp_path: Path, days: int | None, kept: bool
) -> None:
    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/manager/updates"):
            seq = UpdateBatch.model_validate_json(request.content).seq
            return httpx.Response(200, content=UpdateAck(last_seq=seq, lease_seconds=60).model_dump_json())
        return httpx.Response(200, content=ClaimResponse(tasks=[], lease_seconds=60).model_dump_json())

    conn = connect(tmp_path / "m.sqlite")
    logs.append_log(conn, 1, 1, ["old"])
    conn.execute("INSERT INTO log_marks (at, chunk_id) VALUES (?, 1)", (time.time() - 40 * DAY,))
    logs.append_log(conn, 2, 1, ["new"])
    conn.close()
    async with linked(tmp_path, server, task_log_days=days) as (core, _config):  # type: ignore[arg-type]
        for _ in range(10 if kept else 250):  # kept: 0.2 s, long after the loop's first pass
            if not logs.has_log(core.conn, 1):
                break
            await asyncio.sleep(0.02)
        assert logs.has_log(core.conn, 1) == kept
        assert log_of(core.conn, 2) == ["new"]


@pytest.mark.parametrize(("value", "days"), [(None, 30), ("7", 7), ("none", None), (" None ", None)])
def test_the_days_are_set_in_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, days: int | None
) -> None:
    if value is not None:
        monkeypatch.setenv("TABLAO_TASK_LOG_DAYS", value)
    config = ManagerConfig.from_env(server_url="http://s", token="t", data_dir=Path("/tmp/unused"))
    assert config.task_log_days == days


@pytest.mark.parametrize("value", ["0", "-5", "lots", "1.5"])
def test_a_bad_number_of_days_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TABLAO_TASK_LOG_DAYS", value)
    with pytest.raises(ValueError, match=f"TABLAO_TASK_LOG_DAYS: .*{value}"):
        ManagerConfig.from_env(server_url="http://s", token="t", data_dir=Path("/tmp/unused"))


def test_a_jump_of_the_wall_clock_ages_no_log(tmp_path: Path) -> None:
    """Found by a review: a clock set a year ahead (a restored VM, a bad time source) took every log for a year
    old, and one pass deleted the logs of tasks finished minutes before."""
    core = make_core(tmp_path)
    w = worker(core, "w")
    retention = LogRetention(lambda: core.conn, 30)
    run(core, w, 1)
    sweep(retention, T0)
    run(core, w, 2)
    run(core, w, 3)
    sweep(retention, T0 + 365 * DAY + 600, mono=T0 + 600)  # ten minutes later, the wall clock a year ahead
    assert log_of(core.conn, 1) == ["start 1", "1 run 1"] and log_of(core.conn, 2) == ["start 2", "2 run 1"]
    sweep(retention, T0 + 396 * DAY, mono=T0 + 31 * DAY)  # a month on both clocks after the jump: 1 and 2 go
    assert log_of(core.conn, 1) == log_of(core.conn, 2) == []
    assert log_of(core.conn, 3) == ["start 3", "3 run 1"]  # the newest chunk of all stays
