"""FastAPI dependencies: database sessions, the authenticated user or Manager, role checks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from services.protocol.backoff import Backoff
from services.protocol.common import utcnow
from services.protocol.credentials_first import Wanted
from services.protocol.link import MANAGER_STORE_HEADER
from services.protocol.states import Role
from services.server.config import ServerConfig
from services.server.db.tables import ManagerRow
from services.server.dispatch import Dispatcher
from services.server.store import auth
from services.server.store.convert import aware
from services.server.store.errors import Forbidden, StoreError, TooManyAttempts
from services.server.store.farm import manager_for_token
from services.server.store.jobs import Actor

_bearer = HTTPBearer(auto_error=False)
_TOKEN_CACHE_SECONDS = 10.0


class Unauthorized(StoreError):
    status_code = 401


def _makers(request: Request) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    return request.app.state.read_sessions, request.app.state.write_sessions


def read_session(request: Request) -> Iterator[Session]:
    with _makers(request)[0]() as session:
        yield session


def write_session(request: Request) -> Iterator[Session]:
    """A session that begins with the write lock (SQLite); the route commits what it changed."""
    with _makers(request)[1]() as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(read_session)]
SessionDep = Annotated[Session, Depends(write_session)]


async def config(request: Request) -> ServerConfig:  # async: no trip to the thread pool for a lookup
    cfg: ServerConfig = request.app.state.config
    return cfg


ConfigDep = Annotated[ServerConfig, Depends(config)]


async def dispatcher(request: Request) -> Dispatcher:
    found: Dispatcher = request.app.state.dispatcher
    return found


DispatcherDep = Annotated[Dispatcher, Depends(dispatcher)]


# a request without credentials; also the answer of the door (credentials_first.py) to a write without them
NEEDS_TOKEN = Wanted("Bearer", "this route needs an API token: send 'Authorization: Bearer <token>'", "token")
BAD_USER_TOKEN = "the API token is not valid (revoked, expired, its user disabled, or from another farm)"
MANAGER_TOKEN_AT_USER_ROUTE = "this is a Manager's token; this route needs a user's API token"
NOT_A_MANAGER_TOKEN = "not a Manager token of this farm"


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized(NEEDS_TOKEN.message, field=NEEDS_TOKEN.field)
    return credentials.credentials


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Actor:
    # async: a token seen lately costs a dict lookup, not a trip to the thread pool (a few hundred µs on a busy
    # machine, on every request); an unknown one is looked up in the pool
    token = _token(credentials)
    actor = await token_user(request, token, count_failure=True)
    if actor is None:
        raise Unauthorized(await bad_user_token(request.app.state, token), field="token")
    return actor


async def bad_user_token(state: State, token: str) -> str:
    """Why a token no user holds is refused: a Manager's, sent where a user's is due, is named as such (found
    once and remembered as long as the refusal, so a client repeating a bad token costs no query each time)."""
    reasons: dict[str, tuple[float, str]] = state.refusal_reasons
    now = time.monotonic()
    if (hit := reasons.get(token)) is not None and hit[0] > now:
        return hit[1]

    def held_by_a_manager() -> bool:
        with state.read_sessions() as session:
            return manager_for_token(session, token) is not None

    reason = MANAGER_TOKEN_AT_USER_ROUTE if await run_in_threadpool(held_by_a_manager) else BAD_USER_TOKEN
    if len(reasons) > 10_000:
        reasons.clear()
    reasons[token] = (now + _TOKEN_CACHE_SECONDS, reason)
    return reason


async def token_user(request: Request, token: str, *, count_failure: bool) -> Actor | None:
    """The user `token` stands for now (None: revoked, expired, disabled, unknown); `count_failure`: a bad token
    counts towards the address's back-off (a request's token does; an open event stream's re-check does not)."""
    return await cached_user(request.app.state, client_address(request), token, count_failure=count_failure)


async def cached_user(state: State, address: str, token: str, *, count_failure: bool) -> Actor | None:
    """As token_user, for the caller at `address` of the app whose state is `state`."""
    cache: dict[str, tuple[float, Actor | None]] = state.token_cache
    hit = cache.get(token)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    return await run_in_threadpool(_look_up, state, address, token, count_failure)


def _look_up(state: State, address: str, token: str, count_failure: bool) -> Actor | None:
    """The token's user from the database, remembered for a while; bad tokens count towards a back-off."""
    cache: dict[str, tuple[float, Actor | None]] = state.token_cache
    now = time.monotonic()
    with state.read_sessions() as session:
        found = auth.user_for_token(session, token)
    if found is not None:
        state.token_uses.note(found[1].id)
    actor = Actor(found[0].name, Role(found[0].role)) if found else None
    # an expiring token is remembered no longer than it is valid
    ttl = _TOKEN_CACHE_SECONDS
    if found is not None and found[1].expires is not None:
        ttl = min(ttl, (aware(found[1].expires) - utcnow()).total_seconds())
    if len(cache) > 10_000:
        cache.clear()
    cache[token] = (now + ttl, actor)
    # An address sending bad tokens must wait (429), but a valid token still passes: tokens are 256-bit random,
    # so the wait is not what stops guessing; it keeps one stale client from locking out its neighbours.
    backoff: Backoff = state.auth_backoff
    key = ("address", address)
    if actor is None and count_failure and (wait := backoff.retry_after(key) or backoff.failed(key)):
        raise TooManyAttempts(
            f"too many bad API tokens from this address: try again in {wait:.0f} s", wait, field="token"
        )
    return actor


UserDep = Annotated[Actor, Depends(current_user)]


def require(*roles: Role):  # type: ignore[no-untyped-def]
    async def check(user: UserDep) -> Actor:
        if user.role not in roles:
            allowed = " or ".join(roles)
            raise Forbidden(f"this needs the role {allowed}; {user.name} is {user.role}", field="token")
        return user

    return Depends(check)


WranglerDep = Annotated[Actor, require(Role.ADMIN, Role.WRANGLER)]
AdminDep = Annotated[Actor, require(Role.ADMIN)]


async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    return _token(credentials)


TokenDep = Annotated[str, Depends(bearer_token)]


def manager_by_token(session: Session, token: str, request: Request | None = None) -> ManagerRow:
    """The Manager holding `token`; with `request`, bad tokens count towards the address's back-off (a valid
    token always passes, so Managers behind an address that sent bad ones are not locked out)."""
    manager = manager_for_token(session, token)
    if manager is None:
        if request is not None:
            refuse_manager_token(request.app.state.auth_backoff, client_address(request))
        raise Unauthorized(NOT_A_MANAGER_TOKEN, field="token")
    if request is not None and (stores := getattr(request.app.state, "manager_stores", None)) is not None:
        stores.check(manager.id, manager.name, request.headers.get(MANAGER_STORE_HEADER))
    return manager


def refuse_manager_token(backoff: Backoff, address: str) -> None:
    """A bad Manager token from `address`: TooManyAttempts once the address has sent too many."""
    key = ("manager-address", address)
    if wait := backoff.retry_after(key) or backoff.failed(key):
        raise TooManyAttempts(
            f"too many bad Manager tokens from this address: try again in {wait:.0f} s", wait, field="token"
        )


def current_manager(request: Request, session: SessionDep, token: TokenDep) -> ManagerRow:
    return manager_by_token(session, token, request)


ManagerDep = Annotated[ManagerRow, Depends(current_manager)]
