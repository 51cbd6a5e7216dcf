"""Jobs stored as they are compiled, and the sweep of jobs left under construction, in process on a real SQLite
file and a real PostgreSQL database (store/submission.py, store/task_writer.py, store/orphans.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.common import utcnow
from services.protocol.jobs import JobAction, JobSubmission
from services.protocol.states import JobStatus, Role
from services.server.db.engine import make_engine
from services.server.db.migrate import upgrade
from services.server.db.tables import EventRow, JobLogRow, JobRow, TaskDependencyRow, TaskRow
from services.server.store import jobs, orphans, submission
from services.server.store.errors import Conflict
from services.server.store.sessions import open_sessions
from tests.support.databases import database_url

pytestmark = pytest.mark.timeout(300)

ADMIN = jobs.Actor("admin", Role.ADMIN)


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, sessionmaker[Session]]]:
    with database_url(str(request.param), tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield open_sessions(engine)
        engine.dispose()


def render(frames: str, *, preview: bool = True, chunk: int = 1) -> JobSubmission:
    settings = {"blendfile": "/p/s.blend", "frames": frames, "chunk_size": chunk, "output_path": "/r/f_####",
                "preview_video": preview}  # fmt: skip
    return JobSubmission(name="stream", type="blender-render", settings=settings)


def submit(sessions: tuple[Any, sessionmaker[Session]], sub: JobSubmission, **kw: Any) -> JobRow:
    reads, writes = sessions
    return submission.submit(
        reads, writes, sub, ADMIN, submission.Limits(), lambda s, j: contextlib.nullcontext(), **kw
    )


def dependencies(writes: sessionmaker[Session], job_id: int) -> set[tuple[int, int]]:
    """(task index, index of the task it waits for) of a job, from the rows."""
    with writes() as s:
        index = {t: i for t, i in s.execute(select(TaskRow.id, TaskRow.index).where(TaskRow.job_id == job_id))}
        rows = s.execute(select(TaskDependencyRow.task_id, TaskDependencyRow.depends_on_id)).all()
    return {(index[t], index[d]) for t, d in rows if t in index}


def test_a_job_stored_in_chunks_keeps_its_dependencies_across_them(
    sessions: tuple[Any, sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submission, "CHUNK", 7)  # chunks end inside the job
    monkeypatch.setattr(submission, "SMALL_JOB", 4)  # not stored in one transaction as a small job
    monkeypatch.setattr(submission, "DEPENDENCY_SLICE", 5)  # the preview's rows go in several transactions
    monkeypatch.setattr(submission, "CHUNK_PAUSE", 0)
    job = submit(sessions, render("1-30"))
    assert job.status == JobStatus.QUEUED and job.tasks_total == 31
    _, writes = sessions
    assert dependencies(writes, job.id) == {(30, i) for i in range(30)}
    with writes() as s:
        tasks = s.scalars(select(TaskRow).where(TaskRow.job_id == job.id).order_by(TaskRow.index)).all()
        assert [t.index for t in tasks] == list(range(31))
        assert [t.deps_pending for t in tasks] == [0] * 30 + [30]
        assert tasks[5].name == "render frame 6" and tasks[30].name == "preview-video"


def test_openjd_steps_stored_in_chunks_wait_for_the_right_tasks(
    sessions: tuple[Any, sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submission, "CHUNK", 3)
    monkeypatch.setattr(submission, "SMALL_JOB", 1)  # the first chunk, of 2 tasks, ends inside step A
    monkeypatch.setattr(submission, "CHUNK_PAUSE", 0)
    run = {"actions": {"onRun": {"command": "echo"}}}
    template = {
        "specificationVersion": "jobtemplate-2023-09", "name": "two steps",
        "steps": [
            {"name": "A", "script": run,
             "parameterSpace": {"taskParameterDefinitions": [{"name": "X", "type": "INT", "range": "1-5"}]}},
            {"name": "B", "dependencies": [{"dependsOn": "A"}],
             "parameterSpace": {"taskParameterDefinitions": [{"name": "Y", "type": "INT", "range": "1-4"}]},
             "script": run},
        ],
    }  # fmt: skip
    job = submit(sessions, JobSubmission(name="ojd", type="openjd", settings={"template": template}))
    assert job.tasks_total == 9
    _, writes = sessions
    assert dependencies(writes, job.id) == {(b, a) for b in range(5, 9) for a in range(5)}


def stale(writes: sessionmaker[Session], job_id: int, seconds: float = 3600) -> None:
    with writes() as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(updated=utcnow() - timedelta(seconds=seconds)))
        s.commit()


def half_written(sessions: tuple[Any, sessionmaker[Session]]) -> int:
    """A job of 41 tasks with all its rows, put back under construction as a killed Server leaves it."""
    job = submit(sessions, render("1-40"))
    _, writes = sessions
    with writes() as s:
        s.execute(update(JobRow).where(JobRow.id == job.id).values(status=JobStatus.UNDER_CONSTRUCTION.value))
        s.commit()
    return job.id


def sweep_until_done(writes: sessionmaker[Session], **kw: Any) -> int:
    steps = 0
    while True:
        with writes() as s:
            more = orphans.sweep(s, **kw)
            s.commit()
        if not more:
            return steps
        steps += 1


def count(writes: sessionmaker[Session], table: Any, **where: int) -> int:
    with writes() as s:
        stmt = select(func.count()).select_from(table)
        for k, v in where.items():
            stmt = stmt.where(getattr(table, k) == v)
        return int(s.scalar(stmt) or 0)


def test_sweep_removes_a_stale_job_under_construction_in_batches(
    sessions: tuple[Any, sessionmaker[Session]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orphans, "TASK_BATCH", 4)
    monkeypatch.setattr(orphans, "DEPENDENCY_BATCH", 6)  # the preview's 40 rows take several batches
    _, writes = sessions
    keep = submit(sessions, render("1-3")).id
    orphan = half_written(sessions)
    builds = orphans.Builds()
    assert sweep_until_done(writes, bound=60, builds=builds) == 0  # fresh: its writer may be alive
    stale(writes, orphan)
    with writes() as s:  # the first step only marks it, and the job log says why
        assert orphans.sweep(s, bound=60, builds=builds)
        s.commit()
    with writes() as s:
        job = s.get_one(JobRow, orphan)
        assert job.activity == orphans.REMOVING
        entries = s.scalars(select(JobLogRow.message).where(JobLogRow.job_id == orphan)).all()
        assert any(m.startswith("removed: left under construction") for m in entries), entries
    steps = sweep_until_done(writes, bound=60, builds=builds)
    assert steps >= 41 // 4 + 40 // 6  # in batches, not in one go
    assert count(writes, JobRow, id=orphan) == 0 and count(writes, TaskRow, job_id=orphan) == 0
    assert count(writes, JobLogRow, job_id=orphan) == 0
    assert count(writes, TaskRow, job_id=keep) == 4 and dependencies(writes, keep) == {(3, i) for i in range(3)}
    with writes() as s:
        assert s.scalars(select(EventRow.data).where(EventRow.type == "job-deleted")).all() == [{"id": orphan}]


def test_sweep_leaves_jobs_this_process_writes_and_on_sqlite_removes_older_ones_at_once(
    sessions: tuple[Any, sessionmaker[Session]],
) -> None:
    _, writes = sessions
    mine, other = half_written(sessions), half_written(sessions)
    stale(writes, mine)
    builds = orphans.Builds()
    with builds.writing(mine):
        # the only Server of the database, started after both were last written: no one else can be writing
        sweep_until_done(writes, bound=3600, builds=builds, started=utcnow())
        assert count(writes, JobRow, id=mine) == 1 and count(writes, JobRow, id=other) == 0
    sweep_until_done(writes, bound=60, builds=builds)
    assert count(writes, JobRow, id=mine) == 0


def _sweep_takes_it_for_an_orphan(other: Session, job_id: int) -> None:
    other.execute(update(JobRow).where(JobRow.id == job_id).values(activity=orphans.REMOVING))


def _wrangler_cancels_it(other: Session, job_id: int) -> None:
    jobs.apply_action(other, jobs.get(other, job_id, for_update=True), JobAction.CANCEL, ADMIN)


@pytest.mark.parametrize("meanwhile", [_sweep_takes_it_for_an_orphan, _wrangler_cancels_it])
def test_a_writer_stops_at_its_next_chunk_and_leaves_nothing(
    sessions: tuple[Any, sessionmaker[Session]],
    monkeypatch: pytest.MonkeyPatch,
    meanwhile: Callable[[Session, int], None],
) -> None:
    """After its first chunk, another Server's sweep takes the job for an orphan, or a wrangler cancels it."""
    monkeypatch.setattr(submission, "CHUNK", 10)
    monkeypatch.setattr(submission, "SMALL_JOB", 5)  # 35 tasks: not a small job stored in one transaction
    monkeypatch.setattr(submission, "CHUNK_PAUSE", 0)
    _, writes = sessions
    calls = []
    real_heartbeat = submission._heartbeat

    def heartbeat(session: Session, job_id: int, tasks: int | None = None) -> None:
        calls.append(job_id)
        if len(calls) == 2:
            with writes() as other:  # (this session has not begun yet: nothing is locked)
                meanwhile(other, job_id)
                other.commit()
        real_heartbeat(session, job_id, tasks)

    monkeypatch.setattr(submission, "_heartbeat", heartbeat)
    with pytest.raises(Conflict, match="canceled or removed while its tasks were being stored"):
        submit(sessions, render("1-35"))
    assert count(writes, JobRow) == 0 and count(writes, TaskRow) == 0 and count(writes, TaskDependencyRow) == 0


def test_a_job_canceled_while_being_stored_is_removed_not_kept_with_part_of_its_tasks(
    sessions: tuple[Any, sessionmaker[Session]],
) -> None:
    """Its writer killed (another Server), a wrangler's cancel made it canceled with the tasks stored so far, for
    good; a requeue then ran those and "completed" a job of 101 of its 20,000 frames."""
    _, writes = sessions
    orphan = half_written(sessions)  # written a moment ago: the sweep alone would wait for the bound
    with writes() as s:
        jobs.apply_action(s, jobs.get(s, orphan, for_update=True), JobAction.CANCEL, ADMIN)
        s.commit()
    with writes() as s:
        job = s.get_one(JobRow, orphan)
        assert (job.status, job.activity) == (JobStatus.UNDER_CONSTRUCTION, orphans.CANCELED_UNBUILT)
        entries = s.scalars(select(JobLogRow.message).where(JobLogRow.job_id == orphan)).all()
        assert any("canceled by admin while its tasks were being stored" in m for m in entries), entries
        for action in (JobAction.REQUEUE, JobAction.REQUEUE_FAILED, JobAction.RESUME):
            with pytest.raises(Conflict):
                jobs.apply_action(s, job, action, ADMIN)
    sweep_until_done(writes, bound=3600, builds=orphans.Builds())
    assert count(writes, JobRow, id=orphan) == 0 and count(writes, TaskRow, job_id=orphan) == 0


def keyed(writes: sessionmaker[Session], job_id: int, key: str = "k") -> None:
    with writes() as s:
        s.execute(update(JobRow).where(JobRow.id == job_id).values(submit_key=key, submit_digest="d"))
        s.commit()


def take_over(writes: sessionmaker[Session], job_id: int, **kw: Any) -> bool:
    args: dict[str, Any] = {"submitter": "admin", "key": "k", "bound": 60, "builds": orphans.Builds()} | kw
    with writes() as s:
        claimed = orphans.take_over(s, job_id, **args)
        s.commit()
    return claimed


def test_a_repeat_takes_over_only_a_job_whose_writer_is_silent_past_the_bound(
    sessions: tuple[Any, sessionmaker[Session]],
) -> None:
    _, writes = sessions
    orphan = half_written(sessions)
    keyed(writes, orphan)
    stale(writes, orphan, seconds=30)
    assert not take_over(writes, orphan), "written 30 s ago: its writer may be alive and slow"
    stale(writes, orphan, seconds=90)
    builds = orphans.Builds()
    with builds.writing(orphan):
        assert not take_over(writes, orphan, builds=builds), "this process writes it: alive"
    assert not take_over(writes, orphan, key="other"), "another submission's job"
    assert not take_over(writes, orphan, submitter="someone"), "another user's job"
    assert take_over(writes, orphan)
    assert not take_over(writes, orphan), "taken over once: a second repeat does not claim it again"
    with writes() as s:
        job = s.get_one(JobRow, orphan)
        assert (job.activity, job.submit_key) == (orphans.REMOVING, None)  # its key is free for the repeat
    # its writer, were it alive after all, stops at its next chunk; the sweep removes it at once, bound or not
    with writes() as s, pytest.raises(Conflict):
        submission._heartbeat(s, orphan)
    sweep_until_done(writes, bound=3600, builds=orphans.Builds())
    assert count(writes, JobRow, id=orphan) == 0 and count(writes, TaskRow, job_id=orphan) == 0


def test_on_sqlite_a_job_written_before_this_server_started_is_taken_over_at_once(tmp_path: Path) -> None:
    with database_url("sqlite", tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        sessions = open_sessions(engine)
        _, writes = sessions
        orphan = half_written(sessions)
        keyed(writes, orphan)
        assert not take_over(writes, orphan, started=utcnow() - timedelta(seconds=5))
        assert take_over(writes, orphan, started=utcnow() + timedelta(seconds=1))
        engine.dispose()


def test_a_repeat_takes_over_a_job_a_sweep_is_already_removing(sessions: tuple[Any, sessionmaker[Session]]) -> None:
    """At a restart on SQLite the sweep often finds the orphan first: the repeat got 409s until it had removed all
    of it. Written a moment ago, so by silence alone it would not be taken over."""
    _, writes = sessions
    orphan = half_written(sessions)
    keyed(writes, orphan)
    with writes() as s:
        s.get_one(JobRow, orphan).activity = orphans.REMOVING  # the sweep's mark, its key still held
        s.commit()
    assert take_over(writes, orphan)
    assert not take_over(writes, orphan), "once"
    with writes() as s:
        s.get_one(JobRow, orphan).activity = orphans.CANCELED_UNBUILT
        s.get_one(JobRow, orphan).submit_key = "k"
        s.commit()
    assert not take_over(writes, orphan), "a wrangler's cancel: the repeat must not build it again"
