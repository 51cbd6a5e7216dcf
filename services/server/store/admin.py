"""An admin's changes to users and Managers, with the guards that keep a farm administrable.

A farm never loses its last admin who can act: an admin cannot disable or demote themselves, and the last
enabled admin can be neither disabled nor demoted. Removing a Manager gives the tasks it held back to the queue.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.protocol.admin import UserUpdate
from services.protocol.states import Role, TaskStatus
from services.server.db.tables import ManagerRow, TaskRow, UserRow
from services.server.states.tasks import HELD
from services.server.store import events
from services.server.store.auth import hash_password
from services.server.store.errors import Conflict, NotFound
from services.server.store.tasks import set_task_status


def get_user(session: Session, user_id: int) -> UserRow:
    user = session.get(UserRow, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}", field="id")
    return user


def _enabled_admins(session: Session) -> int:
    q = select(func.count()).select_from(UserRow).where(UserRow.role == Role.ADMIN, UserRow.disabled.is_(False))
    return int(session.scalar(q) or 0)


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
    manager = session.get(ManagerRow, manager_id)
    if manager is None:
        raise NotFound(f"no manager with id {manager_id}", field="id")
    held = session.scalars(
        select(TaskRow).where(TaskRow.manager_id == manager.id, TaskRow.status.in_([s.value for s in HELD]))
    ).all()
    for task in held:
        activity = f"requeued: its Manager {manager.name} was removed by {actor}"
        set_task_status(session, task, TaskStatus.QUEUED, actor=actor, activity=activity)
    events.publish(session, "manager-deleted", {"id": manager.id, "name": manager.name})
    session.delete(manager)
    return len(held)
