"""A job's task counters stay true when two transactions change tasks of one job at once (two Servers on one
PostgreSQL database, or two request threads of one Server): neither undoes the other's count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.jobs import JobSubmission
from services.protocol.states import Role, TaskStatus
from services.server.db.engine import make_engine
from services.server.db.migrate import upgrade
from services.server.db.tables import JobRow, TaskRow
from services.server.store import jobs
from services.server.store.sessions import open_sessions
from services.server.store.tasks import set_task_status
from tests.support.databases import database_url

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["sqlite", "postgres"])
def writers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database_url(str(request.param), tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        _, write_sessions = open_sessions(engine)
        yield write_sessions
        engine.dispose()


def test_two_transactions_handing_out_tasks_of_one_job_both_count(writers: sessionmaker[Session]) -> None:
    with writers() as s:
        sub = JobSubmission(name="counts", type="exec", settings={"command": ["true"], "frames": "1-3"})
        job_id = jobs.submit(s, sub, jobs.Actor("admin", Role.ADMIN)).id
        s.commit()
        ids = list(s.scalars(select(TaskRow.id).where(TaskRow.job_id == job_id).order_by(TaskRow.id)))
        sqlite = s.get_bind().dialect.name == "sqlite"
    if sqlite:
        # SQLite has one writer at a time: B begins after A's commit, as it would in the Server
        for task_id in ids[:2]:
            with writers() as s:
                set_task_status(s, s.get_one(TaskRow, task_id), TaskStatus.ASSIGNED, actor="test")
                s.commit()
    else:
        a, b = writers(), writers()
        b_task = b.get_one(TaskRow, ids[1])
        b_job = b.get_one(JobRow, job_id)  # B reads the job before A's change
        assert b_job.tasks_active == 0
        set_task_status(a, a.get_one(TaskRow, ids[0]), TaskStatus.ASSIGNED, actor="test")
        a.commit()
        set_task_status(b, b_task, TaskStatus.ASSIGNED, actor="test", job=b_job)
        b.commit()
        a.close()
        b.close()
    with writers() as s:
        job = s.get_one(JobRow, job_id)
        assert (job.tasks_active, job.status) == (2, "active")


def test_a_status_change_reads_the_task_again_once_it_holds_the_job(writers: sessionmaker[Session]) -> None:
    """B loaded an assigned task; A canceled the job and committed; B's change must start from canceled (which may
    not become active), not from the assigned it read, or the cancel is counted twice and overwritten."""
    from services.protocol.jobs import JobAction
    from services.server.states.tasks import IllegalTaskTransition

    with writers() as s:
        sub = JobSubmission(name="counts", type="exec", settings={"command": ["true"], "frames": "1-2"})
        job_id = jobs.submit(s, sub, jobs.Actor("admin", Role.ADMIN)).id
        s.commit()
        ids = list(s.scalars(select(TaskRow.id).where(TaskRow.job_id == job_id).order_by(TaskRow.id)))
        for task_id in ids:
            set_task_status(s, s.get_one(TaskRow, task_id), TaskStatus.ASSIGNED, actor="test")
        s.commit()
        if s.get_bind().dialect.name == "sqlite":
            pytest.skip("SQLite has one writer at a time: B would begin after A's commit")
    with writers() as b:
        b_task, b_job = b.get_one(TaskRow, ids[0]), b.get_one(JobRow, job_id)  # B reads before A's change
        with writers() as a:
            admin = jobs.Actor("admin", Role.ADMIN)
            jobs.apply_action(a, jobs.get(a, job_id, for_update=True), JobAction.CANCEL, admin)
            a.commit()
        with pytest.raises(IllegalTaskTransition):
            set_task_status(b, b_task, TaskStatus.ACTIVE, actor="test", job=b_job)
        b.rollback()
    with writers() as s:
        job = s.get_one(JobRow, job_id)
        assert (job.tasks_canceled, job.tasks_completed, job.tasks_active, job.status) == (2, 0, 0, "canceled")
