"""Routes for logging in and for the admin's users and API tokens."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from services.protocol.backoff import Backoff
from services.protocol.common import SmallId, utcnow
from services.protocol.farm import ApiToken, LoginRequest, TokenCreate, TokenCreated, User, UserCreate
from services.protocol.states import Role
from services.server.api.deps import AdminDep, ConfigDep, ReadSessionDep, SessionDep, Unauthorized, client_address
from services.server.db.tables import ApiTokenRow, UserRow
from services.server.store import auth as store
from services.server.store.convert import aware
from services.server.store.errors import Forbidden, Invalid, TooManyAttempts

router = APIRouter(tags=["auth"])


def _user(u: UserRow) -> User:
    return User(id=u.id, name=u.name, role=Role(u.role), created=aware(u.created), disabled=u.disabled)


def _token(t: ApiTokenRow, user: str) -> ApiToken:
    return ApiToken(
        id=t.id,
        user=user,
        name=t.name,
        created=aware(t.created),
        last_used=aware(t.last_used) if t.last_used else None,
        expires=aware(t.expires) if t.expires else None,
    )


# scrypt costs tens of ms of CPU and 16 MB each: hashed one at a time, so a flood of logins takes at most one
# core from the other requests, and with more than this many waiting the next ones are told to come back
_LOGINS_WAITING_MAX = 50


class _PasswordChecks:
    def __init__(self) -> None:
        self.gate = asyncio.Semaphore(1)
        self.waiting = 0


@router.post("/auth/login")
async def login(req: LoginRequest, request: Request, cfg: ConfigDep) -> TokenCreated:
    """A new API token for a user name and password; it expires after the farm's `login_token_days`.

    The password hash is computed with no database session open (no lock held while scrypt runs), one at a time,
    and as slowly for unknown users; failures are counted per client address and per user name (429 when over).
    """
    backoff: Backoff = request.app.state.login_backoff
    keys = (("address", client_address(request)), ("user", req.username.lower()))  # Ana and ana are one user
    wait = max(backoff.retry_after(k) for k in keys)
    if wait:
        raise TooManyAttempts(
            f"too many failed logins from this address or for this user: try again in {wait:.0f} s",
            wait,
            field="password",
        )
    checks: _PasswordChecks | None = getattr(request.app.state, "password_checks", None)
    if checks is None:
        checks = request.app.state.password_checks = _PasswordChecks()
    if checks.waiting >= _LOGINS_WAITING_MAX:
        raise TooManyAttempts("too many logins at once: try again in a second", 1.0, field="password")

    def stored_hash() -> tuple[str | None, bool]:
        with request.app.state.read_sessions() as session:
            found = store.user_for_login(session, req.username)
            return (found.password_hash, found.disabled) if found is not None else (None, False)

    checks.waiting += 1
    try:
        stored, disabled = await run_in_threadpool(stored_hash)
        async with checks.gate:
            ok = await run_in_threadpool(store.check_password, req.password, stored)
    finally:
        checks.waiting -= 1
    if not ok:
        wait = max([backoff.failed(k) for k in keys])
        if wait:
            raise TooManyAttempts(f"wrong user name or password; try again in {wait:.0f} s", wait, field="password")
        raise Unauthorized("wrong user name or password", field="password")
    backoff.succeeded(keys[1])
    if disabled:  # said only to who knows the password: it tells nothing to someone guessing
        raise Forbidden("this user is disabled: ask an admin of the farm", field="name")
    expires = utcnow() + timedelta(days=cfg.login_token_days)

    def new_token() -> TokenCreated:
        with request.app.state.write_sessions() as session:
            user = store.user_for_login(session, req.username)
            if user is None or user.disabled:  # deleted or disabled between the two sessions
                raise Unauthorized("wrong user name or password", field="password")
            row, token = store.create_token(session, user, name="login", expires=expires)
            session.commit()
            return TokenCreated(**_token(row, user.name).model_dump(), token=token, role=Role(user.role))

    return await run_in_threadpool(new_token)


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
    if req.name == store.PRESET_NAME:  # revoking it only expires it (store.revoke_token): the Server's own
        raise Invalid(f"the name {store.PRESET_NAME!r} is kept for TABLAO_ADMIN_TOKEN's token", field="name")
    user = store.user_named(session, req.user, field="user")  # `bob` is `Bob`, as at a login
    expires = utcnow() + timedelta(days=req.expires_days) if req.expires_days else None
    row, token = store.create_token(session, user, req.name, expires=expires)
    session.commit()
    return TokenCreated(**_token(row, user.name).model_dump(), token=token, role=Role(user.role))


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(token_id: SmallId, request: Request, session: SessionDep, _: AdminDep) -> Response:
    store.revoke_token(session, token_id)
    session.commit()
    request.app.state.token_cache.clear()
    return Response(status_code=204)
