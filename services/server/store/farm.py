"""Managers, workers and the farm-wide counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from services.protocol.common import utcnow
from services.protocol.farm import FarmStatus, Manager
from services.protocol.states import ManagerStatus, WorkerStatus
from services.server.db.tables import JobRow, ManagerRow, WorkerRow
from services.server.store import events, id_floors, paging, worker_history
from services.server.store.auth import hash_token, new_token
from services.server.store.convert import aware, manager_to_wire
from services.server.store.errors import Conflict
from services.server.store.unique import add_named

RATE_MINUTES = 5  # tasks per minute are averaged over this many whole minutes


def manager_status(m: ManagerRow, lease_seconds: float) -> ManagerStatus:
    if m.last_seen is None:
        return ManagerStatus.NEVER_SEEN
    if utcnow() - aware(m.last_seen) > timedelta(seconds=lease_seconds):
        return ManagerStatus.OFFLINE
    return ManagerStatus.ONLINE


def create_manager(session: Session, name: str) -> tuple[ManagerRow, str]:
    # `Render-A` beside `render-a` would be two Managers that look the same in every list (names are ASCII)
    same = session.scalar(select(ManagerRow.name).where(func.lower(ManagerRow.name) == name.lower()).limit(1))
    if same is not None:
        case = "" if same == name else " (manager names must differ by more than case)"
        raise Conflict(f"a manager named {same!r} exists already{case}", field="name")
    token = new_token()
    row = ManagerRow(
        id=id_floors.new_manager_id(session), name=name, token_hash=hash_token(token), created=utcnow(), last_seq=0
    )
    add_named(session, row, f"a manager named {name!r}, or the same name in other case, exists already")
    _announce(session, manager_to_wire(row, ManagerStatus.NEVER_SEEN, 0, 0))
    return row, token


def manager_wire(session: Session, m: ManagerRow, lease_seconds: float) -> Manager:
    """One Manager as the API shows it, with its worker counts."""
    total = select(func.count()).select_from(WorkerRow).where(WorkerRow.manager_id == m.id)
    awake = total.where(WorkerRow.status == WorkerStatus.AWAKE)
    return manager_to_wire(
        m, manager_status(m, lease_seconds), int(session.scalar(total) or 0), int(session.scalar(awake) or 0)
    )


def _announce(session: Session, manager: Manager) -> None:
    events.publish(session, "manager-updated", manager.model_dump(mode="json"))


def seen(session: Session, m: ManagerRow, lease_seconds: float, now: datetime | None = None) -> None:
    """The Manager called now; one that was never seen or offline is online again, and live views hear of it."""
    was = manager_status(m, lease_seconds)
    m.last_seen = now or utcnow()
    if was != ManagerStatus.ONLINE:
        _announce(session, manager_wire(session, m, lease_seconds))


def announce_silent(session: Session, managers: list[ManagerRow], lease_seconds: float) -> None:
    """These Managers fell silent (offline now): live views hear of it."""
    for m in managers:
        _announce(session, manager_wire(session, m, lease_seconds))


def manager_for_token(session: Session, token: str) -> ManagerRow | None:
    return session.scalar(select(ManagerRow).where(ManagerRow.token_hash == hash_token(token)))


def list_managers(session: Session, lease_seconds: float) -> list[Manager]:
    counts = dict(session.execute(select(WorkerRow.manager_id, func.count()).group_by(WorkerRow.manager_id)).all())
    awake = dict(
        session.execute(
            select(WorkerRow.manager_id, func.count())
            .where(WorkerRow.status == WorkerStatus.AWAKE)
            .group_by(WorkerRow.manager_id)
        ).all()
    )
    return [
        manager_to_wire(m, manager_status(m, lease_seconds), counts.get(m.id, 0), awake.get(m.id, 0))
        for m in session.scalars(select(ManagerRow).order_by(ManagerRow.id))
    ]


def list_workers(session: Session, *, limit: int, cursor: str | None = None) -> tuple[list[WorkerRow], str | None]:
    """A page of workers by name (then id: names repeat across Managers), and the cursor after its last, or None
    at the end. A big farm's thousands of workers, each with its capabilities, were one unbounded answer."""
    stmt = select(WorkerRow)
    if cursor:
        name, worker_id = paging.decode_keyed(cursor, WorkerRow.name, WorkerRow.id)
        stmt = stmt.where(tuple_(WorkerRow.name, WorkerRow.id) > tuple_(name, worker_id))
    rows = list(session.scalars(stmt.order_by(WorkerRow.name, WorkerRow.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, paging.encode(rows[-1].name, rows[-1].id)


def farm_status(session: Session, lease_seconds: float) -> FarmStatus:
    def by_status(col: object, table: object) -> dict[str, int]:
        rows = session.execute(select(col, func.count()).select_from(table).group_by(col)).all()  # type: ignore[call-overload]
        return {str(s): int(n) for s, n in rows}

    managers: dict[str, int] = {}
    for m in session.scalars(select(ManagerRow)):
        key = manager_status(m, lease_seconds).value
        managers[key] = managers.get(key, 0) + 1
    # Task counts come from the jobs' counters: counting a million task rows per call would not scale.
    total, completed, failed, canceled, running = session.execute(
        select(
            func.coalesce(func.sum(JobRow.tasks_total), 0),
            func.coalesce(func.sum(JobRow.tasks_completed), 0),
            func.coalesce(func.sum(JobRow.tasks_failed), 0),
            func.coalesce(func.sum(JobRow.tasks_canceled), 0),
            func.coalesce(func.sum(JobRow.tasks_active), 0),
        )
    ).one()
    tasks = {
        "completed": int(completed),
        "failed": int(failed),
        "canceled": int(canceled),
        "running": int(running),  # assigned, active or soft-failed
        "waiting": int(total - completed - failed - canceled - running),  # queued or paused
    }
    offline = (WorkerStatus.OFFLINE.value, WorkerStatus.ERROR.value)
    busy = idle = gone = 0
    for status, on_task, n in session.execute(
        select(WorkerRow.status, WorkerRow.current_task_id.is_not(None), func.count()).group_by(
            WorkerRow.status, WorkerRow.current_task_id.is_not(None)
        )
    ):
        if status in offline:
            gone += n
        elif on_task:
            busy += n
        else:
            idle += n  # awake without a task, or asleep (it can be woken)
    return FarmStatus(
        jobs=by_status(JobRow.status, JobRow),
        tasks=tasks,
        workers=by_status(WorkerRow.status, WorkerRow),
        managers=managers,
        workers_busy=busy,
        workers_idle=idle,
        workers_offline=gone,
        tasks_per_minute=worker_history.tasks_per_minute(session, RATE_MINUTES),
        rate_minutes=RATE_MINUTES,
    )
