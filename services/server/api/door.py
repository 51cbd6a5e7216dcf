"""The Server's word on credentials before a write's body is read (services/protocol/credentials_first.py).

A route under `/manager/` takes a Manager's token, every other write a user's: a token the route would refuse
(unknown, revoked, expired, the wrong kind) is refused here as the route would refuse it, with the same message
and the same back-off for an address that keeps sending bad ones, before up to 8 MiB (64 MiB for a log upload)
is read. Tokens seen good lately cost a dictionary look-up (the user tokens' cache is the routes' own; Manager
tokens are remembered here for as long), so a Manager's requests, the farm's busiest, pay next to nothing. Which
role a user has, and whether a Manager's token is still good when the body has arrived, stay the routes' to say.
"""

from __future__ import annotations

import time

from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.types import Scope

from services.protocol.backoff import retry_after_header
from services.protocol.credentials_first import Refusal
from services.server.api.deps import (
    NEEDS_TOKEN,
    NOT_A_MANAGER_TOKEN,
    bad_user_token,
    cached_user,
    refuse_manager_token,
)
from services.server.db.problems import DATABASE_ERRORS
from services.server.store.errors import TooManyAttempts
from services.server.store.farm import manager_for_token

_MANAGER_TOKEN_SECONDS = 10.0  # as long as a user's token is remembered
_CACHE_MAX = 10_000


async def vouch(state: State, manager_routes: str, scope: Scope, authorization: str) -> Refusal | None:
    """How the route of `scope` would refuse these credentials, or None when it would take them; `state` is the
    app's, `manager_routes` the path prefix of the routes that take a Manager's token."""
    scheme, token = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not token:
        return Refusal(401, NEEDS_TOKEN.message, NEEDS_TOKEN.field, {"www-authenticate": "Bearer"})
    address = scope["client"][0] if scope.get("client") else "unknown"
    try:
        if scope["path"].startswith(manager_routes):
            if await _manager_token_known(state, address, token):
                return None
            message = NOT_A_MANAGER_TOKEN
        else:
            if await cached_user(state, address, token, count_failure=True) is not None:
                return None
            message = await bad_user_token(state, token)
    except TooManyAttempts as exc:
        return Refusal(429, exc.message, exc.field, retry_after_header(exc.retry_after))
    except DATABASE_ERRORS:
        return None  # the database's trouble (out of reach, full): the route says so, in its one line
    return Refusal(401, message, "token", {"www-authenticate": "Bearer"})


async def _manager_token_known(state: State, address: str, token: str) -> bool:
    known: dict[str, float] = state.manager_tokens_seen
    until = known.get(token)
    if until is not None and until > time.monotonic():
        return True
    return await run_in_threadpool(_look_up_manager, state, address, token)


def _look_up_manager(state: State, address: str, token: str) -> bool:
    with state.read_sessions() as session:
        found = manager_for_token(session, token) is not None
    if not found:
        refuse_manager_token(state.auth_backoff, address)
        return False
    known: dict[str, float] = state.manager_tokens_seen
    if len(known) > _CACHE_MAX:
        known.clear()
    known[token] = time.monotonic() + _MANAGER_TOKEN_SECONDS
    return True
