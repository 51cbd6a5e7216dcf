"""How many workers one Manager may have at the Server (TABLAO_MAX_WORKERS_PER_MANAGER).

A Manager's report of a worker id the Server has not seen makes a row. A hostile or broken Manager reporting a
new id with every batch would fill the workers table without end, and an honest one whose store was reset many
times leaves a row per lost worker. At the limit the Manager's offline workers that were reported longest ago
make room (deleted as a wrangler's "forget" would, without telling the Manager to forget them: one that is only
switched off comes back when it is reported again); with no offline worker left, the new ids are not stored and
the Server logs a warning naming the Manager, at most every ten minutes.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.protocol.states import WorkerStatus
from services.server.db.tables import ManagerRow, WorkerRow
from services.server.store import events
from services.server.store.now_and_then import NowAndThen, since_note
from services.server.store.worker_history import forget_samples

log = logging.getLogger(__name__)

_warned = NowAndThen(600.0)  # per Manager


def room(session: Session, manager: ManagerRow, new: int, keep: set[str], limit: int | None) -> int:
    """How many of `new` worker ids unknown to the Server this Manager may add now, after making room by deleting
    its offline workers not in `keep` (the ids its batch reports), those reported longest ago first."""
    if limit is None or new == 0:
        return new
    have = session.scalar(select(func.count()).select_from(WorkerRow).where(WorkerRow.manager_id == manager.id)) or 0
    over = have + new - limit
    if over > 0:
        ghosts = session.scalars(
            select(WorkerRow)
            .where(WorkerRow.manager_id == manager.id, WorkerRow.status == WorkerStatus.OFFLINE.value)
            .order_by(WorkerRow.reported.is_not(None), WorkerRow.reported, WorkerRow.last_seen, WorkerRow.id)
            .limit(over + len(keep))
        ).all()
        for ghost in [g for g in ghosts if g.id not in keep][:over]:
            forget_samples(session, ghost.id)
            session.delete(ghost)
            events.publish(session, "worker-deleted", {"id": ghost.id})
            have -= 1
    allowed = max(0, min(new, limit - have))
    if allowed < new:
        _warn(manager, new - allowed, limit)
    return allowed


def _warn(manager: ManagerRow, turned_away: int, limit: int) -> None:
    if (since := _warned.due(manager.id)) is None:
        return
    log.warning(
        "manager %s reported %d new worker%s beyond its limit of %d workers at this Server (none of its workers is "
        "offline to make room); not stored: forget workers that are gone, or raise TABLAO_MAX_WORKERS_PER_MANAGER%s",
        manager.name, turned_away, "" if turned_away == 1 else "s", limit, since_note(since),
    )  # fmt: skip
