"""Workers of a silent Manager are shown offline: the Server cannot vouch for what nobody reports. The Manager
itself is announced offline to live views once when it falls silent (its status is computed from when it was
last seen, so nothing else would tell them)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.states import WorkerStatus
from services.server.db.tables import ManagerRow, WorkerRow
from services.server.store import events, farm
from services.server.store.convert import worker_to_wire


class SilentManagers:
    """The Managers this process last found silent: each is announced when it joins them. Another Server process
    announces them too (events carry whole objects: a second one changes nothing)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()


def offline_workers_of_silent_managers(
    session: Session, lease_seconds: float, *, started: float, known: SilentManagers | None = None
) -> None:
    """Mark offline the workers of every Manager silent for a lease period (a housekeeping sweep), and announce
    the Managers that fell silent since the last sweep (`known`: the ones found before).

    For one lease period after the Server starts nothing changes, as with leases: Managers that kept
    working while the Server was away report their workers' real states first (`started`, a
    `time.monotonic()` of the app's start). The next report of a
    Manager that comes back sets them right again.
    """
    if time.monotonic() - started < lease_seconds:
        return
    cutoff = utcnow() - timedelta(seconds=lease_seconds)
    silent = select(ManagerRow.id).where(ManagerRow.last_seen.is_not(None), ManagerRow.last_seen < cutoff)
    rows = session.scalars(
        select(WorkerRow).where(WorkerRow.manager_id.in_(silent), WorkerRow.status != WorkerStatus.OFFLINE)
    ).all()
    _take_offline(session, rows)
    if known is not None:
        now_silent = set(session.scalars(silent))
        newly = now_silent - known.ids
        if newly:
            managers = list(session.scalars(select(ManagerRow).where(ManagerRow.id.in_(newly))))
            farm.announce_silent(session, managers, lease_seconds)
        # remembered once the announcement is stored: a sweep whose commit fails announces them at the next
        event.listen(session, "after_commit", lambda _session: setattr(known, "ids", now_silent), once=True)


UNREPORTED_SECONDS = 900.0  # a worker no Manager has reported for this long (while online): its Manager lost it


def offline_workers_nobody_reports(session: Session, *, started: float, after: float = UNREPORTED_SECONDS) -> None:
    """Mark offline the workers no Manager has reported as online for `after` seconds (a housekeeping sweep).

    A Manager reports every worker it knows with each lease renewal, and one silent for its worker timeout as
    offline; a worker it no longer knows at all (its store lost, or started afresh with `--fresh-store`) it never
    reports again, and the Server showed it awake for ever, busy with a task long finished, and refused to forget
    it. The time is the Server's own (`WorkerRow.reported`), so no Manager's clock matters; a row from before
    it was kept counts from the Server's start, and nothing changes in the first `after` seconds after a start."""
    if time.monotonic() - started < after:
        return
    cutoff = utcnow() - timedelta(seconds=after)
    rows = session.scalars(
        select(WorkerRow).where(
            WorkerRow.status != WorkerStatus.OFFLINE, or_(WorkerRow.reported.is_(None), WorkerRow.reported < cutoff)
        )
    ).all()
    _take_offline(session, rows)


def _take_offline(session: Session, workers: Sequence[WorkerRow]) -> None:
    """Show these workers offline, with no task, and tell the live views."""
    for worker in workers:
        worker.status = WorkerStatus.OFFLINE
        worker.current_task_id = worker.next_task_id = None
        events.publish(session, "worker-updated", worker_to_wire(worker).model_dump(mode="json"))
