"""Admin routes beyond creating things: change a user (role, disabled, password) and remove a Manager."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from services.protocol.admin import UserUpdate
from services.protocol.common import SmallId
from services.protocol.farm import User
from services.protocol.states import Role
from services.server.api.deps import AdminDep, SessionDep
from services.server.store import admin as store
from services.server.store.convert import aware

router = APIRouter(tags=["admin"])


@router.patch("/users/{user_id}")
def change_user(user_id: SmallId, req: UserUpdate, request: Request, session: SessionDep, admin: AdminDep) -> User:
    """Change a user's role, disable or enable it, or set its password; its tokens follow at once."""
    user = store.change_user(session, user_id, req, actor=admin.name)
    session.commit()
    request.app.state.token_cache.clear()  # a disabled user's or a demoted admin's tokens stop here now
    return User(id=user.id, name=user.name, role=Role(user.role), created=aware(user.created), disabled=user.disabled)


@router.delete("/managers/{manager_id}", status_code=204)
def remove_manager(manager_id: SmallId, session: SessionDep, admin: AdminDep) -> Response:
    """Forget a Manager: its token stops working, its workers are forgotten, the tasks it held are queued."""
    store.remove_manager(session, manager_id, actor=admin.name)
    session.commit()
    return Response(status_code=204)
