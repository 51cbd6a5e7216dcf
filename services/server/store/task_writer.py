"""Writing a job's compiled tasks as they come: rows straight to the driver, dependencies in bounded slices.

A compiler yields tasks in order; the writer gets them a chunk at a time, gives each an id, inserts the rows and
queues their dependency rows. A task may wait for every task before it (a preview after a million frames: a
million dependency rows), so dependency rows are written in slices of a bounded size, each slice in whatever
transaction the caller opens; the job is under construction meanwhile, so nothing reads them half-written.
The ids of the tasks stored so far are kept as 8-byte integers (8 MB for a million tasks), since a dependency
may point at any earlier task.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from datetime import datetime
from itertools import islice

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.protocol.states import TaskStatus
from services.server.db.tables import TaskRow
from services.server.jobtypes.base import CompiledTask
from services.server.store import id_floors
from services.server.store.errors import Invalid

_COLUMNS = ("id", "job_id", "index", "name", "type", "commands", "status", "deps_pending", "steps_total",
            "steps_done", "attempt", "failure_count", "activity", "log_tail", "created", "updated")  # fmt: skip


class TaskWriter:
    """Stores one job's tasks in the order compiled; `count` of them so far."""

    def __init__(self, job_id: int, now: datetime, status: TaskStatus = TaskStatus.QUEUED) -> None:
        self.job_id = job_id
        self.now = now
        self.status = status.value
        self.ids = array("q")  # index in the job -> task id
        self.types: set[str] = set()  # the task types stored so far (the job's, for the ETA's worker count)
        self._deps: Iterator[tuple[int, int]] = iter(())
        self._deps_left = False

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def deps_pending(self) -> bool:
        """Dependency rows queued and not written yet."""
        return self._deps_left

    def add(self, session: Session, tasks: Sequence[CompiledTask]) -> None:
        """Inserts `tasks` (the next ones in the job's order) and queues their dependency rows."""
        first = len(self.ids)
        for i, ct in enumerate(tasks, first):
            _check_dependencies(ct, i)
            self.types.add(ct.type)
        self.ids.extend(_allocate_ids(session, len(tasks)))
        dialect = session.get_bind().dialect
        stamp = TaskRow.__table__.c.created.type.dialect_impl(dialect).bind_processor(dialect)
        when = stamp(self.now) if stamp else self.now
        ids, job_id, status = self.ids, self.job_id, self.status
        rows = [
            (ids[i], job_id, i, ct.name, ct.type, orjson.dumps(ct.commands).decode(), status, len(ct.depends_on),
             ct.steps_total, 0, 0, 0, "", "[]", when, when)
            for i, ct in enumerate(tasks, first)
        ]  # fmt: skip
        # Straight to the driver: SQLAlchemy's per-row parameter handling would cost more than the insert itself.
        # Values are prepared the way the column types would prepare them (JSON text, the dialect's timestamps).
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        quoted = ", ".join(dialect.identifier_preparer.quote(c) for c in _COLUMNS)
        sql = f"INSERT INTO tasks ({quoted}) VALUES ({', '.join([mark] * len(_COLUMNS))})"
        cursor = session.connection().connection.cursor()
        try:
            cursor.executemany(sql, rows)
        finally:
            cursor.close()
        if any(ct.depends_on for ct in tasks):
            self._deps = _chain(self._deps, self._dependency_rows(tasks, first))
            self._deps_left = True

    def write_dependencies(self, session: Session, budget: int | None = None) -> bool:
        """Inserts up to `budget` queued dependency rows (all with None); True while some are left."""
        if not self._deps_left:
            return False
        rows = list(self._deps if budget is None else islice(self._deps, budget))
        if rows:
            dialect = session.get_bind().dialect
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            cursor = session.connection().connection.cursor()
            try:
                cursor.executemany(
                    f"INSERT INTO task_dependencies (task_id, depends_on_id) VALUES ({mark}, {mark})", rows
                )
            finally:
                cursor.close()
        self._deps_left = budget is not None and len(rows) == budget
        if not self._deps_left:
            self._deps = iter(())
        return self._deps_left

    def _dependency_rows(self, tasks: Sequence[CompiledTask], first: int) -> Iterator[tuple[int, int]]:
        ids = self.ids
        for i, ct in enumerate(tasks, first):
            me = ids[i]
            for d in ct.depends_on:
                yield me, ids[d]


def _chain(a: Iterator[tuple[int, int]], b: Iterator[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    yield from a
    yield from b


def _check_dependencies(ct: CompiledTask, i: int) -> None:
    deps = ct.depends_on
    if isinstance(deps, range):  # "all of these": checked by its ends, never walked
        ok = not deps or (deps.step > 0 and deps.start >= 0 and deps[-1] < i)
    else:
        ok = all(0 <= d < i for d in deps)
    if not ok:
        raise Invalid(f"task {ct.name!r} depends on a task that does not come before it", field="settings")


def _allocate_ids(session: Session, n: int) -> list[int]:
    if session.get_bind().dialect.name == "postgresql":
        seq = session.execute(
            text("SELECT nextval(pg_get_serial_sequence('tasks', 'id')) FROM generate_series(1, :n)"), {"n": n}
        )
        return sorted(int(x) for (x,) in seq)
    # SQLite: this transaction holds the write lock (BEGIN IMMEDIATE), so nobody else takes these ids
    start = id_floors.next_id(session, id_floors.TASKS, TaskRow.id)
    return list(range(start, start + n))
