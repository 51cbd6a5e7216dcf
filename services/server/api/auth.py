"""Routes for logging in and for the admin's users and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import select

from services.protocol.common import Id
from services.protocol.farm import ApiToken, LoginRequest, TokenCreate, TokenCreated, User, UserCreate
from services.protocol.states import Role
from services.server.api.deps import AdminDep, ReadSessionDep, SessionDep
from services.server.db.tables import ApiTokenRow, UserRow
from services.server.store import auth as store
from services.server.store.convert import aware
from services.server.store.errors import Invalid, NotFound

router = APIRouter(tags=["auth"])


def _user(u: UserRow) -> User:
    return User(id=u.id, name=u.name, role=Role(u.role), created=aware(u.created))


def _token(t: ApiTokenRow, user: str) -> ApiToken:
    return ApiToken(
        id=t.id,
        user=user,
        name=t.name,
        created=aware(t.created),
        last_used=aware(t.last_used) if t.last_used else None,
    )


@router.post("/auth/login")
def login(req: LoginRequest, session: SessionDep) -> TokenCreated:
    user, token = store.login(session, req.username, req.password)
    session.commit()
    row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == store.hash_token(token))).one()
    return TokenCreated(**_token(row, user.name).model_dump(), token=token, role=Role(user.role))


@router.get("/users")
def list_users(session: ReadSessionDep, _: AdminDep) -> list[User]:
    return [_user(u) for u in session.scalars(select(UserRow).order_by(UserRow.name))]


@router.post("/users", status_code=201)
def add_user(req: UserCreate, session: SessionDep, _: AdminDep) -> User:
    user = store.add_user(session, req.name, req.role, req.password)
    session.commit()
    return _user(user)


@router.get("/tokens")
def list_tokens(session: ReadSessionDep, _: AdminDep) -> list[ApiToken]:
    rows = session.execute(select(ApiTokenRow, UserRow.name).join(UserRow).order_by(ApiTokenRow.id)).all()
    return [_token(t, name) for t, name in rows]


@router.post("/tokens", status_code=201)
def create_token(req: TokenCreate, session: SessionDep, _: AdminDep) -> TokenCreated:
    user = store.user_by_name(session, req.user)
    if user is None:
        raise Invalid(f"no user named {req.user!r}", field="user")
    row, token = store.create_token(session, user, req.name)
    session.commit()
    return TokenCreated(**_token(row, user.name).model_dump(), token=token, role=Role(user.role))


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: Id, request: Request, session: SessionDep, _: AdminDep) -> Response:
    if session.get(ApiTokenRow, token_id) is None:
        raise NotFound(f"no token with id {token_id}", field="id")
    store.revoke_token(session, token_id)
    session.commit()
    request.app.state.token_cache.clear()
    return Response(status_code=204)
