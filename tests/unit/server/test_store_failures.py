"""store.failures in process on SQLite and PostgreSQL: jobs waiting on a job that failed or was canceled are
told (only those that wait for it: ids that merely look alike in the JSON text are not), and released."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.jobs import JobAction, JobSubmission
from services.protocol.states import Role
from services.server.db.engine import make_engine
from services.server.db.migrate import upgrade
from services.server.db.tables import JobRow
from services.server.store import failures, jobs
from services.server.store.errors import Invalid
from services.server.store.sessions import open_sessions
from tests.support.databases import database_url

pytestmark = pytest.mark.timeout(90)
ADMIN = jobs.Actor("admin", Role.ADMIN)


@pytest.fixture(params=["sqlite", "postgres"])
def writers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    with database_url(str(request.param), tmp_path) as url:
        engine = make_engine(url)
        upgrade(engine)
        _, write_sessions = open_sessions(engine)
        yield write_sessions
        engine.dispose()


def submit(s: Session, name: str, depends_on: list[int] | None = None) -> JobRow:
    sub = JobSubmission(name=name, type="exec", settings={"command": ["true"]}, depends_on=depends_on or [])
    return jobs.submit(s, sub, ADMIN)


def test_only_the_jobs_that_wait_for_a_canceled_job_are_told_and_released(writers: sessionmaker[Session]) -> None:
    with writers() as s:
        first = submit(s, "first")
        others = [submit(s, f"filler {i}") for i in range(12)]  # ids 2..13: "1" is in "[10]", "[11]", …
        waiting = submit(s, "waiting", [first.id])
        lookalike = submit(s, "look-alike", [others[-1].id])  # e.g. [13]: its JSON text contains "1"
        s.commit()
        jobs.apply_action(s, first, JobAction.CANCEL, ADMIN)
        s.commit()
        assert f"waiting for job {first.id} (first), which was canceled" in waiting.activity
        assert lookalike.activity == ""
        deps = failures.dependencies(s, waiting)
        assert [(d.job_id, d.status, d.blocking) for d in deps] == [(first.id, "canceled", True)]
        with pytest.raises(Invalid):
            failures.release(s, waiting, [lookalike.id], "admin")
        assert failures.release(s, waiting, None, "admin", "fixed") == [first.id]
        assert waiting.depends_on == []
        s.commit()
        assert failures.release(s, waiting, None, "admin") == []  # nothing left
