"""Job actions (pause, resume) racing Manager update batches and claims on PostgreSQL: every path locks a job's row
before its tasks' rows, so they wait for each other instead of deadlocking (40P01, a 503 to the client)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from services.protocol.jobs import JobAction, JobSubmission
from services.protocol.link import ClaimRequest, TaskUpdate, UpdateBatch
from services.protocol.states import Role, TaskStatus
from services.server.db.tables import ManagerRow
from services.server.store import farm, jobs, link
from services.server.store.errors import StoreError
from tests.support.pg_race import postgres_writers

pytestmark = [pytest.mark.timeout(300), pytest.mark.postgres]

ADMIN = jobs.Actor("admin", Role.ADMIN)
RACING = 10.0  # seconds; before the fix, some 15 deadlocks in 10 s on a 2-core machine


def _deadlock(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "40P01"


class Tally:
    def __init__(self) -> None:
        self.deadlocks: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self.first = ""  # the first deadlock's report
        self.lock = threading.Lock()

    def run(self, name: str, writers: sessionmaker[Session], step: Callable[[Session], object]) -> None:
        try:
            with writers() as s:
                step(s)
                s.commit()
            key, table = name, self.done
        except DBAPIError as exc:
            if not _deadlock(exc):
                raise
            key, table = name, self.deadlocks
            self.first = self.first or str(exc.orig).replace("\n", " | ")
        except StoreError:
            return  # e.g. pausing a job paused already meanwhile
        with self.lock:
            table[key] = table.get(key, 0) + 1


def test_pause_and_resume_racing_manager_batches_never_deadlock(tmp_path: Path) -> None:
    """A wrangler pauses and resumes a job over and over while two Managers claim its tasks and report them
    (starts, completions, progress, lease renewals), as fast as they can."""
    with postgres_writers(tmp_path) as writers:
        with writers() as s:
            settings = {"command": ["true", "{frame}"], "frames": "1-2000"}
            job_id = jobs.submit(s, JobSubmission(name="race", type="exec", settings=settings), ADMIN).id
            managers = [farm.create_manager(s, f"m{i}")[0].id for i in range(2)]
            s.commit()
        tally = Tally()
        stop = time.monotonic() + RACING

        def wrangler() -> None:
            paused = False
            while time.monotonic() < stop:
                action = JobAction.RESUME if paused else JobAction.PAUSE

                def act(s: Session, action: JobAction = action) -> None:
                    jobs.apply_action(s, jobs.get(s, job_id, for_update=True), action, ADMIN)

                tally.run(action.value, writers, act)
                paused = not paused

        def manager(manager_id: int) -> None:
            seq = 0
            held: dict[int, int] = {}
            while time.monotonic() < stop:

                def claim(s: Session) -> None:
                    m = s.get_one(ManagerRow, manager_id)
                    for t in link.claim(s, m, ClaimRequest(capacity=40), 60):
                        held[t.id] = t.attempt

                tally.run("claim", writers, claim)
                seq += 1
                ids = sorted(held)
                updates = [  # half start, the rest report progress; every one is renewed
                    TaskUpdate(task_id=t, attempt=held[t], status=TaskStatus.ACTIVE if i % 2 else None,
                               steps_done=1, steps_total=2)
                    for i, t in enumerate(ids)
                ]  # fmt: skip
                done = [t for i, t in enumerate(ids) if i % 5 == 0]
                updates += [TaskUpdate(task_id=t, attempt=held[t], status=TaskStatus.COMPLETED) for t in done]

                def send(s: Session, batch: UpdateBatch = UpdateBatch(seq=seq, task_updates=updates,
                                                                      held_task_ids=ids)) -> None:  # fmt: skip
                    link.apply_batch(s, s.get_one(ManagerRow, manager_id), batch, 60)

                before = tally.done.get("batch", 0)
                tally.run("batch", writers, send)
                if tally.done.get("batch", 0) == before:
                    seq -= 1  # not applied: the Manager sends it again under the same number
                for t in done:
                    held.pop(t, None)

        threads = [threading.Thread(target=wrangler)] + [threading.Thread(target=manager, args=(m,)) for m in managers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"\ndone: {tally.done}; deadlocks: {tally.deadlocks}")
        assert tally.deadlocks == {}, tally.first
        assert tally.done.get("pause", 0) > 5 and tally.done.get("batch", 0) > 5
