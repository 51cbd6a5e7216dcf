"""The Server's copies of full task logs (store/log_copies.py): uploads of the same task's log that overlap."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.server.db.tables import LogUploadAskedRow, ManagerRow
from services.server.store import log_copies
from services.server.store.errors import Conflict


class OneTask:
    """A session that knows one task, held by Manager 1, which was just asked for its log."""

    def get(self, table: Any, task_id: int) -> SimpleNamespace:
        if table is LogUploadAskedRow:
            return SimpleNamespace(task_id=task_id, manager_id=1, asked=utcnow())
        return SimpleNamespace(id=task_id, job_id=3, manager_id=1)


def test_overlapping_uploads_of_one_log_leave_one_whole_copy_and_no_leftovers(tmp_path: Path) -> None:
    session, manager = cast("Session", OneTask()), cast("ManagerRow", SimpleNamespace(id=1))
    bodies = [bytes([65 + i]) * (2 << 20) for i in range(6)]  # 2 MiB each: writes that take a while
    errors: list[BaseException] = []
    start = threading.Barrier(len(bodies))

    def upload(body: bytes) -> None:
        start.wait()
        try:
            for _ in range(5):  # a Manager retrying while its first try is still being written
                received = log_copies.receiving(tmp_path)
                received.write_bytes(body)
                log_copies.store(session, manager, 7, tmp_path, received)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    folder = tmp_path / "task-logs" / "job-3"
    assert [p.name for p in folder.iterdir()] == ["task-7.log"]
    assert (folder / "task-7.log").read_bytes() in bodies  # one upload's copy, whole: never two mixed
    assert list((tmp_path / "task-logs" / log_copies.UPLOADS).iterdir()) == []


class NoTask:
    def get(self, table: Any, task_id: int) -> None:
        return None


def test_a_log_for_a_task_the_manager_does_not_hold_is_refused_alike_whether_or_not_it_exists() -> None:
    """From a role-matrix audit: an unknown task was a 404 and another Manager's a 409, so a Manager's token told
    which task ids exist; api.md promises the 409 naming `id` for both."""
    manager = cast("ManagerRow", SimpleNamespace(id=2))
    for session in (OneTask(), NoTask()):
        with pytest.raises(Conflict) as refused:
            log_copies.check_asked(cast("Session", session), manager, 7)
        assert (refused.value.message, refused.value.field) == ("task 7 is not held by this Manager", "id")
