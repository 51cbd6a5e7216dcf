"""An admin's changes to users and Managers, with the guards that keep a farm administrable.

A farm never loses its last admin who can act: an admin cannot disable or demote themselves, and the last
enabled admin can be neither disabled nor demoted. Removing a Manager gives the tasks it held back to the queue.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.protocol.admin import UserUpdate
from services.protocol.states import Role, TaskStatus
from services.server.db.tables import ManagerRow, TaskRow, UserRow
from services.server.states.tasks import HELD
from services.server.store import events, id_floors
from services.server.store.auth import hash_password
from services.server.store.errors import Conflict, NotFound
from services.server.store.tasks import set_task_status


def get_user(session: Session, user_id: int) -> UserRow:
    user = session.get(UserRow, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}", field="id")
    return user


def _enabled_admins(session: Session) -> int:
    """How many admins are enabled, their rows locked until the transaction ends (PostgreSQL; SQLite's write
    session holds the database's lock already): two admins stopping each other at once were each counted one of
    two, and both changes went through."""
    q = (
        select(UserRow.id)
        .where(UserRow.role == Role.ADMIN, UserRow.disabled.is_(False))
        .order_by(UserRow.id)  # one order for every locker: no deadlock
        .with_for_update()
    )
    return len(session.scalars(q).all())


def change_user(session: Session, user_id: int, req: UserUpdate, actor: str) -> UserRow:
    user = get_user(session, user_id)
    stops_admin = (req.role is not None and req.role != Role.ADMIN) or req.disabled is True
    if stops_admin and user.role == Role.ADMIN and not user.disabled:
        field = "disabled" if req.disabled else "role"
        if user.name == actor:
            raise Conflict("an admin cannot disable or demote themselves: ask another admin", field=field)
        if _enabled_admins(session) <= 1:
            raise Conflict("this is the farm's last enabled admin: make another admin first", field=field)
    if req.role is not None:
        user.role = req.role
    if req.disabled is not None:
        user.disabled = req.disabled
    if req.password is not None:
        user.password_hash = hash_password(req.password)
    return user


def remove_manager(session: Session, manager_id: int, actor: str) -> int:
    """Forget a Manager: its token stops working, its workers go, the tasks it held are queued again.

    Returns how many tasks went back to the queue. Jobs restricted to it may then run on any Manager.
    """
    # locked: of two removes at once (PostgreSQL), the second waits and finds it gone (404), not a failed delete
    manager = session.get(ManagerRow, manager_id, with_for_update=True)
    if manager is None:
        raise NotFound(f"no manager with id {manager_id}", field="id")
    held = session.scalars(
        select(TaskRow).where(TaskRow.manager_id == manager.id, TaskRow.status.in_([s.value for s in HELD]))
    ).all()
    for task in held:
        activity = f"requeued: its Manager {manager.name} was removed by {actor}"
        set_task_status(session, task, TaskStatus.QUEUED, actor=actor, activity=activity)
    events.publish(session, "manager-deleted", {"id": manager.id, "name": manager.name})
    id_floors.note_deleted(session, id_floors.MANAGERS, manager.id)
    session.delete(manager)
    return len(held)
