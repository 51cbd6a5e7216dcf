"""The Server's worker history and wrangler changes, in process on real SQLite and PostgreSQL databases:
samples thinned as they arrive and pruned after a day, tasks per minute, and what a Manager's report confirms
of a status request or a tag edit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.common import utcnow
from services.protocol.farm import Utilisation
from services.protocol.link import UpdateAck, UpdateBatch, WorkerReport
from services.protocol.states import WorkerStatus, WorkerStatusRequest
from services.server.db.engine import make_engine
from services.server.db.migrate import upgrade
from services.server.db.tables import FarmMinuteRow, ForgottenWorkerRow, ManagerRow, WorkerRow, WorkerSampleRow
from services.server.store import farm, link, worker_admin, worker_history
from services.server.store.errors import Conflict
from services.server.store.sessions import open_sessions
from tests.support.databases import database_url

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=["sqlite", "postgres"])
def writers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database_url(str(request.param), tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        _, write_sessions = open_sessions(engine)
        yield write_sessions
        engine.dispose()


def _sample(at: datetime, cpu: float = 50.0, gpu: float | None = None) -> Utilisation:
    return Utilisation(time=at, cpu_percent=cpu, memory_percent=20.0, memory_used_mb=100.0, gpu_percent=gpu)


def _report(worker_id: str, **extra: object) -> WorkerReport:
    fields: dict[str, object] = {"id": worker_id, "name": "w1", "platform": "linux", "task_types": ["exec"],
                                 "tags": [], "status": WorkerStatus.AWAKE, **extra}  # fmt: skip
    return WorkerReport.model_validate(fields)


class Farm:
    def __init__(self, writers: sessionmaker[Session]) -> None:
        self.writers = writers
        self.seq = 0
        with writers() as s:
            self.manager_id = farm.create_manager(s, "m1")[0].id
            s.commit()

    def push(self, *reports: WorkerReport, sample_seconds: float = 30.0) -> UpdateAck:
        self.seq += 1
        with self.writers() as s:
            manager = s.get_one(ManagerRow, self.manager_id)
            ack = link.apply_batch(s, manager, UpdateBatch(seq=self.seq, workers=list(reports)), 60.0, sample_seconds)
            s.commit()
        return ack

    def count(self, table: type) -> int:
        with self.writers() as s:
            return int(s.scalar(select(func.count()).select_from(table)) or 0)


def test_samples_are_thinned_as_they_come_and_pruned_after_a_day(writers: sessionmaker[Session]) -> None:
    f = Farm(writers)
    start = utcnow() - timedelta(hours=23)
    # a sample every 10 s for 2 minutes: kept at most one per 30 s
    for i in range(13):
        f.push(_report("w1", utilisation=_sample(start + timedelta(seconds=10 * i), cpu=float(i))))
    assert f.count(WorkerSampleRow) == 5  # at 0, 30, 60, 90 and 120 s
    recent = utcnow() - timedelta(minutes=5)
    # given in another time zone: kept in UTC, so `since` finds it
    f.push(_report("w1", utilisation=_sample(recent.astimezone(timezone(timedelta(hours=5))), cpu=99.0, gpu=40.0)))
    # wrong clocks: two days old, or an hour ahead; neither is kept (a future row would never be pruned)
    f.push(_report("w1", utilisation=_sample(utcnow() - timedelta(days=2), cpu=1.0)))
    f.push(_report("w1", utilisation=_sample(utcnow() + timedelta(hours=1), cpu=2.0)))
    assert f.count(WorkerSampleRow) == 6
    with writers() as s:
        everything = worker_history.history(s, "w1", start - timedelta(hours=1), limit=100)
        newest_two = worker_history.history(s, "w1", start - timedelta(hours=1), limit=2)
        last_hour = worker_history.history(s, "w1", utcnow() - timedelta(hours=1), limit=100)
    assert [p.cpu_percent for p in everything.samples] == [0.0, 3.0, 6.0, 9.0, 12.0, 99.0]
    assert [p.cpu_percent for p in newest_two.samples] == [12.0, 99.0]
    assert [(p.cpu_percent, p.gpu_percent) for p in last_hour.samples] == [(99.0, 40.0)]
    assert abs((last_hour.samples[0].time - recent).total_seconds()) < 1

    # the sweep drops what is older than the time kept, and only that (22 h here, so the 23 h old ones go)
    with writers() as s:
        s.add(FarmMinuteRow(minute=start.replace(second=0, microsecond=0), manager_id=f.manager_id, tasks_completed=3))
        s.add(ForgottenWorkerRow(worker_id="gone", manager_id=f.manager_id, time=start))
        s.commit()
        assert worker_history.prune(s, 22 * 3600.0) == 5 + 1 + 1
        s.commit()
    assert f.count(WorkerSampleRow) == 1 and f.count(FarmMinuteRow) == 0 and f.count(ForgottenWorkerRow) == 0


def test_tasks_per_minute_counts_whole_minutes_per_manager(writers: sessionmaker[Session]) -> None:
    f = Farm(writers)
    if utcnow().second >= 55:
        time.sleep(6)  # all of this inside one minute
    with writers() as s:
        other = farm.create_manager(s, "m2")[0].id
        minute = utcnow().replace(second=0, microsecond=0)
        for ago, manager, n in ((1, f.manager_id, 20), (2, other, 10), (4, f.manager_id, 5), (7, other, 1000)):
            s.add(FarmMinuteRow(minute=minute - timedelta(minutes=ago), manager_id=manager, tasks_completed=n))
        worker_history.count_completed(s, f.manager_id, 7)  # this minute: still filling, not counted yet
        worker_history.count_completed(s, f.manager_id, 3)
        s.commit()
        assert worker_history.tasks_per_minute(s, 5) == (20 + 10 + 5) / 5
        assert s.get_one(FarmMinuteRow, (minute, f.manager_id)).tasks_completed == 10


def test_a_status_request_is_repeated_until_the_manager_reports_it_done(writers: sessionmaker[Session]) -> None:
    f = Farm(writers)
    f.push(_report("w1"))
    with writers() as s:
        row = worker_admin.request_status(s, "w1", WorkerStatusRequest.RESTART, lazy=False)
        assert row.status_request_id == 1
        s.commit()
    ack = f.push(_report("w1"))  # a report from before the Manager had the request
    assert [(r.worker_id, r.status, r.lazy, r.request_id) for r in ack.worker_requests] == [
        ("w1", WorkerStatusRequest.RESTART, False, 1)
    ]
    ack = f.push(_report("w1", status_requested=WorkerStatusRequest.RESTART, request_id=1))  # held, not done
    assert len(ack.worker_requests) == 1
    f.push(_report("w1", request_id=1))  # done: the Manager holds no request any more
    assert f.push(_report("w1", request_id=1)).worker_requests == []
    with writers() as s:
        assert s.get_one(WorkerRow, "w1").status_requested is None


def test_edited_tags_win_over_older_reports_and_forgetting_needs_offline(writers: sessionmaker[Session]) -> None:
    f = Farm(writers)
    f.push(_report("w1", tags=["cpu"]))
    with writers() as s:
        worker_admin.set_tags(s, "w1", ["gpu"])
        s.commit()
    ack = f.push(_report("w1", tags=["cpu"]))
    assert [(t.worker_id, t.tags) for t in ack.worker_tags] == [("w1", ["gpu"])]
    with writers() as s:
        assert s.get_one(WorkerRow, "w1").tags == ["gpu"]
    assert f.push(_report("w1", tags=["gpu"])).worker_tags == []

    with writers() as s, pytest.raises(Conflict):
        worker_admin.forget(s, "w1")
    f.push(_report("w1", tags=["gpu"], status=WorkerStatus.OFFLINE, utilisation=_sample(datetime.now(UTC))))
    with writers() as s:
        worker_admin.forget(s, "w1")
        s.commit()
    ack = f.push(_report("w1", tags=["gpu"], status=WorkerStatus.OFFLINE))
    assert ack.forget_worker_ids == ["w1"]
    assert f.count(WorkerRow) == 0 and f.count(WorkerSampleRow) == 0, "a report does not bring it back"
